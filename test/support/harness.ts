import { expect } from 'vitest';
import type { StorageController } from '../../firmware/controller/storage-controller.ts';
import type { MirrorlabError } from '../../firmware/errors.ts';
import type { BlockDevice } from '../../firmware/ports/block-device.ts';
import type { Telemetry } from '../../firmware/ports/telemetry.ts';
import type { TelemetryEvent } from '../../firmware/telemetry/events.ts';
import type { VirtualClock } from '../../host/clock/virtual.ts';
import { buildTopology, type Topology, type TopologyOptions } from '../../hil/emulator/topology.ts';

/** Telemetry that keeps everything, for assertions. */
export class RecordingTelemetry implements Telemetry {
  readonly enabled = true;
  readonly events: TelemetryEvent[] = [];
  emit(event: TelemetryEvent): void {
    this.events.push(event);
  }
  /** States a machine entered, in order (leaf paths like `rollback.resending`). */
  states(machinePrefix: string): string[] {
    return this.events.flatMap((e) => (e.kind === 'state' && e.machine.startsWith(machinePrefix) ? [e.to] : []));
  }
  of<K extends TelemetryEvent['kind']>(kind: K): Extract<TelemetryEvent, { kind: K }>[] {
    return this.events.filter((e): e is Extract<TelemetryEvent, { kind: K }> => e.kind === kind);
  }
}

/** Deterministic, distinguishable data for write number `n`. */
export function pattern(n: number, bytes: number): Uint8Array {
  const data = new Uint8Array(bytes);
  let x = (n * 2654435761) >>> 0 || 1;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = x & 0xff;
  }
  return data;
}

export interface WriteSpec {
  lba: number;
  sectors: number;
}

export interface WriteResult {
  spec: WriteSpec;
  issuedAt: number;
  ackedAt: number;
  error?: MirrorlabError;
}

/**
 * Issue `specs` to `controller` on `lun`, keeping at most `queueDepth` in flight, and run the
 * clock until all are acknowledged (or `maxMs` of virtual time passes: then the test fails).
 */
export async function runWrites(
  topo: Topology, controller: StorageController, lun: number, specs: WriteSpec[], queueDepth: number, maxMs = 60_000,
): Promise<WriteResult[]> {
  const results: WriteResult[] = [];
  let next = 0;
  let done = 0;
  const sectorSize = topo.options.sectorSize;
  // Only when they are not up yet: awaiting would let a caller's later requests in ahead of these writes.
  if (!linksAreUp(topo)) await linksUp(topo);
  const issue = (): void => {
    if (next >= specs.length) return;
    const spec = specs[next]!;
    const data = pattern(next + lun * 1_000_003, spec.sectors * sectorSize);
    next++;
    const r: WriteResult = { spec, issuedAt: topo.clock.now(), ackedAt: -1 };
    results.push(r);
    controller.submitWrite(lun, spec.lba, data, (error) => {
      r.ackedAt = topo.clock.now();
      if (error) r.error = error;
      done++;
      issue();
    });
  };
  for (let i = 0; i < queueDepth; i++) issue();
  const deadline = topo.clock.now() + maxMs;
  await topo.clock.run({ until: () => done === specs.length, untilMs: deadline });
  expect(done, `writes acknowledged within ${maxMs} ms of virtual time`).toBe(specs.length);
  return results;
}

/**
 * Run the clock until both controllers' links are up (connections opened, HELLOs exchanged): a few
 * round trips after start. Write helpers start here, so a latency they measure is the mirror's,
 * not the link's start-up.
 */
export async function linksUp(topo: Topology, maxMs = 10_000): Promise<void> {
  const up = (): boolean => linksAreUp(topo);
  if (up()) return;
  await topo.clock.run({ until: up, untilMs: topo.clock.now() + maxMs });
  expect(up(), `links up within ${maxMs} ms of virtual time`).toBe(true);
}

export function linksAreUp(topo: Topology): boolean {
  return [topo.source, topo.target].every((c) => c.status().every((p) => p.link.state === 'up'));
}

/** One host's share of {@link runConcurrentWrites}: `specs` to `controller` on `lun`. */
export interface WriteJob {
  controller: StorageController;
  lun: number;
  specs: WriteSpec[];
}

/**
 * {@link runWrites} for several hosts at once (both directions of a bidirectional topology): each
 * job keeps at most `queueDepth` of its writes in flight; the clock runs once, until every write
 * of every job is acknowledged (or `maxMs` passes: then the test fails). Results are per job, in
 * issue order; errors are recorded, not thrown, so a test can insist there are none.
 */
export async function runConcurrentWrites(topo: Topology, jobs: WriteJob[], queueDepth: number, maxMs = 60_000): Promise<WriteResult[][]> {
  const results: WriteResult[][] = jobs.map(() => []);
  if (!linksAreUp(topo)) await linksUp(topo);
  const total = jobs.reduce((n, j) => n + j.specs.length, 0);
  let done = 0;
  const sectorSize = topo.options.sectorSize;
  jobs.forEach((job, j) => {
    let next = 0;
    const issue = (): void => {
      if (next >= job.specs.length) return;
      const spec = job.specs[next]!;
      const data = pattern(next + job.lun * 1_000_003, spec.sectors * sectorSize);
      next++;
      const r: WriteResult = { spec, issuedAt: topo.clock.now(), ackedAt: -1 };
      results[j]!.push(r);
      job.controller.submitWrite(job.lun, spec.lba, data, (error) => {
        r.ackedAt = topo.clock.now();
        if (error) r.error = error;
        done++;
        issue();
      });
    };
    for (let i = 0; i < queueDepth; i++) issue();
  });
  await topo.clock.run({ until: () => done === total, untilMs: topo.clock.now() + maxMs });
  expect(done, `writes acknowledged within ${maxMs} ms of virtual time`).toBe(total);
  return results;
}

/** Run until every controller has nothing in flight (logs empty, sessions closed). */
export async function settle(topo: Topology, maxMs = 60_000): Promise<void> {
  const all = [topo.source, topo.target];
  await topo.clock.run({ until: () => all.every((c) => c.settled()), untilMs: topo.clock.now() + maxMs });
  for (const c of all) {
    expect(c.failure, `${c.name} firmware failure`).toBeNull();
    expect(c.settled(), `${c.name} settled within ${maxMs} ms; status ${JSON.stringify(c.status())}`).toBe(true);
  }
}

/** The first sector where the mirrors differ, or -1. */
export async function firstDifference(clock: VirtualClock, a: BlockDevice, b: BlockDevice): Promise<number> {
  const pa = a.read(0, a.sectorCount);
  const pb = b.read(0, b.sectorCount);
  let ra: Uint8Array | undefined;
  let rb: Uint8Array | undefined;
  void pa.then((x) => (ra = x));
  void pb.then((x) => (rb = x));
  await clock.run({ until: () => ra !== undefined && rb !== undefined });
  const [x, y] = [ra!, rb!];
  if (x.length !== y.length) return 0;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return Math.floor(i / a.sectorSize);
  return -1;
}

/** Every mirrored pair of the topology holds the same bytes. */
export async function expectMirrorsEqual(topo: Topology): Promise<void> {
  for (const p of topo.pairs) {
    const diff = await firstDifference(topo.clock, p.primaryVolume, p.secondaryVolume);
    expect(diff, `LUN ${p.lun}: first differing sector between ${p.primaryVolume.name} and ${p.secondaryVolume.name}`).toBe(-1);
  }
}

/** A small topology for firmware tests: 4 MiB volumes, recording telemetry. */
export function smallTopology(opts: Partial<TopologyOptions> = {}): { topo: Topology; tel: RecordingTelemetry } {
  const tel = new RecordingTelemetry();
  const topo = buildTopology({ volumeSectors: 8192, lockRegionSectors: 64, telemetry: tel, ...opts });
  topo.start();
  return { topo, tel };
}

/** `n` writes of `sectors` sectors each at pseudo-random aligned places in the first `span` sectors. */
export function randomWrites(n: number, sectors: number, span: number, seed = 1): WriteSpec[] {
  let x = seed;
  const specs: WriteSpec[] = [];
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    specs.push({ lba: (x % Math.floor(span / sectors)) * sectors, sectors });
  }
  return specs;
}

export function sequentialWrites(n: number, sectors: number, start = 0): WriteSpec[] {
  return Array.from({ length: n }, (_, i) => ({ lba: start + i * sectors, sectors }));
}

/** The frame type byte of an encoded frame (header offset 3). */
export const frameTypeOf = (bytes: Uint8Array): number => bytes[3]!;

/**
 * A fault hook for tests: `pick(dir, type, n)` is called for every frame with its direction, its
 * type and how many frames of that type went that way before; it returns what to do with it.
 */
export function scriptedFaults(
  pick: (dir: 'ab' | 'ba', type: number, n: number) => 'pass' | 'drop' | 'corrupt' | 'duplicate' | { delayMs: number },
) {
  const seen = new Map<string, number>();
  return {
    onSend(dir: 'ab' | 'ba', bytes: Uint8Array) {
      const type = frameTypeOf(bytes);
      const key = `${dir}:${type}`;
      const n = seen.get(key) ?? 0;
      seen.set(key, n + 1);
      const action = pick(dir, type, n);
      if (action === 'pass') return null;
      if (action === 'drop') return [];
      if (action === 'duplicate') return [{ bytes, extraDelayMs: 0 }, { bytes, extraDelayMs: 0.01 }];
      if (action === 'corrupt') {
        const copy = bytes.slice();
        copy[Math.min(copy.length - 5, 60)]! ^= 0x40;
        return [{ bytes: copy, extraDelayMs: 0 }];
      }
      return [{ bytes, extraDelayMs: action.delayMs }];
    },
  };
}
