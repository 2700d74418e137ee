import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MirrorMode } from '../../../firmware/mirror/types.ts';
import { RealClock } from '../../../host/clock/real.ts';
import { ptyPair, type PtyPair } from '../../../host/disks/serial-disk/socat-pty.ts';
import { SeededRandom } from '../../../host/random.ts';
import { silentLinkLogger } from '../../../host/transports/link-logger.ts';
import { openLiveLink, type LiveLink } from '../../../host/transports/live-link.ts';
import type { TcpLink } from '../../../host/transports/tcp-link.ts';
import { LivePair } from '../../bench/live-pair.ts';
import type { LinkFaultPlan } from '../link-fault-plan.ts';
import type { ProxyEvent } from './proxy-events.ts';
import type { ProxyStats } from './proxy-stats.ts';
import { startSerialFaultProxy } from './serial-relay.ts';
import { startTcpFaultProxy, type FaultProxy } from './tcp-proxy.ts';

export interface ProxiedPairOptions {
  link: 'tcp' | 'serial';
  plan: LinkFaultPlan;
  seed: number;
  mode?: MirrorMode;
  /** TCP data connections (default 2). */
  connections?: number;
  /** Writes to acknowledge at least; the run goes on until every timed fault of the plan is over too. */
  writesMin: number;
  /** When the plan's last timed fault ends (ms from the proxy's start); writes go on at least until then. */
  faultsEndMs: number;
  /** Wall-clock bound on each wait (link up, settling). */
  budgetMs: number;
  volumeBytes?: number;
  /** TCP only: `direct` leaves the proxy out (A dials B), as the baseline a benchmark compares with. */
  via?: 'proxy' | 'direct';
}

export interface ProxiedPairResult {
  /** -1 when the copy equals the source; else the first byte offset where it differs. */
  firstDifference: number;
  failure: unknown;
  writesAcked: number;
  proxy: ProxyStats;
  events: number;
  /** Times the source's and the target's supervisors took the link down. */
  downs: [number, number];
  wallMs: number;
  /** Wall ms from the first write to the last acknowledgement. */
  writingMs: number;
}

const WRITE_BYTES = 4096;
const WRITES_MAX = 100_000;

/**
 * Two controllers (the live pair: A mirrors LUN 0 to B) on live links through a fault proxy, on
 * the real clock: the shape of a rack run in one process, for the end-to-end tests and the soak
 * script (docs/fault-proxy.md 8). Over TCP, B listens and A dials the proxy; over serial, two socat
 * PTY pairs with the relay between them. Writes (4 KiB, queue depth 8, seeded places) go on until
 * `writesMin` are acknowledged and the plan's timed faults are over; then both must settle within
 * the budget and the copy must equal the source. Everything it opened is closed before it returns.
 */
export async function runProxiedPair(o: ProxiedPairOptions): Promise<ProxiedPairResult> {
  const clock = new RealClock();
  const closers: (() => Promise<void>)[] = [];
  const events: ProxyEvent[] = [];
  try {
    const { a, b, proxy } = o.link === 'tcp' ? await tcpLinks(o, clock, closers, events) : await serialLinks(o, clock, closers, events);
    const volumeBytes = o.volumeBytes ?? 4 * 1024 * 1024;
    const pair = new LivePair(a, b, { clock, seed: o.seed, mode: o.mode ?? 'speculative', volumeBytes });
    pair.start();
    closers.push(async () => pair.stop());
    await pair.waitUp(o.budgetMs);
    const writingFrom = clock.now();
    const acked = await drive(pair, { seed: o.seed, volumeBytes, writesMin: o.writesMin, until: () => clock.now() >= o.faultsEndMs });
    const writingMs = clock.now() - writingFrom;
    await pair.waitSettled(o.budgetMs);
    const downs = [pair.source, pair.target].map((c) => c.status()[0]!.link.counters.downs) as [number, number];
    return {
      firstDifference: await pair.firstDifference(), failure: pair.failure, writesAcked: acked, proxy: proxy.stats(), events: events.length, downs,
      wallMs: clock.now(), writingMs,
    };
  } finally {
    while (closers.length > 0) await closers.pop()!();
  }
}

async function tcpLinks(o: ProxiedPairOptions, clock: RealClock, closers: (() => Promise<void>)[], events: ProxyEvent[]) {
  const common = { clock, logger: silentLinkLogger };
  const connections = o.connections ?? 2;
  const b = await openLiveLink({ kind: 'tcp', role: 'listen', host: '127.0.0.1', port: 0, connections },
    { ...common, localName: 'B', peerName: 'A' });
  closers.push(() => b.shutdown());
  const proxy = await startTcpFaultProxy({
    plan: o.plan, seed: o.seed, clock, listen: { host: '127.0.0.1', port: 0 }, to: { host: '127.0.0.1', port: (b as TcpLink).port },
    onEvent: (e) => void events.push(e),
  });
  closers.push(() => proxy.stop());
  const port = o.via === 'direct' ? (b as TcpLink).port : proxy.address!.port;
  const a = await openLiveLink({ kind: 'tcp', role: 'connect', host: '127.0.0.1', port, connections }, { ...common, localName: 'A', peerName: 'B' });
  closers.push(() => a.shutdown());
  return { a, b, proxy };
}

async function serialLinks(o: ProxiedPairOptions, clock: RealClock, closers: (() => Promise<void>)[], events: ProxyEvent[]) {
  const dir = await mkdtemp(join(tmpdir(), 'mirrorlab-proxied-pair-'));
  closers.push(() => rm(dir, { recursive: true, force: true }));
  const pairs: PtyPair[] = [];
  closers.push(async () => void (await Promise.all(pairs.map((p) => p.stop()))));
  pairs.push(await ptyPair(dir, 'a'), await ptyPair(dir, 'b'));
  const [one, two] = pairs as [PtyPair, PtyPair];
  const proxy: FaultProxy = await startSerialFaultProxy({
    plan: o.plan, seed: o.seed, clock, pathA: one.b, pathB: two.a, baud: 115_200, onEvent: (e) => void events.push(e),
  });
  closers.push(() => proxy.stop());
  const common = { clock, logger: silentLinkLogger };
  const open = async (path: string, localName: string, peerName: string): Promise<LiveLink> => {
    const link = await openLiveLink({ kind: 'serial', path, baudRate: 115_200 }, { ...common, localName, peerName });
    closers.push(() => link.shutdown());
    return link;
  };
  return { a: await open(one.a, 'A', 'B'), b: await open(two.b, 'B', 'A'), proxy };
}

/** Seeded 4 KiB writes at queue depth 8 until `writesMin` are acknowledged and `until()` holds. */
async function drive(pair: LivePair, o: { seed: number; volumeBytes: number; writesMin: number; until: () => boolean }): Promise<number> {
  const random = new SeededRandom(o.seed).fork('proxied-pair-writes');
  const slots = o.volumeBytes / WRITE_BYTES;
  let issued = 0;
  let acked = 0;
  await new Promise<void>((resolve, reject) => {
    const issue = (): void => {
      if (acked >= o.writesMin && o.until()) {
        if (acked === issued) resolve();
        return;
      }
      if (issued >= WRITES_MAX) return reject(new Error(`${WRITES_MAX} writes and the fault plan has not run its course`));
      const i = issued++;
      const data = new Uint8Array(WRITE_BYTES).fill((i % 251) + 1);
      data[0] = i & 0xff;
      pair.source.submitWrite(0, random.int(slots) * (WRITE_BYTES / 512), data, (error) => {
        if (error) return reject(error as Error);
        acked++;
        issue();
      });
    };
    for (let k = 0; k < 8; k++) issue();
  });
  return acked;
}
