import { MirrorlabError, assert } from '../errors.ts';
import type { ChannelWrite } from '../mirror/types.ts';
import type { BlockDevice } from '../ports/block-device.ts';
import { crc32cRange } from '../protocol/crc.ts';

/**
 * The rollback log's spill (docs/tag-tables.md, "Rollback-log spill"): in async mode, a write the
 * rollback log has no room for goes to a ring on a device instead of making its host wait; the
 * host is acknowledged once the write's data is there, and the spill keeps only a small
 * descriptor in memory. Spilled writes come back in order: each is read back, checked, and handed
 * to the log's FIFO reservation as confirmations free room. While anything is in the spill, every
 * new write of the stream goes through it too, so the stream's order (the async prefix rule) is the
 * order the hosts wrote in. Hosts wait only when the ring or its descriptor bound is full.
 *
 * Not kept across a crash: the descriptors are in memory, and what was spilled and not yet sent is
 * named by the source's tag-table entries, which a resync copies.
 */

/** A spilled write is read back into this many buffers ahead of the log taking it. */
export const READ_AHEAD_DEFAULT = 2;
export const SPILL_HEADER_BYTES = 48;
/** 'MLSP': a spill record. */
const SPILL_MAGIC = 0x4d4c5350;

export interface RollbackSpillOptions {
  /** First sector of the spill ring on the device. */
  firstLba: number;
  /** Sectors of the ring. */
  sectors: number;
  /** Most writes held (spilled, being spilled, or read back and waiting for the log). */
  entriesMax: number;
  /** Spilled writes read back ahead of the log's room (default {@link READ_AHEAD_DEFAULT}). */
  readAheadMax?: number;
}

/** Where spilled writes go back to: the source channel's rollback log. */
export interface SpillSink {
  /** Claim log room for `w` (now, or in FIFO order when room frees) and admit it; call `granted` once admitted. */
  admit(w: ChannelWrite, granted: () => void): void;
  /** A spilled write could not be read back intact: it cannot be mirrored from here (its tag-table entry names it for resync). */
  lost(w: ChannelWrite, error: MirrorlabError): void;
}

/** A spilled write that came back wrong (or a device that could not give it back). */
export class SpillReadError extends MirrorlabError {
  constructor(message: string) {
    super('ML_ERR_SPILL_READ', message);
  }
}

/** The ring or the options do not fit the device. */
export class SpillAreaError extends MirrorlabError {
  constructor(message: string) {
    super('ML_ERR_SPILL_AREA', message);
  }
}

/** A write as the spill holds it: on the device (async, `write` dropped) or still in memory (the host waits for it anyway). */
interface Held {
  tag: number;
  lun: number;
  lba: number;
  count: number;
  dataBytes: number;
  /** The original write while it is needed: until its data is on the device (async), or throughout (other modes). */
  write: ChannelWrite | null;
  /** Absolute ring positions: the record's start, and where the next one may start (a skip to the next lap included). */
  start: number;
  end: number;
  seq: number;
  /** `writing` -> `stored` -> `reading` -> `read` (or `resident` for a write kept in memory) -> gone once the log admitted it. */
  state: 'writing' | 'stored' | 'resident' | 'reading' | 'read';
  back: ChannelWrite | null;
  /** How to report a refusal after the original write is gone. */
  refused: ((error: MirrorlabError) => void) | null;
  /** How to learn the original's local durability after it is gone (null: it has no tag-table entry). */
  durable: (() => boolean) | null;
}

export interface SpillStats {
  /** Writes held now, and ring bytes they take. */
  entries: number;
  bytes: number;
  /** Writes waiting for room in the spill (their hosts wait). */
  waiting: number;
  spilled: number;
  bytesSpilled: number;
  readBack: number;
  /** Writes that had to wait because the ring or the descriptor bound was full. */
  hostWaits: number;
  lost: number;
}

/** A write read back from the spill: the original's fields and a fresh copy of its data. */
class SpilledWrite implements ChannelWrite {
  readonly mode = 'async' as const;
  constructor(
    readonly tag: number, readonly lun: number, readonly lba: number, readonly count: number, readonly data: Uint8Array,
    private readonly refused: ((error: MirrorlabError) => void) | null,
    private readonly isDurable: (() => boolean) | null = null,
  ) {}

  /** The original's local copy is flushed (its tag-table entry may go with the token): undefined if it has no entry. */
  get durable(): boolean | undefined {
    return this.isDurable?.();
  }

  /** The original was admitted (its host acknowledged) when its data reached the spill. */
  admitted(): void {}

  /** The mirror was suspended (docs/tag-tables.md, "Suspension"): nothing waits for this copy; the tag table names its write. */
  suspended(): void {}

  confirmed(error?: MirrorlabError): void {
    if (error !== undefined) this.refused?.(error);
  }
}

export class RollbackSpill {
  readonly ringBytes: number;
  private readonly sectorSize: number;
  private readonly readAheadMax: number;
  private readonly held: Held[] = [];
  private heldHead = 0;
  private readonly waiting: ChannelWrite[] = [];
  private waitingHead = 0;
  /** Absolute ring positions: the oldest byte in use, and where the next record goes. */
  private head = 0;
  private tail = 0;
  private seq = 1;
  private sink: SpillSink | null = null;
  private stopped = false;
  /** Bumped by {@link drop}: completions of what it dropped change nothing. */
  private generation = 0;
  /** Held writes handed to the sink and not yet admitted (at most one: the log's FIFO does the rest). */
  private handed = 0;
  private readonly counters = { spilled: 0, bytesSpilled: 0, readBack: 0, hostWaits: 0, lost: 0 };

  constructor(private readonly dev: BlockDevice, readonly options: RollbackSpillOptions) {
    const { firstLba, sectors, entriesMax } = options;
    if (!Number.isSafeInteger(firstLba) || !Number.isSafeInteger(sectors) || firstLba < 0 || sectors < 1 || firstLba + sectors > dev.sectorCount) {
      throw new SpillAreaError(`${dev.name}: spill ring [${firstLba}, +${sectors}) does not lie within the device's ${dev.sectorCount} sectors`);
    }
    if (!Number.isSafeInteger(entriesMax) || entriesMax < 1) throw new SpillAreaError(`spill entriesMax is ${entriesMax}; allowed: an integer of 1 or more`);
    this.sectorSize = dev.sectorSize;
    this.ringBytes = sectors * dev.sectorSize;
    this.readAheadMax = options.readAheadMax ?? READ_AHEAD_DEFAULT;
    assert(Number.isInteger(this.readAheadMax) && this.readAheadMax >= 1, 'spill readAheadMax must be a positive integer');
  }

  /** The source channel this spill feeds. */
  attach(sink: SpillSink): void {
    this.sink = sink;
  }

  /** Something is held or waiting: a new write of the stream must come here too, to keep the stream's order. */
  get active(): boolean {
    return this.held.length > this.heldHead || this.waiting.length > this.waitingHead;
  }

  /** Takes a write whose turn in the log has not come: spills it (async) or keeps it in order (other modes). */
  push(w: ChannelWrite): void {
    assert(!this.stopped, 'spill: push after stop');
    if (this.waiting.length > this.waitingHead || !this.place(w)) {
      this.counters.hostWaits++;
      this.waiting.push(w);
    }
    this.feed();
  }

  /** Forgets everything (the controller stopped or crashed): device completions that come later do nothing. */
  stop(): void {
    this.stopped = true;
  }

  /**
   * The mirror was suspended (docs/tag-tables.md, "Suspension"): everything held or waiting is
   * dropped with the stream's backlog (the source's tag table names each write). Returns the
   * writes whose hosts still wait for them (kept in memory, being spilled, or waiting for room),
   * for the caller to acknowledge locally; device completions of what was dropped do nothing.
   */
  drop(): ChannelWrite[] {
    const owed: ChannelWrite[] = [];
    for (let i = this.heldHead; i < this.held.length; i++) {
      const h = this.held[i]!;
      if (h.write !== null && (h.state === 'resident' || h.state === 'writing')) owed.push(h.write);
    }
    for (let i = this.waitingHead; i < this.waiting.length; i++) owed.push(this.waiting[i]!);
    this.generation++;
    this.held.length = 0;
    this.heldHead = 0;
    this.waiting.length = 0;
    this.waitingHead = 0;
    this.handed = 0;
    this.head = this.tail;
    return owed;
  }

  stats(): SpillStats {
    return {
      entries: this.held.length - this.heldHead, bytes: this.tail - this.head, waiting: this.waiting.length - this.waitingHead, ...this.counters,
    };
  }

  /** Bytes a write's record takes on the device. */
  recordBytes(w: { data: Uint8Array }): number {
    return Math.ceil((SPILL_HEADER_BYTES + w.data.length) / this.sectorSize) * this.sectorSize;
  }

  // ---- writing ---------------------------------------------------------------------------------

  /**
   * Gives `w` its place after everything held: on the device if it is an async write that fits
   * the ring; in memory otherwise (its host waits for the target anyway, or it can never fit the
   * ring). False when there is no room now.
   */
  private place(w: ChannelWrite): boolean {
    if (this.held.length - this.heldHead >= this.options.entriesMax) return false;
    const size = this.recordBytes(w);
    const fields = { tag: w.tag, lun: w.lun, lba: w.lba, count: w.count, dataBytes: w.data.length, write: w, back: null, durable: w.durability?.() ?? null };
    if (w.mode !== 'async' || size > this.ringBytes) {
      this.held.push({ ...fields, seq: this.seq++, start: this.tail, end: this.tail, state: 'resident', refused: null });
      return true;
    }
    const at = this.tail % this.ringBytes;
    // A record never wraps: one that would is put at the start of the next lap.
    const start = at + size <= this.ringBytes ? this.tail : this.tail + (this.ringBytes - at);
    if (start + size - this.head > this.ringBytes) return false;
    const h: Held = { ...fields, seq: this.seq++, start, end: start + size, state: 'writing', refused: refusalReporter(w) };
    this.held.push(h);
    this.tail = h.end;
    this.store(h, w);
    return true;
  }

  private store(h: Held, w: ChannelWrite): void {
    const bytes = encodeRecord(h, w.data, this.recordBytes(w));
    this.counters.spilled++;
    this.counters.bytesSpilled += bytes.length;
    const lba = this.options.firstLba + (h.start % this.ringBytes) / this.sectorSize;
    const generation = this.generation;
    this.dev.write(lba, bytes).then(() => {
      if (this.stopped || generation !== this.generation) return;
      h.state = 'stored';
      h.write = null;
      w.admitted();
      this.feed();
    }, () => {
      if (this.stopped || generation !== this.generation) return;
      // The device refused the spill: keep the write in memory instead (its data is still here).
      h.state = 'resident';
      this.feed();
    });
  }

  // ---- reading back ----------------------------------------------------------------------------

  /** Moves the pipeline on: reads ahead, hands the oldest ready write to the log, takes waiting writes as room frees. */
  private feed(): void {
    if (this.stopped || this.sink === null) return;
    let ahead = 0;
    for (let i = this.heldHead; i < this.held.length && ahead < this.readAheadMax; i++) {
      const h = this.held[i]!;
      if (h.state === 'stored') this.readBack(h);
      if (h.state === 'reading' || h.state === 'read') ahead++;
      else if (h.state === 'writing') break;
    }
    this.handOldest();
  }

  private readBack(h: Held): void {
    h.state = 'reading';
    const lba = this.options.firstLba + (h.start % this.ringBytes) / this.sectorSize;
    const generation = this.generation;
    this.dev.read(lba, (h.end - h.start) / this.sectorSize).then((bytes) => {
      if (this.stopped || generation !== this.generation) return;
      const problem = checkRecord(h, bytes);
      h.state = 'read';
      if (problem !== null) {
        this.counters.lost++;
        const lost = new SpilledWrite(h.tag, h.lun, h.lba, h.count, new Uint8Array(0), h.refused);
        h.back = null;
        this.sink!.lost(lost, new SpillReadError(`spilled write tag ${h.tag} (LUN ${h.lun} [${h.lba}, +${h.count})): ${problem}`));
      } else {
        this.counters.readBack++;
        h.back = new SpilledWrite(h.tag, h.lun, h.lba, h.count, bytes.slice(SPILL_HEADER_BYTES, SPILL_HEADER_BYTES + h.dataBytes), h.refused, h.durable);
      }
      this.feed();
    }, (error: unknown) => {
      if (this.stopped || generation !== this.generation) return;
      this.counters.lost++;
      h.state = 'read';
      h.back = null;
      this.sink!.lost(new SpilledWrite(h.tag, h.lun, h.lba, h.count, new Uint8Array(0), h.refused), new SpillReadError(`spilled write tag ${h.tag}: ${(error as Error).message}`));
      this.feed();
    });
  }

  /** The oldest held write, once ready, goes to the log; when the log has taken it, its room here is free. */
  private handOldest(): void {
    while (this.handed === 0 && this.heldHead < this.held.length) {
      const h = this.held[this.heldHead]!;
      if (h.state === 'read' && h.back === null) {
        this.release();
        continue;
      }
      const w = h.state === 'resident' ? h.write : h.state === 'read' ? h.back : null;
      if (w === null) return;
      this.handed++;
      const generation = this.generation;
      this.sink!.admit(w, () => {
        if (this.stopped || generation !== this.generation) return;
        this.handed--;
        this.release();
        this.feed();
      });
    }
  }

  /** The oldest held write has left: free its room, and take waiting writes into it. */
  private release(): void {
    const h = this.held[this.heldHead]!;
    this.held[this.heldHead++] = undefined as unknown as Held;
    if (this.heldHead === this.held.length) {
      this.held.length = 0;
      this.heldHead = 0;
    }
    if (h.end > h.start) this.head = h.end;
    if (this.held.length === this.heldHead) this.head = this.tail;
    while (this.waiting.length > this.waitingHead && this.place(this.waiting[this.waitingHead]!)) {
      this.waiting[this.waitingHead++] = undefined as unknown as ChannelWrite;
    }
    if (this.waitingHead === this.waiting.length) {
      this.waiting.length = 0;
      this.waitingHead = 0;
    }
  }
}

/** What reports a refusal of `w` once its data is gone: the write's own reporter if it has one (it holds no data). */
function refusalReporter(w: ChannelWrite): ((error: MirrorlabError) => void) | null {
  return w.refusalReporter?.() ?? null;
}

function encodeRecord(h: Held, data: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, SPILL_MAGIC);
  v.setUint32(8, Math.floor(h.seq / 2 ** 32));
  v.setUint32(12, h.seq >>> 0);
  v.setUint32(16, Math.floor(h.tag / 2 ** 32));
  v.setUint32(20, h.tag >>> 0);
  v.setUint32(24, Math.floor(h.lba / 2 ** 32));
  v.setUint32(28, h.lba >>> 0);
  v.setUint32(32, h.lun);
  v.setUint32(36, h.count);
  v.setUint32(40, data.length);
  out.set(data, SPILL_HEADER_BYTES);
  v.setUint32(4, crc32cRange(out, 8, SPILL_HEADER_BYTES + data.length));
  return out;
}

/** Null if `bytes` hold exactly the record `h` describes; else what is wrong. */
function checkRecord(h: Held, bytes: Uint8Array): string | null {
  if (bytes.length < SPILL_HEADER_BYTES + h.dataBytes) return 'the device returned too few bytes';
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u64 = (at: number): number => v.getUint32(at) * 2 ** 32 + v.getUint32(at + 4);
  if (v.getUint32(0) !== SPILL_MAGIC) return 'no spill record there';
  if (v.getUint32(40) !== h.dataBytes || v.getUint32(4) !== crc32cRange(bytes, 8, SPILL_HEADER_BYTES + h.dataBytes)) return 'its CRC does not match';
  if (u64(8) !== h.seq || u64(16) !== h.tag || u64(24) !== h.lba || v.getUint32(32) !== h.lun || v.getUint32(36) !== h.count) {
    return 'the record there is another write';
  }
  return null;
}
