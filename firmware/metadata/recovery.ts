import type { BlockDevice } from '../ports/block-device.ts';
import {
  HEADER_BYTES, bodyIntact, decodeCheckpointHeader, decodeOps, decodeRecordHeader, roundUp, type CheckpointHeader, type RecordHeader,
} from './format.ts';
import { MetadataImage, type Undo } from './image.ts';
import type { MetadataLayout } from './layout.ts';

/** Device reads at open are at most this big (bytes). */
export const READ_CHUNK_BYTES = 1024 * 1024;

/** Where the store goes on after recovery. */
export interface ResumePoint {
  /** Absolute log position after the last valid record: the next checkpoint's log starts here. */
  pos: number;
  /** Above every record sequence number found anywhere in the ring. */
  seq: number;
  /** Above every checkpoint generation found in either slot. */
  generation: number;
  /** The slot holding the checkpoint recovery used, or null (none: the next checkpoint goes to slot 0). */
  durableSlot: 0 | 1 | null;
}

export interface Recovery {
  image: MetadataImage;
  blank: boolean;
  records: number;
  /** Bytes found and not trusted: torn or garbage checkpoint slots, the torn or unchecked record that ended the log. */
  discarded: number;
  resume: ResumePoint;
}

interface SlotRead {
  /** The checkpoint, if everything about it held. */
  valid: { header: CheckpointHeader; image: MetadataImage } | null;
  /** A generation whose header sealed (valid or not): the next generation goes above it. */
  sealedGeneration: number;
  discarded: number;
}

/** How a record header found at the log's expected next position relates to it. */
export type RecordVerdict = 'next' | 'stale' | 'foreign';

/**
 * Reads a metadata area back (docs/tag-tables.md, "Metadata format", "Recovery"): the newer of
 * the two checkpoints that check out, then the records after it, each accepted only if it is the
 * exact next one (position and sequence number), intact (both CRCs) and possible (its ops apply).
 * The first record that is not ends the log. Nothing read can make this throw; device errors do.
 */
export class AreaReader {
  constructor(private readonly dev: BlockDevice, private readonly layout: MetadataLayout) {}

  async recover(): Promise<Recovery> {
    const slots = [await this.readSlot(0), await this.readSlot(1)] as const;
    const ring = await this.read(this.layout.ringLba, this.layout.ringSectors);
    const generation = Math.max(slots[0].sealedGeneration, slots[1].sealedGeneration) + 1;
    const seqSeen = this.highestSeq(ring);
    const chosen = pickSlot(slots[0].valid, slots[1].valid);
    if (chosen === null) {
      return {
        image: new MetadataImage(), blank: true, records: 0, discarded: slots[0].discarded + slots[1].discarded,
        resume: { pos: 0, seq: seqSeen + 1, generation, durableSlot: null },
      };
    }
    const { header, image } = slots[chosen].valid!;
    const log = this.replay(ring, image, header.logStart, header.logSeq);
    return {
      image, blank: false, records: log.records, discarded: slots[0].discarded + slots[1].discarded + log.discarded,
      resume: { pos: log.pos, seq: Math.max(log.seq, seqSeen + 1), generation, durableSlot: chosen },
    };
  }

  /** Whether a record header at the expected position is the next record, an older one (the log ended cleanly), or something else. */
  recordVerdict(h: RecordHeader, pos: number, seq: number): RecordVerdict {
    if (h.seq === seq && h.pos === pos) return 'next';
    return h.seq < seq ? 'stale' : 'foreign';
  }

  private async readSlot(slot: 0 | 1): Promise<SlotRead> {
    const { sectorSize: ss, slotBytes } = this.layout;
    const lba = this.layout.slotLba[slot];
    const first = await this.read(lba, 1);
    const header = decodeCheckpointHeader(first);
    if (header === null) return { valid: null, sealedGeneration: 0, discarded: allZero(first) ? 0 : ss };
    const fits = header.slotSectors === this.layout.slotSectors && header.ringSectors === this.layout.ringSectors
      && header.sectorSize === ss && HEADER_BYTES + header.bodyBytes <= slotBytes;
    const extent = Math.min(roundUp(HEADER_BYTES + header.bodyBytes, ss), slotBytes);
    const refused = { valid: null, sealedGeneration: header.generation, discarded: extent };
    if (!fits) return refused;
    const bytes = extent > ss ? await this.read(lba, extent / ss) : first;
    if (!bodyIntact(bytes, header.bodyBytes, header.bodyCrc)) return refused;
    const ops = decodeOps(bytes, header.bodyBytes, header.opCount);
    if (ops === null) return refused;
    const image = new MetadataImage();
    const undo: Undo = [];
    for (const o of ops) if (!image.apply(o, undo)) return refused;
    if (HEADER_BYTES + image.snapshotBytes > slotBytes) return refused;
    return { valid: { header, image }, sealedGeneration: header.generation, discarded: 0 };
  }

  /** Replays the records after a checkpoint onto `image`; where the log ends and what was refused there. */
  private replay(ring: Uint8Array, image: MetadataImage, logStart: number, logSeq: number): { records: number; discarded: number; pos: number; seq: number } {
    const { sectorSize: ss, ringBytes, slotBytes } = this.layout;
    const limit = logStart + ringBytes;
    let pos = logStart;
    let seq = logSeq;
    let records = 0;
    for (;;) {
      if (pos + ss > limit) return { records, discarded: 0, pos, seq };
      const head = ringSlice(ring, pos, ss);
      const h = decodeRecordHeader(head);
      if (h === null) return { records, discarded: allZero(head) ? 0 : ss, pos, seq };
      const verdict = this.recordVerdict(h, pos, seq);
      if (verdict === 'stale') return { records, discarded: 0, pos, seq };
      const size = roundUp(HEADER_BYTES + h.bodyBytes, ss);
      const refused = { records, discarded: Math.min(size, limit - pos), pos, seq };
      if (verdict === 'foreign' || pos + size > limit) return refused;
      const bytes = ringSlice(ring, pos, size);
      if (!bodyIntact(bytes, h.bodyBytes, h.bodyCrc)) return refused;
      const ops = decodeOps(bytes, h.bodyBytes, h.opCount);
      if (ops === null || !applyAll(image, ops, slotBytes)) return refused;
      records++;
      pos += size;
      seq++;
    }
  }

  /** The highest sequence number of any sealed record header at a sector start of the ring (0 if none). */
  private highestSeq(ring: Uint8Array): number {
    let max = 0;
    for (let at = 0; at < ring.length; at += this.layout.sectorSize) {
      const h = decodeRecordHeader(ring.subarray(at, at + HEADER_BYTES));
      if (h !== null && h.seq > max) max = h.seq;
    }
    return max;
  }

  private async read(lba: number, sectors: number): Promise<Uint8Array> {
    const ss = this.layout.sectorSize;
    const chunk = Math.max(1, Math.floor(READ_CHUNK_BYTES / ss));
    if (sectors <= chunk) return this.dev.read(lba, sectors);
    const out = new Uint8Array(sectors * ss);
    for (let done = 0; done < sectors; done += chunk) out.set(await this.dev.read(lba + done, Math.min(chunk, sectors - done)), done * ss);
    return out;
  }
}

/** All of a record's ops, or none of them (and false) if one is impossible or the image would outgrow a slot. */
function applyAll(image: MetadataImage, ops: ReturnType<typeof decodeOps> & object, slotBytes: number): boolean {
  const undo: Undo = [];
  const ok = ops.every((o) => image.apply(o, undo)) && HEADER_BYTES + image.snapshotBytes <= slotBytes;
  if (!ok) for (let i = undo.length - 1; i >= 0; i--) undo[i]!();
  return ok;
}

/** The newer valid checkpoint (slot 0 on a tie), or null. */
function pickSlot(a: SlotRead['valid'], b: SlotRead['valid']): 0 | 1 | null {
  if (a === null) return b === null ? null : 1;
  if (b === null) return 0;
  return b.header.generation > a.header.generation ? 1 : 0;
}

/** `n` bytes of the log at absolute position `pos`, wrapping round the end of the ring. */
export function ringSlice(ring: Uint8Array, pos: number, n: number): Uint8Array {
  const at = pos % ring.length;
  if (at + n <= ring.length) return ring.subarray(at, at + n);
  const out = new Uint8Array(n);
  out.set(ring.subarray(at));
  out.set(ring.subarray(0, n - (ring.length - at)), ring.length - at);
  return out;
}

function allZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}
