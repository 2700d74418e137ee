/**
 * Deliberate bugs, switched on one at a time by the checker's own tests to prove that the
 * consistency checker can fail (docs/design.md 2.7, docs/conventions.md 10): a checker that has never caught broken
 * firmware proves nothing about working firmware. Each names the bug it plants. They are plain
 * configuration (no code is patched at run time), cost one set lookup where they act, and are never
 * set by the CLI.
 */
export type FirmwareMutation =
  /** The target treats a refused mirror lock as granted and applies the writes behind it. */
  | 'target-applies-without-lock'
  /** The source removes a WRITE from its rollback log as soon as it is sent, not when confirmed. */
  | 'source-drops-entry-before-ack'
  /** The target confirms a WRITE when it starts the disk write, before the data is on the disk. */
  | 'target-acks-before-write'
  /** The target holds back every other WRITE for a while, so later writes land first. */
  | 'target-reorders-writes'
  /** The source ignores NAKs and ack timeouts: a lost frame is never re-sent. */
  | 'source-ignores-naks-and-timeouts';

export const FIRMWARE_MUTATIONS: readonly FirmwareMutation[] = [
  'target-applies-without-lock', 'source-drops-entry-before-ack', 'target-acks-before-write', 'target-reorders-writes', 'source-ignores-naks-and-timeouts',
];

/** How long `target-reorders-writes` holds a write back (ms). */
export const REORDER_MUTATION_DELAY_MS = 5;
