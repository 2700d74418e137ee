import { U64_FIELD_MAX } from '../../firmware/protocol/frame.ts';
import {
  BLOCK_PROTOCOL_VERSION, BlockFrameType, BlockNakReason, BlockStatus, DEVICE_NAME_BYTES_MAX, encodeGeometry, IDENTIFY_PAYLOAD_BYTES,
} from '../../host/disks/serial-disk/block-frames.ts';
import type { SeededRandom } from '../../host/random.ts';
import { pick, randomBytes } from './bytes.ts';
import { damaged, garbage, type FuzzItem } from './damage.ts';
import { MirrorFrameGen } from './frames.ts';
import { writeRawFrame, type RawFrameSpec, type U64 } from './raw-frame.ts';
import { between } from './values.ts';

/**
 * The serial block protocol's frame generator (docs/fuzzing.md 2): the same framing as the mirror
 * protocol, its own version byte and types (host/disks/serial-disk/block-frames.ts). Types, status
 * codes and NAK reasons come from that file's tables. Its field rules live in a function private
 * to the decoder, so the ones a valid frame must keep are restated here from the protocol's
 * documentation (the README's table for board authors): flags, lun and the lockId slot are 0;
 * READ and WRITE carry a count of at least 1, no other type does; only WRITE and REPLY carry a
 * payload, and a WRITE always does.
 */
export const BLOCK_TYPES: readonly number[] = Object.values(BlockFrameType);
const STATUSES: readonly number[] = Object.values(BlockStatus);
const NAK_REASONS: readonly number[] = Object.values(BlockNakReason);
const UNKNOWN_TYPES = Array.from({ length: 256 }, (_, i) => i).filter((t) => !BLOCK_TYPES.includes(t));

const hasCount = (type: number): boolean => type === BlockFrameType.Read || type === BlockFrameType.Write;
const hasPayload = (type: number): boolean => type === BlockFrameType.Write || type === BlockFrameType.Reply;

export interface BlockGenOptions {
  payloadBytesMax: number;
  /** Largest payload to generate (the decoder's payloadBytesMax, or less for speed). */
  dataBytesMax: number;
}

export class BlockFrameGen {
  private readonly mirror: MirrorFrameGen;
  private readonly sessions: number[];

  constructor(private readonly rng: SeededRandom, private readonly opts: BlockGenOptions) {
    this.mirror = new MirrorFrameGen(rng.fork('mirror'), { payloadBytesMax: 4096, dataBytesMax: 4096, sectorSize: 512 });
    this.sessions = [1, between(rng, 1, U64_FIELD_MAX), between(rng, 1, U64_FIELD_MAX)];
  }

  validSpec(type = pick(this.rng, BLOCK_TYPES)): RawFrameSpec {
    const rng = this.rng;
    const code = type === BlockFrameType.Reply ? pick(rng, STATUSES) : type === BlockFrameType.Nak ? pick(rng, NAK_REASONS) : 0;
    return {
      version: BLOCK_PROTOCOL_VERSION, type, flags: 0, code, lun: 0, lockId: 0,
      seq: type === BlockFrameType.Identify ? 0 : pick(rng, [1, 2, between(rng, 1, 1000), U64_FIELD_MAX, between(rng, 0, U64_FIELD_MAX)]),
      lba: pick(rng, [0, 1, between(rng, 0, 1 << 20), U64_FIELD_MAX, between(rng, 0, U64_FIELD_MAX)]),
      tag: pick(rng, this.sessions),
      count: hasCount(type) ? pick(rng, [1, 8, between(rng, 1, 2048), 0xffff_ffff]) : 0,
      payload: this.payload(type),
    };
  }

  private payload(type: number): Uint8Array {
    const max = this.opts.dataBytesMax;
    if (type === BlockFrameType.Reply && this.rng.chance(1, 4)) return this.geometry();
    if (type === BlockFrameType.Write) return randomBytes(this.rng, max >= 512 && this.rng.chance(3, 4) ? 512 * between(this.rng, 1, Math.floor(max / 512)) : between(this.rng, 1, max));
    if (type === BlockFrameType.Reply) return randomBytes(this.rng, this.rng.chance(1, 3) ? 0 : between(this.rng, 1, max));
    return new Uint8Array(0);
  }

  /** An IDENTIFY reply's geometry: mostly a sound one, sometimes one a host must refuse. */
  geometry(): Uint8Array {
    const rng = this.rng;
    const sectorSize = pick(rng, [512, 4096, 65_536, 0, 511, 131_072]);
    const name = 'board-'.repeat(between(rng, 0, 12)).slice(0, pick(rng, [0, 5, DEVICE_NAME_BYTES_MAX]));
    const g = encodeGeometry({
      sectorSize: sectorSize >>> 0, sectorCount: pick(rng, [1, 2048, U64_FIELD_MAX, between(rng, 1, 1e9)]),
      transferBytesMax: pick(rng, [512, 4096, 1 << 20, (1 << 20) + 1, 0]), requestsInFlightMax: pick(rng, [1, 8, 256, 0, 257, 0xffff_ffff]), name,
    });
    if (rng.chance(1, 5)) return g.subarray(0, between(rng, 0, IDENTIFY_PAYLOAD_BYTES)); // cut short
    if (rng.chance(1, 5)) g[rng.int(g.length)] = rng.int(256);
    return this.opts.payloadBytesMax >= g.length ? g : new Uint8Array(0);
  }

  valid(): FuzzItem {
    const spec = this.validSpec();
    return { kind: 'valid', bytes: writeRawFrame(spec), expect: { frame: true }, cover: `0x${spec.type.toString(16)}`, spec };
  }

  /** Sound CRCs, one rule broken. */
  fieldHostile(): FuzzItem {
    const spec = this.validSpec();
    const rng = this.rng;
    const big: U64 = pick(rng, [2n ** 53n, 2n ** 64n - 1n, 2n ** 53n + BigInt(rng.uint32())]);
    const options: [string, Partial<RawFrameSpec>][] = [
      ['flags', { flags: between(rng, 1, 255) }], ['lun', { lun: between(rng, 1, 0xffff) }], ['lockId', { lockId: between(rng, 1, 0xffff_ffff) }],
      ['seq', { seq: big }], ['lba', { lba: big }], ['session', { tag: big }],
      ['count', { count: hasCount(spec.type) ? 0 : between(rng, 1, 0xffff_ffff) }],
    ];
    if (!hasPayload(spec.type)) options.push(['payload', { payload: randomBytes(rng, between(rng, 1, Math.min(64, this.opts.payloadBytesMax))) }]);
    if (spec.type === BlockFrameType.Write) options.push(['payload', { payload: new Uint8Array(0) }]);
    const [what, fields] = pick(rng, options);
    const bad = { ...spec, ...fields };
    return { kind: `field:${what}`, bytes: writeRawFrame(bad), expect: { reject: ['ML_ERR_BLOCK_FRAME_FIELD'] }, spec: bad };
  }

  hostileLength(): FuzzItem {
    const spec = this.validSpec();
    const max = this.opts.payloadBytesMax;
    spec.payloadLength = pick(this.rng, [max + 1, 2 * max, 0xffff_ffff, 0x8000_0000, this.rng.uint32(), spec.payload.length + 1, Math.max(0, spec.payload.length - 1)]);
    const expect = spec.payloadLength > max ? { reject: ['ML_ERR_BLOCK_FRAME_TOO_LARGE'] } : null;
    return { kind: 'length', bytes: writeRawFrame(spec), expect, spec };
  }

  unknownType(): FuzzItem {
    const spec = { ...this.validSpec(), type: pick(this.rng, UNKNOWN_TYPES) };
    return { kind: 'type', bytes: writeRawFrame(spec), expect: { reject: ['ML_ERR_BLOCK_FRAME_TYPE'] }, spec };
  }

  /**
   * Another version: to this decoder a header of another version is no header at all (it cannot
   * tell), so it is skipped a byte at a time as garbage. Mirror-protocol frames are one such.
   */
  foreign(): FuzzItem {
    if (this.rng.chance(1, 2)) return { kind: 'version:mirror', bytes: this.mirror.item().bytes, expect: { reject: 'any' } };
    const spec = { ...this.validSpec(), version: pick(this.rng, [0, 2, 3, 0xff]) };
    return { kind: 'version', bytes: writeRawFrame(spec), expect: { reject: ['ML_ERR_BLOCK_FRAME_GARBAGE'] }, spec };
  }

  item(): FuzzItem {
    const r = this.rng.int(100);
    if (r < 40) return this.valid();
    if (r < 52) return this.fieldHostile();
    if (r < 58) return this.hostileLength();
    if (r < 62) return this.unknownType();
    if (r < 68) return this.foreign();
    if (r < 92) return damaged(this.rng, () => this.valid().bytes);
    if (r < 97) return garbage(this.rng);
    return { kind: 'garbage:header-crc', bytes: writeRawFrame({ ...this.validSpec(), goodHeaderCrc: false }), expect: { reject: 'any' } };
  }
}
