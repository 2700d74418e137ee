import type { BlockDevice } from '../../firmware/ports/block-device.ts';
import { FaultyDisk } from '../../host/disks/faulty.ts';
import { splitIntoChunks } from '../../host/disks/raid/chunks.ts';
import type { RaidArray } from '../../host/disks/raid/types.ts';
import { xorInto } from '../../host/disks/raid/xor.ts';
import { FootprintDevice } from './footprint.ts';

/** Reads `count` sectors from `lba` at this very instant: no I/O, no time passes. */
export type InstantRead = (lba: number, count: number) => Uint8Array;

interface Peekable {
  peek(lba: number, count: number): Uint8Array;
}

const peekable = (d: BlockDevice): d is BlockDevice & Peekable => typeof (d as Partial<Peekable>).peek === 'function';

/** An array member slot as the array can use it now: an active member, never a failed one or a spare still being filled. */
const usable = (a: RaidArray, i: number): boolean => a.memberState(i) === 'active';

/**
 * What a read of `device` would return now, taken without I/O (the harness's view, for checks made
 * at one instant: docs/tag-tables.md, "What the checker checks"), or null when some part of it
 * cannot be read so (an image file, a device on this machine). Memory disks are peeked (their
 * write cache included); a fault overlay is read through to the pristine disk under it, as the
 * content checks read it (docs/simulator.md 3); an array is read member by member where its
 * layout puts each sector, from an active member (RAID-1/10: the first active copy; RAID-5: the
 * data member, or the XOR of the rest of its row when that member is missing).
 */
export function instantReader(device: BlockDevice): InstantRead | null {
  if (device instanceof FootprintDevice) return instantReader(device.inner);
  if (device instanceof FaultyDisk) return instantReader(device.inner);
  if (isArray(device)) return arrayReader(device);
  if (peekable(device)) return (lba, count) => device.peek(lba, count);
  return null;
}

function isArray(d: BlockDevice): d is RaidArray {
  const a = d as Partial<RaidArray>;
  return typeof a.level === 'string' && typeof a.memberState === 'function' && typeof a.member === 'function';
}

/** The members' instant readers, or null if one cannot be read at an instant. */
function memberReaders(a: RaidArray): InstantRead[] | null {
  const out: InstantRead[] = [];
  for (let i = 0; i < a.memberCount; i++) {
    const r = instantReader(a.member(i));
    if (r === null) return null;
    out.push(r);
  }
  return out;
}

type Locating = RaidArray & { chunkSectors: number; locate(lba: number): { member?: number; members?: number[]; memberLba: number; parityMember?: number } };

function arrayReader(a: RaidArray): InstantRead | null {
  const members = memberReaders(a);
  if (members === null) return null;
  const copy = (slots: readonly number[], memberLba: number, count: number): Uint8Array => {
    const slot = slots.find((i) => usable(a, i)) ?? slots[0]!;
    return members[slot]!(memberLba, count);
  };
  if (a.level === 'raid1') return (lba, count) => copy(Array.from({ length: a.memberCount }, (_, i) => i), lba, count);
  const l = a as Locating;
  const piece = (lba: number, count: number): Uint8Array => {
    const where = l.locate(lba);
    if (a.level === 'raid10') return copy(where.members!, where.memberLba, count);
    if (a.level === 'raid0' || usable(a, where.member!)) return members[where.member!]!(where.memberLba, count);
    // RAID-5 without the data member: the rest of the row, parity included, XORs to it.
    const out = new Uint8Array(count * a.sectorSize);
    for (let i = 0; i < a.memberCount; i++) if (i !== where.member) xorInto(out, members[i]!(where.memberLba, count));
    return out;
  };
  return (lba, count) => {
    const out = new Uint8Array(count * a.sectorSize);
    for (const p of splitIntoChunks(lba, count, l.chunkSectors)) out.set(piece(p.arrayLba, p.count), p.at * a.sectorSize);
    return out;
  };
}
