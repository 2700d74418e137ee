import { execFileSync } from 'node:child_process';
import { expect } from 'vitest';
import { RACK_DEFAULTS, type RackOptions } from '../../../hil/rack/options.ts';
import type { RackReport } from '../../../hil/rack/report.ts';

export const MIB = 1024 * 1024;

/** What the tests of racks on attached-target copies share, for one scratch directory. */
export function attachedRack(scratch: { dir: () => string }) {
  return {
    /** A short rack on 1 MiB copies (read whole through a control socket at the end): 2 s of writing at queue depth 4. */
    short: (o: Partial<RackOptions>): RackOptions => ({
      ...RACK_DEFAULTS, durationS: 2, queueDepth: 4, volumeBytes: MIB, dir: scratch.dir(), drainS: 20, ...o,
    }),
    /** Processes still running with the scratch directory in their command line (controllers, board stand-ins, socat). */
    leftovers: (): string[] => {
      const out = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
      return out.split('\n').filter((l) => l.includes(scratch.dir()) && !l.includes(' ps '));
    },
  };
}

/** A rack report that is consistent, drained, with writes acknowledged and two identical 1 MiB copies. */
export function expectConsistent(r: RackReport): void {
  expect(r.violations, r.violations.map((v) => v.message).join('\n')).toEqual([]);
  expect(r.verdict).toBe('consistent');
  expect(r.drained).toBe(true);
  expect(r.writes.acknowledged).toBeGreaterThan(0);
  const [a, b] = [r.images.find((i) => i.node === 'A')!, r.images.find((i) => i.node === 'B')!];
  expect(a.sha256).toBe(b.sha256);
  expect(b.bytes).toBe(MIB);
}
