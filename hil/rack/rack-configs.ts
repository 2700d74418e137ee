import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LIVE_LINK_LIMITS } from '../../host/transports/live-link.ts';
import type { ResolvedRack } from './options.ts';

/** One controller of the rack: its name, id, and the files of its run directory. */
export interface RackNode {
  name: 'A' | 'B';
  id: number;
  configPath: string;
  controlPath: string;
  telemetryPath: string;
  /** Image file per LUN. */
  images: Record<number, string>;
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

/** The sector size of every image (the volume spec's default). */
export const RACK_SECTOR_BYTES = 512;

/**
 * Writes both controllers' config files into `dir` (docs/rack.md 1): A primary of LUN 0, B its
 * replica; with `bidirectional`, B primary of LUN 1 and A its replica. Images are files in `dir`,
 * created blank by the controllers on first open. Telemetry is a file per controller, appended to
 * by each incarnation.
 */
export async function writeRackConfigs(dir: string, o: ResolvedRack, wiring: RackWiring): Promise<[RackNode, RackNode]> {
  const nodes = (['A', 'B'] as const).map((name, i): RackNode => {
    const stem = name.toLowerCase();
    const images: Record<number, string> = { 0: join(dir, `${stem}-lun0.img`) };
    if (o.bidirectional) images[1] = join(dir, `${stem}-lun1.img`);
    return {
      name, id: i + 1, images,
      configPath: join(dir, `${stem}.json`), controlPath: join(dir, `${stem}.sock`), telemetryPath: join(dir, `${stem}.jsonl`),
    };
  }) as [RackNode, RackNode];
  for (const node of nodes) await writeFile(node.configPath, `${JSON.stringify(configOf(node, o, wiring), null, 2)}\n`);
  return nodes;
}

function configOf(node: RackNode, o: ResolvedRack, wiring: RackWiring): object {
  const peer = node.name === 'A' ? 'B' : 'A';
  const volume = (lun: number): string => `file:${node.images[lun]}:${o.volumeBytes}B`;
  const primaryLun = node.name === 'A' ? 0 : 1;
  const luns: object[] = [];
  for (const lun of Object.keys(node.images).map(Number)) {
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
