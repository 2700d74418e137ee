import type { MirrorlabError } from '../../firmware/errors.ts';
import type { HostClient } from '../../host/runtime/control-client.ts';
import { writeData } from '../../host/workload/data.ts';
import { SeededRandom } from '../../host/random.ts';
import { LatencyRecorder, type LatencySummary } from './latency.ts';

export interface ClientLoadSpec {
  lun: number;
  writes: number;
  writeBytes: number;
  queueDepth: number;
  pattern: 'random' | 'sequential';
  seed: number;
  /** The writer id in every sector (the controller's id, by convention) and the first write's tag. */
  writer: number;
  firstTag: number;
}

export interface ClientLoadResult {
  writes: number;
  acknowledged: number;
  errors: number;
  firstError: string | null;
  wallMs: number;
  megabytesPerSecond: number;
  /** Wall-clock latency of each write, from request to the controller's acknowledgement. */
  latency: LatencySummary;
}

/** Largest tag self-describing data can carry (a u32 field). */
export const TAG_MAX = 0xffffffff;

/**
 * A host workload against a live controller, through any {@link HostClient} (the control socket
 * today): `writes` self-describing writes (host/workload/data.ts) of `writeBytes`, `queueDepth` in
 * flight, placed sequentially or at seeded random places on the LUN, each with its own tag, so a
 * checker reading the images afterwards can tell which write put each sector there. Timing is wall
 * clock: this measures a real system.
 */
export async function runClientLoad(client: HostClient, spec: ClientLoadSpec): Promise<ClientLoadResult> {
  const lun = (await client.luns()).find((l) => l.lun === spec.lun);
  if (!lun) throw new Error(`no LUN ${spec.lun}`);
  const count = Math.max(1, Math.floor(spec.writeBytes / lun.sectorSize));
  const slots = Math.floor(lun.sectorCount / count);
  const random = new SeededRandom(spec.seed);
  const latency = new LatencyRecorder();
  let issued = 0;
  let acknowledged = 0;
  let errors = 0;
  let firstError: string | null = null;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (issued < spec.writes) {
      const i = issued++;
      const tag = spec.firstTag + i;
      const lba = (spec.pattern === 'sequential' ? i % slots : random.int(slots)) * count;
      const data = writeData(spec.writer, spec.lun, tag, lba, count, lun.sectorSize);
      const t0 = performance.now();
      try {
        await client.write(spec.lun, lba, data, { tag });
        acknowledged++;
        latency.record(performance.now() - t0);
      } catch (error) {
        errors++;
        const e = error as MirrorlabError;
        firstError ??= `${e.code ?? 'error'}: ${e.message}`;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(spec.queueDepth, spec.writes) }, worker));
  const wallMs = performance.now() - started;
  const bytes = acknowledged * count * lun.sectorSize;
  return {
    writes: spec.writes, acknowledged, errors, firstError, wallMs: Math.round(wallMs),
    megabytesPerSecond: Math.round((bytes / 1e6 / (wallMs / 1000)) * 100) / 100, latency: latency.summary(),
  };
}
