import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LIVE_LINK_LIMITS } from '../../host/transports/live-link.ts';
import { formatVolumeSpec } from '../../host/disks/volume-spec.ts';
import { formatRackVolume, type RackVolume, type ResolvedRack } from './options.ts';

/**
 * One copy of a LUN at one controller: the volume spec its config names, and where the judge
 * finds its bytes: an image file (read after the clean stop), or nothing the rack can read as a
 * file (an in-process disk, a board at the far end of a line), read through the controller's
 * control socket after the drain, before the stop (docs/rack.md 7).
 */
export interface RackCopy {
  spec: string;
  /** The image file, or null: read through the control socket. */
  image: string | null;
  /** The volume as the rack was asked for it (`file`, `usb-emu:8MiB`, `serial-disk`...). */
  asked: string;
}

/** One controller of the rack: its name, id, and the files of its run directory. */
export interface RackNode {
  name: 'A' | 'B';
  id: number;
  configPath: string;
  controlPath: string;
  telemetryPath: string;
  /** Its copy of each LUN. */
  copies: Record<number, RackCopy>;
}

/** Where each controller's link goes: TCP (B listens on `listenPort`, A dials the proxy) or the outer ends of the PTY pairs. */
export type RackWiring =
  | { link: 'tcp'; listenPort: number; proxyPort: number }
  | { link: 'serial'; pathA: string; pathB: string };

/**
 * Supervision for a rack: heartbeats every 50 ms, a link down after 500 ms of silence, 500 ms of
 * probation, reconnect tries every 100 ms, so that a kill or a cut is noticed and recovered from in
 * about a second of a run that lasts a few.
 */
export const RACK_SUPERVISION = { heartbeatMs: 50, interruptionMs: 500, probationMs: 500, connectRetryMs: 100 } as const;
/** How long a controller's clean stop may drain (ms); the rack has drained the pair before it stops them. */
const STOP_DRAIN_MS = 5_000;

/**
 * Writes both controllers' config files into `dir` (docs/rack.md 1): A primary of LUN 0, B its
 * replica; with `bidirectional`, B primary of LUN 1 and A its replica. Each side's copies are what
 * its volume flag asks (docs/rack.md 7): images are files in `dir`, created blank by the
 * controllers on first open; a board stand-in's copy is reached through `boards`. Telemetry is a
 * file per controller, appended to by each incarnation.
 */
export async function writeRackConfigs(dir: string, o: ResolvedRack, wiring: RackWiring, boards: RackBoardPorts): Promise<[RackNode, RackNode]> {
  const nodes = (['A', 'B'] as const).map((name, i): RackNode => {
    const stem = name.toLowerCase();
    const asked = name === 'A' ? o.sourceVolume : o.targetVolume;
    const copies: Record<number, RackCopy> = {};
    for (const lun of o.bidirectional ? [0, 1] : [0]) copies[lun] = copyOf(asked, { dir, stem, lun, bytes: o.volumeBytes, boardPort: boards[name]?.[lun] });
    return {
      name, id: i + 1, copies,
      configPath: join(dir, `${stem}.json`), controlPath: join(dir, `${stem}.sock`), telemetryPath: join(dir, `${stem}.jsonl`),
    };
  }) as [RackNode, RackNode];
  for (const node of nodes) await writeFile(node.configPath, `${JSON.stringify(configOf(node, o, wiring), null, 2)}\n`);
  return nodes;
}

/**
 * The line rate a board stand-in on a PTY is told, and its controller too: a PTY ignores it, but the
 * serial disk's first timeouts follow the line time at this rate (docs/usb-serial-targets.md 4.3),
 * so the fastest the protocol allows keeps a lost frame from costing seconds.
 */
export const RACK_PTY_BAUD = 4_000_000;

/** Per controller and LUN, the controller's end of the PTY pair a board stand-in serves (serial-disk copies only). */
export type RackBoardPorts = Partial<Record<'A' | 'B', Record<number, string>>>;

function copyOf(v: RackVolume, at: { dir: string; stem: string; lun: number; bytes: number; boardPort: string | undefined }): RackCopy {
  const asked = formatRackVolume(v);
  if (v.kind === 'image') {
    const image = join(at.dir, `${at.stem}-lun${at.lun}.img`);
    return { spec: `file:${image}:${at.bytes}B`, image, asked };
  }
  if (v.kind === 'serial-pty') {
    if (at.boardPort === undefined) throw new Error(`no board port for ${at.stem} LUN ${at.lun}`);
    return { spec: `serial-disk:${at.boardPort}:${RACK_PTY_BAUD}`, image: null, asked };
  }
  return { spec: formatVolumeSpec(v.spec), image: null, asked };
}

function configOf(node: RackNode, o: ResolvedRack, wiring: RackWiring): object {
  const peer = node.name === 'A' ? 'B' : 'A';
  const volume = (lun: number): string => node.copies[lun]!.spec;
  const primaryLun = node.name === 'A' ? 0 : 1;
  const luns: object[] = [];
  for (const lun of Object.keys(node.copies).map(Number)) {
    luns.push(lun === primaryLun ? { lun, volume: volume(lun), mirror: { peer, mode: o.mode } } : { lun, volume: volume(lun), replicaOf: peer });
  }
  return {
    name: node.name, id: node.id, onLockReject: o.onLockReject, luns,
    peers: [{ name: peer, ...linkOf(node.name, wiring, o.connections) }],
    supervision: RACK_SUPERVISION, limits: { ...LIVE_LINK_LIMITS },
    control: { path: node.controlPath }, telemetry: node.telemetryPath, shutdown: { drainMs: STOP_DRAIN_MS },
  };
}

function linkOf(name: 'A' | 'B', wiring: RackWiring, connections: number): { link: string; connections?: number } {
  if (wiring.link === 'serial') return { link: `serial:${name === 'A' ? wiring.pathA : wiring.pathB}` };
  return name === 'A'
    ? { link: `tcp:127.0.0.1:${wiring.proxyPort}`, connections }
    : { link: `tcp-listen:127.0.0.1:${wiring.listenPort}`, connections };
}
