/**
 * Two kinds of failure (docs/conventions.md 5).
 *
 * Operating errors (a bad frame off the wire, a media error, a timeout, bad user input) are
 * instances of {@link MirrorlabError}: typed, with a stable `code` such as `ML_ERR_FRAME_CRC`,
 * and handled by whoever can do something about them.
 *
 * Programmer errors (a broken invariant) go through {@link assert}, which stays on in every build
 * and throws an {@link AssertionError}: these are bugs, never user mistakes.
 */
export class MirrorlabError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

export class AssertionError extends Error {
  override readonly name = 'AssertionError';
  readonly code = 'ML_ERR_ASSERTION';
}

/** An invariant check that is never compiled out. */
export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new AssertionError(message);
}
