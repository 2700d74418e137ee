import type { BlockDevice } from '../../firmware/ports/block-device.ts';
import type { HostClock } from '../clock/clock.ts';
import { buildArray } from '../disks/volume.ts';
import { buildVolume, formatBytes, formatVolumeSpec, type Volume } from '../disks/volume-spec.ts';
import type { ControllerProcessConfig, LunSettings, LunVolume } from './config.ts';

/** A LUN's volume, opened: its device, how to describe it, and how to close it (releasing image locks). */
export interface OpenVolume {
  lun: number;
  device: BlockDevice;
  /** The volume as the config named it (a spec, or `raid1 over file:...,file:...`). */
  text: string;
  close(): Promise<void>;
}

/** The text of a LUN's volume for status and telemetry. */
export function describeVolume(v: LunVolume): string {
  if (v.kind !== 'raid-over-files') return formatVolumeSpec(v);
  const chunk = v.level === 'raid1' ? '' : ` chunk=${formatBytes(v.chunkBytes)}`;
  return `${v.level}${chunk} over ${v.members.map(formatVolumeSpec).join(', ')}`;
}

/**
 * Opens every LUN's volume with the emulator's own builders (host/disks/volume.ts): image files are
 * locked while open; memory disks start blank. No fault overlay and no service-time model: a
 * controller process runs on real time, and its disks take what real I/O takes. If one cannot be
 * opened, those already open are closed (their image locks released) and the error is rethrown.
 */
export async function openLunVolumes(luns: readonly LunSettings[], opts: { controller: string; clock: HostClock }): Promise<OpenVolume[]> {
  const opened: OpenVolume[] = [];
  try {
    for (const l of luns) opened.push(await openLunVolume(l, opts));
  } catch (error) {
    await closeVolumes(opened);
    throw error;
  }
  return opened;
}

async function openLunVolume(l: LunSettings, opts: { controller: string; clock: HostClock }): Promise<OpenVolume> {
  const name = `${opts.controller}/lun${l.lun}`;
  const v = l.volume;
  const text = describeVolume(v);
  if (v.kind !== 'raid-over-files') {
    const volume = await buildVolume(v, { name, clock: opts.clock, faultOverlay: false });
    return { lun: l.lun, device: volume.device, text, close: () => volume.close() };
  }
  const members: Volume[] = [];
  try {
    for (const [i, spec] of v.members.entries()) members.push(await buildVolume(spec, { name: `${name}.m${i}`, clock: opts.clock, faultOverlay: false }));
  } catch (error) {
    await Promise.allSettled(members.map((m) => m.close()));
    throw error;
  }
  const array = buildArray(v.level, members.map((m) => m.device), { name, clock: opts.clock, chunkBytes: v.chunkBytes });
  return {
    lun: l.lun, device: array, text,
    close: async () => {
      const results = await Promise.allSettled(members.map((m) => m.close()));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
  };
}

/** The controller's metadata volume, opened (docs/tag-tables.md, "Metadata format"): an image file locked while open, or a memory disk. */
export interface OpenMetadataVolume {
  device: BlockDevice;
  /** The spec as the config named it. */
  text: string;
  close(): Promise<void>;
}

/** Opens the metadata volume a config names, like a LUN's (an image file is locked while it is open). */
export async function openMetadataVolume(spec: ControllerProcessConfig['metadata'] & object, opts: { controller: string; clock: HostClock }): Promise<OpenMetadataVolume> {
  const volume = await buildVolume(spec, { name: `${opts.controller}/metadata`, clock: opts.clock, faultOverlay: false });
  return { device: volume.device, text: formatVolumeSpec(spec), close: () => volume.close() };
}

/** Closes every volume, even if one fails to close; then throws the first error. */
export async function closeVolumes(volumes: readonly OpenVolume[]): Promise<void> {
  const results = await Promise.allSettled(volumes.map((v) => v.close()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
