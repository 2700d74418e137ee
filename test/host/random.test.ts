import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../host/random.ts';

const draw = (r: SeededRandom, n: number): number[] => Array.from({ length: n }, () => r.uint32());

describe('SeededRandom', () => {
  it('is a pure function of its seed', () => {
    expect(draw(new SeededRandom(42), 50)).toEqual(draw(new SeededRandom(42), 50));
    expect(draw(new SeededRandom(42), 50)).not.toEqual(draw(new SeededRandom(43), 50));
    expect(draw(new SeededRandom(2 ** 40 + 1), 5)).not.toEqual(draw(new SeededRandom(1), 5));
  });

  it('forks independent streams that do not depend on draws made before', () => {
    const a = new SeededRandom(7);
    const b = new SeededRandom(7);
    draw(b, 100);
    expect(draw(a.fork('link'), 20)).toEqual(draw(b.fork('link'), 20));
    expect(draw(a.fork('link'), 20)).not.toEqual(draw(a.fork('disk'), 20));
  });

  it('draws integers in range without bias, including bounds beyond 2^32', () => {
    const r = new SeededRandom(1);
    const counts = [0, 0, 0];
    for (let i = 0; i < 30_000; i++) counts[r.int(3)]!++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
    for (let i = 0; i < 1000; i++) {
      const x = r.int(2 ** 40);
      expect(Number.isInteger(x) && x >= 0 && x < 2 ** 40).toBe(true);
    }
    expect(r.int(1)).toBe(0);
  });

  it('decides with exact ratios', () => {
    const r = new SeededRandom(3);
    expect(r.chance(0, 5)).toBe(false);
    expect(r.chance(5, 5)).toBe(true);
    let hits = 0;
    for (let i = 0; i < 20_000; i++) if (r.chance(1, 4)) hits++;
    expect(Math.abs(hits - 5000)).toBeLessThan(300);
    expect(() => r.chance(0.5, 1)).toThrow(/integers/);
    expect(() => r.int(0)).toThrow(/bound/);
  });
});
