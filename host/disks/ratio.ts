import { assert } from '../../firmware/errors.ts';

/** A probability as a ratio of integers (docs/design.md 2.6: no floats in decisions). */
export interface Ratio {
  numerator: number;
  denominator: number;
}

export function checkRatio(ratio: Ratio, what: string): void {
  const { numerator, denominator } = ratio;
  assert(
    Number.isSafeInteger(numerator) && Number.isSafeInteger(denominator) && denominator >= 1 && numerator >= 0 && numerator <= denominator,
    `${what} must be a ratio of integers with 0 <= numerator <= denominator, got ${numerator}/${denominator}`,
  );
}
