import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ControlClient } from '../../host/runtime/control-client.ts';
import { readLunToFile } from '../../host/runtime/lun-reader.ts';
import type { HostLun } from '../../host/runtime/front-end.ts';
import type { Baseline } from '../checker/content-checks.ts';
import { SyncBaseline } from '../emulator/initial-sync.ts';
import type { JudgedCopy } from './judge.ts';
import { MIB, RACK_SECTOR_BYTES, type ResolvedRack } from './options.ts';
import type { RackNode } from './rack-configs.ts';
import { RackError } from './rack-error.ts';

/** How long reading one copy through a control socket may take per request (ms): a board on a slow line answers slowly. */
const READ_REQUEST_TIMEOUT_MS = 120_000;
/** Bytes compared at a time when two pre-run copies are checked against each other. */
const COMPARE_CHUNK_BYTES = MIB;

/** The mirrored LUNs of the rack: LUN 0 from A to B, and with `bidirectional` LUN 1 from B to A. */
function mirroredLuns(nodes: readonly RackNode[]): { lun: number; primary: RackNode; secondary: RackNode }[] {
  const [a, b] = nodes as [RackNode, RackNode];
  const out = [{ lun: 0, primary: a, secondary: b }];
  if (a.copies[1] !== undefined) out.push({ lun: 1, primary: b, secondary: a });
  return out;
}

async function withClient<T>(node: RackNode, what: string, fn: (c: ControlClient) => Promise<T>): Promise<T> {
  let client: ControlClient | null = null;
  try {
    client = await ControlClient.connect(node.controlPath, { connectTimeoutMs: 5_000, requestTimeoutMs: READ_REQUEST_TIMEOUT_MS });
    return await fn(client);
  } catch (error) {
    throw new RackError('ML_ERR_RACK_VOLUMES', `${what}: ${(error as Error).message}`);
  } finally {
    await client?.close().catch(() => undefined);
  }
}

/**
 * The two copies of every mirror have one geometry, as the controllers opened them: a real device's
 * size is known only once it is open (docs/rack.md 7). A mismatch is ML_ERR_RACK_VOLUMES (exit 2),
 * saying what would match.
 */
export async function checkGeometry(nodes: readonly RackNode[], o: ResolvedRack): Promise<void> {
  const luns = new Map<string, HostLun[]>();
  for (const node of nodes) luns.set(node.name, await withClient(node, `asking ${node.name} for its LUNs`, (c) => c.luns()));
  for (const m of mirroredLuns(nodes)) {
    const [p, s] = [m.primary, m.secondary].map((n) => luns.get(n.name)!.find((l) => l.lun === m.lun)!) as [HostLun, HostLun];
    if (p.sectorCount === s.sectorCount && p.sectorSize === s.sectorSize) continue;
    const describe = (n: RackNode, l: HostLun): string => `${n.name}'s (${n.copies[m.lun]!.asked}) ${l.sectorCount} sectors of ${l.sectorSize} bytes`;
    const bytes = [p, s].map((l) => l.sectorCount * l.sectorSize).find((b) => b !== o.volumeBytes);
    const hint = bytes !== undefined && bytes % MIB === 0 && bytes / MIB >= 1 ? `give --volume-mib ${bytes / MIB}` : 'pair it with a copy of the same size';
    throw new RackError('ML_ERR_RACK_VOLUMES', `LUN ${m.lun}: ${describe(m.primary, p)}, ${describe(m.secondary, s)}; a mirror's two copies are one size: ${hint}`);
  }
}

/**
 * A mirror with a real device on either side (`serial-disk:PATH`, `usb:`) may start with data on
 * it, and the firmware copies nothing at its first start: both copies must already be equal. Read
 * both through the control sockets before any host writes; different copies are ML_ERR_RACK_VOLUMES
 * (exit 2, naming the first LBA that differs); equal ones give the baseline the judge holds untouched
 * sectors to. Returns the baselines by LUN (only of mirrors whose copies were not blank).
 */
export async function checkCopiesBeforeRun(nodes: readonly RackNode[], o: ResolvedRack, dir: string): Promise<Map<number, Baseline>> {
  const baselines = new Map<number, Baseline>();
  const hasDevice = o.sourceVolume.kind === 'device' || o.targetVolume.kind === 'device';
  if (!hasDevice) return baselines;
  for (const m of mirroredLuns(nodes)) {
    const paths = [m.primary, m.secondary].map((n) => join(dir, `${n.name.toLowerCase()}-lun${m.lun}.before.img`)) as [string, string];
    try {
      await withClient(m.primary, `reading ${m.primary.name}'s copy of LUN ${m.lun} before the run`, (c) => readLunToFile(c, m.lun, paths[0]));
      await withClient(m.secondary, `reading ${m.secondary.name}'s copy of LUN ${m.lun} before the run`, (c) => readLunToFile(c, m.lun, paths[1]));
      const baseline = await compareCopies(paths, (lba) => {
        throw new RackError('ML_ERR_RACK_VOLUMES', `the copies of LUN ${m.lun} differ at LBA ${lba} before the run (${m.primary.name}: ${m.primary.copies[m.lun]!.asked}, `
          + `${m.secondary.name}: ${m.secondary.copies[m.lun]!.asked}); a mirror starts from two equal copies, and the rack copies neither onto the other: `
          + 'blank the device first (zeros over all of it), or pair it with a copy of the same contents');
      });
      if (baseline !== null) baselines.set(m.lun, baseline);
    } finally {
      await Promise.all(paths.map((p) => rm(p, { force: true })));
    }
  }
  return baselines;
}

/** Compares two equal-sized image files chunk by chunk; calls `differ` at the first LBA that differs. The non-zero contents as a baseline, or null if all zeros. */
async function compareCopies(paths: readonly [string, string], differ: (lba: number) => never): Promise<Baseline | null> {
  const sectorSize = RACK_SECTOR_BYTES;
  const chunkSectors = COMPARE_CHUNK_BYTES / sectorSize;
  const [x, y] = await Promise.all(paths.map((p) => open(p, 'r')));
  try {
    const size = (await x!.stat()).size;
    if ((await y!.stat()).size !== size) differ(0);
    const baseline = new SyncBaseline(chunkSectors);
    let blank = true;
    const [bx, by] = [Buffer.alloc(COMPARE_CHUNK_BYTES), Buffer.alloc(COMPARE_CHUNK_BYTES)];
    for (let offset = 0, chunk = 0; offset < size; offset += COMPARE_CHUNK_BYTES, chunk++) {
      const n = Math.min(COMPARE_CHUNK_BYTES, size - offset);
      await x!.read(bx, 0, n, offset);
      await y!.read(by, 0, n, offset);
      const [cx, cy] = [bx.subarray(0, n), by.subarray(0, n)];
      if (!cx.equals(cy)) {
        for (let i = 0; i < n; i++) if (cx[i] !== cy[i]) differ((offset + i - (i % sectorSize)) / sectorSize);
      }
      if (cx.some((b) => b !== 0)) {
        blank = false;
        baseline.record(chunk, cx, sectorSize);
      }
    }
    return blank ? null : baseline;
  } finally {
    await Promise.all([x!.close(), y!.close()]);
  }
}

/**
 * Reads every copy the judge cannot open as a file (in-process disks, boards at the far end of a
 * line) through its controller's control socket into `NAME-lunN.read.img` in the run's directory,
 * while the controllers still serve them: after the drain, before the stop (docs/rack.md 7). A copy
 * that cannot be read is returned with why, for the judge to report. Keyed `NAME/LUN`.
 */
export async function readCopies(nodes: readonly RackNode[], dir: string): Promise<Map<string, JudgedCopy>> {
  const out = new Map<string, JudgedCopy>();
  for (const node of nodes) {
    for (const [lunText, copy] of Object.entries(node.copies)) {
      if (copy.image !== null) continue;
      const lun = Number(lunText);
      const path = join(dir, `${node.name.toLowerCase()}-lun${lun}.read.img`);
      const base = { node: node.name, volume: copy.asked, read: 'control socket' as const };
      try {
        await withClient(node, `reading ${node.name}'s copy of LUN ${lun}`, (c) => readLunToFile(c, lun, path));
        out.set(`${node.name}/${lun}`, { ...base, image: path });
      } catch (error) {
        out.set(`${node.name}/${lun}`, { ...base, image: null, unreadable: (error as Error).message });
      }
    }
  }
  return out;
}
