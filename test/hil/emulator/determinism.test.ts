import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { DEFAULT_EMULATE, type EmulateOptions } from '../../../hil/emulator/options.ts';
import { runEmulation } from '../../../hil/emulator/run.ts';
import { parseLinkFaults } from '../../../hil/faults/link-fault-plan.ts';
import type { WorkerReply } from '../../../hil/campaign/worker.ts';
import { traceFingerprint } from '../../../hil/trace/fingerprint.ts';

const opts: EmulateOptions = {
  ...DEFAULT_EMULATE, writes: 400, sourceVolume: { kind: 'mem', bytes: 8 << 20, sectorSize: 512 }, targetVolume: { kind: 'mem', bytes: 8 << 20, sectorSize: 512 }, lockContentionPerMillion: 50_000,
  faults: parseLinkFaults('drop=0.02,corrupt=0.02,duplicate=0.02,reorder=0.02,partition=1'),
};

/** Run in a campaign worker thread, as a campaign does. */
function inWorker(o: EmulateOptions): Promise<string> {
  const worker = new Worker(new URL('../../../hil/campaign/worker-entry.mjs', import.meta.url));
  return new Promise((resolve, reject) => {
    worker.once('message', (reply: WorkerReply) => {
      worker.postMessage({ stop: true });
      if ('error' in reply) reject(new Error(reply.error));
      else resolve(reply.summary.traceHash);
    });
    worker.once('error', reject);
    worker.postMessage({ seed: o.seed, options: o });
  });
}

describe('determinism: a run is a pure function of its options and seed', () => {
  it('the same seed gives the same trace, run after run and in a worker thread', async () => {
    const a = await runEmulation(opts);
    const b = await runEmulation(opts);
    expect(a.traceHash).toMatch(/^[0-9a-f]{64}$/);
    expect(b.traceHash).toBe(a.traceHash);
    expect(b).toEqual(a);
    expect(await inWorker(opts)).toBe(a.traceHash);
  });

  it('a different seed gives a different trace', async () => {
    const a = await runEmulation(opts);
    const c = await runEmulation({ ...opts, seed: 2 });
    expect(c.traceHash).not.toBe(a.traceHash);
  });

  it('the trace holds the link faults themselves, not only their effects, and its events fingerprint to traceHash', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'mirrorlab-trace-')), 'run.jsonl');
    const r = await runEmulation(opts, { tracePath: path });
    const events = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; fault?: string });
    const faults = new Set(events.filter((e) => e.kind === 'link.fault').map((e) => e.fault));
    expect([...faults].sort()).toEqual(['corrupt', 'drop', 'duplicate', 'partition.heal', 'partition.start', 'reorder']);
    expect(r.faultsInjected.framesDropped).toBeGreaterThan(0);
    // The file's lines, parsed back, are the events the run fingerprinted (hil/trace/fingerprint.ts).
    expect(events.length).toBe(r.traceEvents);
    expect(traceFingerprint(events)).toBe(r.traceHash);
  });
});
