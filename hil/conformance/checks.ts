import {
  FEATURES_IMPLEMENTED, FRAME_TYPE_NAMES, FrameType, NakReason, featureNames,
  type AckFrame, type Frame, type HelloFrame, type NakFrame,
} from '../../firmware/protocol/index.ts';
import { sectorOrigin } from '../../host/workload/data.ts';
import type { FaultStage, ReceivedRecord } from './fault-stage.ts';
import { SECTOR_BYTES } from './source-side.ts';

/**
 * What every case checks from the protocol alone (docs/conformance.md 4), against any target:
 * each returns the first problem found, as the one-line reason a failing case gives, or null.
 */

/** A reason a case fails with: thrown from inside a case, caught by the runner. */
export class CaseFailure extends Error {}

export function fail(reason: string): never {
  throw new CaseFailure(reason);
}

export const NAK_NAMES: Record<number, string> = {
  [NakReason.Corrupt]: 'corrupt', [NakReason.Gap]: 'gap', [NakReason.OutOfRange]: 'out of range', [NakReason.NotLocked]: 'not locked',
  [NakReason.Overflow]: 'overflow', [NakReason.MediaError]: 'media error', [NakReason.LockInUse]: 'lock in use', [NakReason.LocksExceeded]: 'locks exceeded',
};

export function frameName(f: Frame): string {
  return FRAME_TYPE_NAMES[f.type] ?? `type ${f.type}`;
}

export function acks(stage: FaultStage): (ReceivedRecord & { frame: AckFrame })[] {
  return stage.received.filter((r): r is ReceivedRecord & { frame: AckFrame } => r.frame.type === FrameType.Ack);
}

export function naks(stage: FaultStage): (ReceivedRecord & { frame: NakFrame })[] {
  return stage.received.filter((r): r is ReceivedRecord & { frame: NakFrame } => r.frame.type === FrameType.Nak);
}

export function hellos(stage: FaultStage): (ReceivedRecord & { frame: HelloFrame })[] {
  return stage.received.filter((r): r is ReceivedRecord & { frame: HelloFrame } => r.frame.type === FrameType.Hello);
}

/** When the target first named `session` in a HELLO: its responses are about our stream from then on. */
export function adoptedAt(stage: FaultStage, session: number): number {
  return hellos(stage).find((h) => h.frame.peerSession === session)?.at ?? Infinity;
}

/**
 * The target never confirms what it did not receive intact: every ACK covers only sequence numbers
 * of which an intact copy had left before the ACK arrived, and none beyond what was sent at all (a
 * target that applied a corrupt copy, skipped a gap, or took a new session's stream for an old one
 * confirms more than it had).
 */
export function checkAcks(stage: FaultStage, session: number): string | null {
  // On a serial line the target may still be answering the previous session when this one starts.
  const adopted = adoptedAt(stage, session);
  for (const a of acks(stage)) {
    if (a.at < adopted) continue;
    const upTo = a.frame.seq;
    const sentBefore = stage.sent.filter((s) => s.at <= a.at).reduce((m, s) => Math.max(m, s.seq), 0);
    if (upTo > sentBefore) {
      return `the target acknowledged through seq ${upTo} when this stream had sent only ${sentBefore} entries (it confirmed entries of another stream or session)`;
    }
    for (let s = 1; s <= upTo; s++) {
      const intact = stage.intactSentAt(s);
      if (intact === undefined || intact > a.at) {
        return `the target acknowledged through seq ${upTo} before an intact copy of seq ${s} was sent (it applied or skipped a frame it never received whole)`;
      }
    }
  }
  return null;
}

/** NAKs that refuse an entry (range, lock, media...) never happen in the battery: it sends only valid entries. */
export function checkNoRefusals(stage: FaultStage, session: number): string | null {
  const adopted = adoptedAt(stage, session);
  for (const n of naks(stage)) {
    if (n.at < adopted) continue;
    const r = n.frame.reason;
    if (r !== NakReason.Gap && r !== NakReason.Corrupt) {
      const hint = r === NakReason.OutOfRange ? ' (is the target\'s LUN at least --sectors long?)' : '';
      return `the target refused seq ${n.frame.seq} (NAK ${NAK_NAMES[r] ?? r}) though it was a valid entry${hint}`;
    }
  }
  return null;
}

/**
 * The target's HELLO on data connection `conn`: the connection it opens and our count of connections,
 * no feature required that we lack, and, when it names our session, a confirmed sequence number we sent.
 */
export function checkHello(h: HelloFrame, o: { conn: number; connections: number; session: number; highestSent: number }): string | null {
  if (h.connection !== o.conn) return `the target's HELLO on data connection ${o.conn} says it opens connection ${h.connection}`;
  if (h.connections !== o.connections) {
    return `the target's HELLO says its link has ${h.connections} data connections; ours has ${o.connections} (both ends must agree)`;
  }
  const missing = h.requiredFeatures & ~FEATURES_IMPLEMENTED;
  if (missing !== 0) return `the target requires features this source lacks: ${featureNames(missing >>> 0).join(', ')}`;
  if (h.peerSession === o.session && h.seq > o.highestSent) {
    return `the target's HELLO confirms seq ${h.seq} of our session ${o.session}, which has sent only ${o.highestSent} entries`;
  }
  return null;
}

/** Every check that holds in every case. */
export function checkStream(stage: FaultStage, session: number): string | null {
  return checkAcks(stage, session) ?? checkNoRefusals(stage, session);
}

/** A write the case made, to read back. */
export interface Written {
  lba: number;
  data: Uint8Array;
  tag: number;
}

/**
 * The target's copy, read through its control socket, holds exactly what the case wrote last at
 * each place (`expected` in write order: a later write wins). Null when it does.
 */
export async function checkReadBack(read: (lba: number, count: number) => Promise<Uint8Array>, expected: readonly Written[]): Promise<string | null> {
  const last = new Map<number, { data: Uint8Array; offset: number; tag: number }>();
  for (const w of expected) {
    for (let s = 0; s * SECTOR_BYTES < w.data.length; s++) last.set(w.lba + s, { data: w.data, offset: s * SECTOR_BYTES, tag: w.tag });
  }
  const lbas = [...last.keys()].sort((a, b) => a - b);
  for (let i = 0; i < lbas.length;) {
    let j = i + 1;
    while (j < lbas.length && lbas[j] === lbas[j - 1]! + 1 && j - i < 256) j++;
    const first = lbas[i]!;
    const got = await read(first, j - i);
    for (let k = 0; k < j - i; k++) {
      const want = last.get(first + k)!;
      const have = got.subarray(k * SECTOR_BYTES, (k + 1) * SECTOR_BYTES);
      if (!equal(have, want.data.subarray(want.offset, want.offset + SECTOR_BYTES))) {
        return `sector ${first + k} of the target's copy holds ${describeSector(have, first + k)}, not write tag ${want.tag} (the last written there)`;
      }
    }
    i = j;
  }
  return null;
}

function describeSector(sector: Uint8Array, lba: number): string {
  const origin = sectorOrigin(sector, 0, SECTOR_BYTES, lba);
  if (origin === null) return 'zeros (never written)';
  if (origin === 'garbage') return 'bytes no write of this battery wrote (corrupt data applied?)';
  return `write tag ${origin.tag}`;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
