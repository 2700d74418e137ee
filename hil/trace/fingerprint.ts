import { createHash, type Hash } from 'node:crypto';

/** Encoded events are hashed this many bytes at a time: one native call per event cost as much as the hashing. */
const BATCH_BYTES = 64 * 1024;
/** Room kept free at the end of the batch for one value's largest fixed-size encoding. */
const VALUE_BYTES_MAX = 9;
/** Strings up to this long are interned (keys, kinds, node and frame names); longer ones go in full every time. */
const INTERNED_CHARS_MAX = 64;
/** At most this many strings are interned in a run; later new strings go in full every time. */
const INTERNED_STRINGS_MAX = 4096;

/**
 * Tags of the encoding. Each value is one tag byte and its payload, so the byte stream decodes
 * back to the values it came from (the fingerprint is as strong as SHA-256 is).
 */
const enum Tag {
  Null = 0, False = 1, True = 2, Int32 = 3, Float64 = 4,
  /** A string seen for the first time: u32 length, UTF-16 code units; it gets the next string number. */
  NewString = 5,
  /** A string seen before: u16 string number. */
  StringRef = 6,
  /** A string outside the intern table: u32 length, UTF-16 code units. */
  LongString = 7,
  /** An object: its defined members as key, value pairs, then {@link Tag.End}. */
  Object = 8,
  /** An array: u32 length, then its elements. */
  Array = 9,
  End = 10,
  /** Between two events. */
  Event = 11,
}

/**
 * The trace fingerprint behind `traceHash` (docs/design.md 2.5): SHA-256 over the events' fields
 * encoded as typed binary values, straight from the event objects, instead of over one JSON line
 * per event (serialising every event was most of what the trace cost a campaign run). It is a pure
 * function of the sequence of events as JSON sees them: members are taken in the object's own
 * order, a member whose value is `undefined` is left out, `-0` is `0`, a number that is not finite
 * is `null`, and an `undefined` array element is `null`. So the events parsed back from a trace
 * file give the same fingerprint as the run that wrote it ({@link traceFingerprint}).
 *
 * Short strings (keys, kinds, node names) are sent in full the first time and by number after:
 * numbers are given in order of first sight, so they too are a function of the event sequence.
 */
export class TraceFingerprint {
  private readonly hash: Hash = createHash('sha256');
  private readonly bytes = new Uint8Array(BATCH_BYTES);
  private readonly view = new DataView(this.bytes.buffer);
  private at = 0;
  private readonly strings = new Map<string, number>();

  add(event: object): void {
    if (this.at > BATCH_BYTES - VALUE_BYTES_MAX) this.flush();
    this.bytes[this.at++] = Tag.Event;
    this.value(event);
  }

  /** Hex SHA-256 of every event added; call once, at the end. */
  digest(): string {
    this.flush();
    return this.hash.digest('hex');
  }

  private value(v: unknown): void {
    switch (typeof v) {
      case 'number':
        return this.number(v);
      case 'string':
        return this.string(v);
      case 'boolean':
        return this.tag(v ? Tag.True : Tag.False);
      case 'object':
        if (v === null) return this.tag(Tag.Null);
        return Array.isArray(v) ? this.array(v) : this.object(v);
      default:
        // JSON writes what it cannot represent (undefined, functions, symbols, bigints aside) as null.
        return this.tag(Tag.Null);
    }
  }

  private object(o: object): void {
    this.tag(Tag.Object);
    const record = o as Record<string, unknown>;
    for (const key in record) {
      // Events are plain objects: for-in sees exactly their own members, in JSON's order.
      const member = record[key];
      if (member === undefined) continue;
      this.string(key);
      this.value(member);
    }
    this.tag(Tag.End);
  }

  private array(a: readonly unknown[]): void {
    this.room(5);
    this.bytes[this.at] = Tag.Array;
    this.view.setUint32(this.at + 1, a.length);
    this.at += 5;
    for (const element of a) this.value(element);
  }

  private number(x: number): void {
    this.room(9);
    if ((x | 0) === x) {
      this.bytes[this.at] = Tag.Int32;
      this.view.setInt32(this.at + 1, x);
      this.at += 5;
    } else if (Number.isFinite(x)) {
      this.bytes[this.at] = Tag.Float64;
      this.view.setFloat64(this.at + 1, x);
      this.at += 9;
    } else {
      this.bytes[this.at++] = Tag.Null;
    }
  }

  private string(s: string): void {
    const known = this.strings.get(s);
    if (known !== undefined) {
      this.room(3);
      this.bytes[this.at] = Tag.StringRef;
      this.view.setUint16(this.at + 1, known);
      this.at += 3;
      return;
    }
    const intern = s.length <= INTERNED_CHARS_MAX && this.strings.size < INTERNED_STRINGS_MAX;
    if (intern) this.strings.set(s, this.strings.size);
    this.room(5);
    this.bytes[this.at] = intern ? Tag.NewString : Tag.LongString;
    this.view.setUint32(this.at + 1, s.length);
    this.at += 5;
    for (let i = 0; i < s.length; i++) {
      this.room(2);
      this.view.setUint16(this.at, s.charCodeAt(i));
      this.at += 2;
    }
  }

  private tag(t: Tag): void {
    this.room(1);
    this.bytes[this.at++] = t;
  }

  /** Make room for `n` more bytes in the batch. */
  private room(n: number): void {
    if (this.at + n > BATCH_BYTES) this.flush();
  }

  private flush(): void {
    if (this.at === 0) return;
    this.hash.update(this.bytes.subarray(0, this.at));
    this.at = 0;
  }
}

/** The fingerprint of a whole sequence of events, such as the lines of a trace file parsed back. */
export function traceFingerprint(events: Iterable<object>): string {
  const f = new TraceFingerprint();
  for (const e of events) f.add(e);
  return f.digest();
}
