import type { StreamFrame } from '../protocol/frame.ts';

/**
 * Puts a stream striped over several data connections back in sequence order (docs/link-supervision.md,
 * "Data connections"). The source spreads its frames over every ready connection; each connection
 * is a byte stream that delivers in order, but between connections frames overtake each other.
 * A frame that arrives ahead of the one expected is held here, boundedly, until the gap closes.
 *
 * A gap is known to be a loss, not an overtaking, once every ready connection has delivered a
 * frame numbered beyond it: the missing frame went on one of them, before the later frames, and a
 * connection delivers in order. (With one connection this is true at once, as it always was.)
 * Otherwise the caller waits a little before asking for it again. Retransmissions may make a
 * connection's numbers go down again; `lastSeq` then only makes the inference late, never wrong
 * about the frames themselves: whatever is held is checked against what arrives.
 */
export class StreamReassembly {
  private readonly held = new Map<number, { frame: StreamFrame; bytes: number }>();
  private heldBytesTotal = 0;
  /** Per ready connection: the highest stream sequence number it has delivered. */
  private readonly lastSeq = new Map<number, number>();

  constructor(private readonly limits: { entriesMax: number; bytesMax: number }) {}

  get entries(): number {
    return this.held.size;
  }

  get bytes(): number {
    return this.heldBytesTotal;
  }

  /** Connections that are ready now (a new one has delivered nothing yet). */
  setReady(connections: readonly number[]): void {
    for (const c of [...this.lastSeq.keys()]) if (!connections.includes(c)) this.lastSeq.delete(c);
    for (const c of connections) if (!this.lastSeq.has(c)) this.lastSeq.set(c, 0);
  }

  /** Connection `conn` delivered (or lost, with a sound header) the frame numbered `seq`. */
  saw(conn: number, seq: number): void {
    const last = this.lastSeq.get(conn);
    if (last !== undefined && seq > last) this.lastSeq.set(conn, seq);
  }

  /** Every ready connection has delivered beyond `expected`: it was lost. */
  gapIsCertain(expected: number): boolean {
    if (this.lastSeq.size === 0) return false;
    for (const last of this.lastSeq.values()) if (last <= expected) return false;
    return true;
  }

  /** Hold a frame that came early; false if it is held already or there is no room. */
  hold(frame: StreamFrame, bytes: number): boolean {
    if (this.held.has(frame.seq)) return false;
    if (this.held.size + 1 > this.limits.entriesMax || this.heldBytesTotal + bytes > this.limits.bytesMax) return false;
    this.held.set(frame.seq, { frame, bytes });
    this.heldBytesTotal += bytes;
    return true;
  }

  /** The held frame numbered `seq`, removed; undefined if none. */
  take(seq: number): { frame: StreamFrame; bytes: number } | undefined {
    const h = this.held.get(seq);
    if (h === undefined) return undefined;
    this.held.delete(seq);
    this.heldBytesTotal -= h.bytes;
    return h;
  }

  /** Drop every held frame numbered `seq` or later (a discard), or all of them. */
  dropFrom(seq = 0): number {
    let dropped = 0;
    for (const [s, h] of this.held) {
      if (s < seq) continue;
      this.held.delete(s);
      this.heldBytesTotal -= h.bytes;
      dropped++;
    }
    return dropped;
  }

  /** Drop held frames numbered below `seq` (they arrived again in order and were taken). */
  dropBelow(seq: number): void {
    for (const [s, h] of this.held) {
      if (s >= seq) continue;
      this.held.delete(s);
      this.heldBytesTotal -= h.bytes;
    }
  }
}
