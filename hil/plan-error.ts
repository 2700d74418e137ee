import { MirrorlabError } from '../firmware/errors.ts';

/**
 * A user's plan (fault plan, volume spec, scenario) said something mirrorlab cannot do. The
 * message says what was wrong and what is allowed; the CLI prints it and exits with status 2.
 */
export class UsageError extends MirrorlabError {
  constructor(message: string, code = 'ML_ERR_USAGE') {
    super(code, message);
  }
}

/** Parse a duration like `50ms`, `1.5s` or `200us` (a bare number is milliseconds) into ms. */
export function parseDurationMs(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(us|ms|s)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${what}: "${text}" is not a duration; write e.g. 50ms, 1.5s or 200us`);
  const v = Number(m[1]);
  return m[2] === 's' ? v * 1000 : m[2] === 'us' ? v / 1000 : v;
}

/**
 * Parse a probability: a decimal in [0, 1] (`0.02`) or a percentage (`2%`), returned in parts per
 * million, so that every decision made with it is an integer ratio (docs/design.md 2.6).
 */
export function parsePerMillion(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(%)?$/.exec(text.trim());
  const v = m ? Number(m[1]) / (m[2] ? 100 : 1) : NaN;
  if (!(v >= 0 && v <= 1)) throw new UsageError(`${what}: "${text}" is not a probability; write a decimal from 0 to 1 (0.02) or a percentage (2%)`);
  return Math.round(v * 1_000_000);
}
