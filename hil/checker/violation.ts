/** The invariants of docs/design.md 2.7, by the names reports use. */
export type InvariantName =
  | 'lock-held'
  | 'lock-exclusive'
  | 'ack-after-apply'
  | 'rollback-after-confirm'
  | 'write-order'
  | 'data-intact'
  | 'mirror-identical'
  | 'liveness'
  | 'volume-redundancy'
  | 'firmware-error'
  | 'link-detect'
  | 'probation'
  | 'session'
  /** A write acknowledged in sync or speculative mode was lost through a crash or power cut (docs/tag-tables.md). */
  | 'acked-durable'
  /** A resync did not copy every block that differed, or copied blocks its tag tables did not name (docs/tag-tables.md). */
  | 'resync-exact'
  /** Live runs: the processes' telemetry cannot be put in one causal order (lines lost, a receive with no send). */
  | 'causal-order';

/** One broken invariant, with what is needed to find it: where, which write, when. */
export interface Violation {
  invariant: InvariantName;
  /** The controller at which it was seen. */
  node: string;
  lun: number;
  lba: number;
  /** The stream sequence number concerned, or the write's tag for host-level invariants (0: none). */
  seq: number;
  tMs: number;
  message: string;
}

export function describeViolation(v: Violation): string {
  return `${v.invariant} at t=${v.tMs}ms on ${v.node} LUN ${v.lun} LBA ${v.lba} seq ${v.seq}: ${v.message}`;
}
