import { describe, expect, it } from 'vitest';
import { barChart, lineChart, niceTicks } from '../../../hil/report/svg.ts';

describe('report charts', () => {
  it('ticks are round numbers that cover the data, so nothing is drawn past the axis', () => {
    expect(niceTicks(0, 34793)).toEqual([0, 10000, 20000, 30000, 40000]);
    expect(niceTicks(0, 0.96)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0, 125)).toEqual([0, 25, 50, 75, 100, 125]);
    expect(niceTicks(31, 33)).toEqual([31, 31.5, 32, 32.5, 33]);
    for (const hi of [1, 7, 13.2, 999, 1e6 + 1]) {
      const t = niceTicks(0, hi);
      expect(t[0]).toBe(0);
      expect(t.at(-1)!).toBeGreaterThanOrEqual(hi);
    }
  });

  it('every bar and point lies inside the plot area', () => {
    const svg = barChart({ title: 't', yLabel: 'y', categories: ['a', 'b'], groups: [{ name: 'g', values: [34793, 347] }], references: [{ name: 'floor', value: 29509 }] });
    const top = Number(/<rect class="plot" x="\d+" y="(\d+)"/.exec(svg)![1]);
    for (const m of svg.matchAll(/<rect class="bar[^"]*" x="[\d.]+" y="([\d.]+)"/g)) expect(Number(m[1])).toBeGreaterThanOrEqual(top);
    const line = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', xLog: true, series: [{ name: 's', points: [[0.2, 0.96], [20, 0.5]] }] });
    for (const m of line.matchAll(/<circle [^>]*cy="([\d.]+)"/g)) expect(Number(m[1])).toBeGreaterThanOrEqual(top);
  });

  it('escapes what it is given', () => {
    const svg = lineChart({ title: '<script>alert(1)</script>', xLabel: 'a&b', yLabel: '"y"', series: [{ name: '</svg>', points: [[1, 1]] }] });
    expect(svg).not.toContain('<script>');
    expect(svg).not.toMatch(/<\/svg>[\s\S]*<\/svg>/);
    expect(svg).toContain('&lt;script&gt;');
  });
});
