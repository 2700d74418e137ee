import { describe, expect, it } from 'vitest';
import { measureDisks, renderAttached } from '../../../hil/bench/disk-bench.ts';

/** Benchmarks are not tests (docs/conventions.md 11): this checks what the attached rows report, never how fast. */
const positive = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x) && x > 0;

describe('the disk benchmark\'s attached-target rows', () => {
  it('measure usb-emu and serial-disk over a PTY beside the memory disk underneath, as ratios, and label the PTY figures', async () => {
    const r = await measureDisks(0.002);
    expect(r.attached.map((x) => [x.layout, x.underneath])).toEqual([['usb-emu:64MiB', 'mem:64MiB'], ['serial-disk (PTY)', 'mem:64MiB']]);
    for (const x of r.attached) {
      expect([x.random4kMBps, x.sequential1mMBps, x.underneathRandom4kMBps, x.underneathSequential1mMBps, x.random4kRatio, x.sequential1mRatio].every(positive)).toBe(true);
      expect(x.random4kRatio).toBeCloseTo(x.random4kMBps / x.underneathRandom4kMBps, 1);
    }
    expect(r.attachedNotes.join('\n')).toMatch(/serial-disk over a PTY: upper bounds \(a PTY ignores the baud rate\)/);
    const text = renderAttached(r).join('\n');
    expect(text).toMatch(/usb-emu:64MiB\s+[\d.]+ \([\d.e-]+\)\s+[\d.]+ \([\d.e-]+\)/);
    expect(text).toMatch(/note: serial-disk over a PTY: upper bounds/);
  });
});
