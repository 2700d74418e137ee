/**
 * The Random port (docs/design.md 2.1): a seeded PRNG. Decisions use integers and ratios, never floats,
 * so that a run is a pure function of its seed on every platform.
 */
export interface Random {
  /** A uniform 32-bit unsigned integer. */
  uint32(): number;
  /** A uniform integer in [0, bound); `bound` is an integer in [1, 2^32]. */
  int(bound: number): number;
  /** True with probability numerator/denominator (integers, 0 <= numerator <= denominator). */
  chance(numerator: number, denominator: number): boolean;
  /**
   * An independent stream derived from this generator's seed and `label`, so that one
   * component drawing more numbers never shifts another component's draws.
   */
  fork(label: string): Random;
}
