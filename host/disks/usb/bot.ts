import { assert } from '../../../firmware/errors.ts';

/**
 * The wrappers of USB Mass Storage Bulk-Only Transport (BOT 1.0, sections 5.1 and 5.2): the
 * 31-byte Command Block Wrapper the host sends on bulk-out before each command, and the 13-byte
 * Command Status Wrapper the device returns on bulk-in after it. Every multi-byte field is
 * little-endian (the SCSI command block inside is big-endian: scsi.ts). The host side encodes
 * CBWs and judges CSWs; the emulated device (emulated/) decodes CBWs and encodes CSWs. See
 * docs/usb-serial-targets.md for how the driver recovers when a CSW is judged bad.
 *
 *     CBW  off size                         CSW  off size
 *          0   4  dCBWSignature 'USBC'            0   4  dCSWSignature 'USBS'
 *          4   4  dCBWTag                         4   4  dCSWTag (= the CBW's)
 *          8   4  dCBWDataTransferLength          8   4  dCSWDataResidue
 *         12   1  bmCBWFlags (bit 7: in)         12   1  bCSWStatus 0 passed, 1 failed, 2 phase error
 *         13   1  bCBWLUN (bits 3..0)
 *         14   1  bCBWCBLength (1..16)
 *         15  16  CBWCB (the command block, zero-padded)
 */
export const CBW_BYTES = 31;
export const CSW_BYTES = 13;
/** 'USBC' read as a little-endian u32: the bytes 55 53 42 43. */
export const CBW_SIGNATURE = 0x43425355;
/** 'USBS' read as a little-endian u32: the bytes 55 53 42 53. */
export const CSW_SIGNATURE = 0x53425355;
export const CBW_FLAG_IN = 0x80;
/** A command block is 1 to 16 bytes. */
export const CB_BYTES_MAX = 16;
/** LUNs are numbered 0..15 (four bits of bCBWLUN). */
export const LUN_MAX = 15;

export const CswStatus = { Passed: 0, Failed: 1, PhaseError: 2 } as const;
export type CswStatus = (typeof CswStatus)[keyof typeof CswStatus];

export type DataDirection = 'none' | 'in' | 'out';

export interface CommandBlockWrapper {
  tag: number;
  /** Bytes the host expects to move in the data phase (0 for none). */
  dataTransferLength: number;
  /** Direction of the data phase; `none` when the length is 0 (the flag byte is then 0). */
  direction: DataDirection;
  lun: number;
  /** The SCSI command block, 1 to 16 bytes. */
  cb: Uint8Array;
}

const isU32 = (v: number): boolean => Number.isInteger(v) && v >= 0 && v <= 0xffffffff;

/** The 31 bytes of a CBW. Our own driver builds these, so a bad field is a programmer error. */
export function encodeCbw(cbw: CommandBlockWrapper): Uint8Array {
  assert(isU32(cbw.tag), `CBW tag must be a u32, got ${cbw.tag}`);
  assert(isU32(cbw.dataTransferLength), `CBW data transfer length must be a u32, got ${cbw.dataTransferLength}`);
  assert((cbw.direction === 'none') === (cbw.dataTransferLength === 0), 'a CBW moves data exactly when its direction is in or out');
  assert(Number.isInteger(cbw.lun) && cbw.lun >= 0 && cbw.lun <= LUN_MAX, `CBW LUN must be 0..${LUN_MAX}, got ${cbw.lun}`);
  assert(cbw.cb.length >= 1 && cbw.cb.length <= CB_BYTES_MAX, `a command block is 1..${CB_BYTES_MAX} bytes, got ${cbw.cb.length}`);
  const out = new Uint8Array(CBW_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, CBW_SIGNATURE, true);
  view.setUint32(4, cbw.tag, true);
  view.setUint32(8, cbw.dataTransferLength, true);
  out[12] = cbw.direction === 'in' ? CBW_FLAG_IN : 0;
  out[13] = cbw.lun;
  out[14] = cbw.cb.length;
  out.set(cbw.cb, 15);
  return out;
}

/**
 * What a device makes of bytes received where a CBW should be (BOT 6.2): a CBW, or why it is not
 * valid (wrong size or signature: the device must then stall both pipes until a reset recovery)
 * or not meaningful (reserved bits set, a LUN or command-block length out of range).
 */
export type CbwVerdict = { ok: true; cbw: CommandBlockWrapper } | { ok: false; valid: boolean; problem: string };

export function decodeCbw(bytes: Uint8Array): CbwVerdict {
  if (bytes.length !== CBW_BYTES) return { ok: false, valid: false, problem: `${bytes.length} bytes, not ${CBW_BYTES}` };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const signature = view.getUint32(0, true);
  if (signature !== CBW_SIGNATURE) return { ok: false, valid: false, problem: `signature 0x${hex32(signature)}, not 0x${hex32(CBW_SIGNATURE)}` };
  const flags = bytes[12]!;
  const lunByte = bytes[13]!;
  const cbLength = bytes[14]!;
  if ((flags & 0x7f) !== 0) return { ok: false, valid: true, problem: `reserved bits set in bmCBWFlags (0x${flags.toString(16)})` };
  if ((lunByte & 0xf0) !== 0) return { ok: false, valid: true, problem: `reserved bits set in bCBWLUN (0x${lunByte.toString(16)})` };
  if (cbLength < 1 || cbLength > CB_BYTES_MAX) return { ok: false, valid: true, problem: `bCBWCBLength ${cbLength} is not 1..${CB_BYTES_MAX}` };
  const dataTransferLength = view.getUint32(8, true);
  const direction: DataDirection = dataTransferLength === 0 ? 'none' : (flags & CBW_FLAG_IN) !== 0 ? 'in' : 'out';
  return {
    ok: true,
    cbw: { tag: view.getUint32(4, true), dataTransferLength, direction, lun: lunByte, cb: bytes.slice(15, 15 + cbLength) },
  };
}

export interface CommandStatusWrapper {
  tag: number;
  residue: number;
  status: number;
}

/** The 13 bytes of a CSW (the emulated device sends these; its faults may set any value). */
export function encodeCsw(csw: CommandStatusWrapper, signature = CSW_SIGNATURE): Uint8Array {
  const out = new Uint8Array(CSW_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, signature >>> 0, true);
  view.setUint32(4, csw.tag >>> 0, true);
  view.setUint32(8, csw.residue >>> 0, true);
  out[12] = csw.status & 0xff;
  return out;
}

/**
 * The host's verdict on what came back in the status stage (BOT 6.3): `passed`, `failed` (ask
 * REQUEST SENSE), `phase-error`, or `invalid` / `not-meaningful`, after each of which the host
 * must do a reset recovery (BOT 5.3.4) before anything else. `problem` says what was wrong.
 */
export type CswVerdict =
  | { kind: 'passed'; residue: number }
  | { kind: 'failed'; residue: number }
  | { kind: 'phase-error' }
  | { kind: 'invalid'; problem: string }
  | { kind: 'not-meaningful'; problem: string };

/** Judges a CSW against the CBW it answers (its tag and data transfer length). */
export function judgeCsw(bytes: Uint8Array, expect: { tag: number; dataTransferLength: number }): CswVerdict {
  if (bytes.length !== CSW_BYTES) return { kind: 'invalid', problem: `the CSW is ${bytes.length} bytes, not ${CSW_BYTES}` };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const signature = view.getUint32(0, true);
  if (signature !== CSW_SIGNATURE) return { kind: 'invalid', problem: `CSW signature 0x${hex32(signature)}, not 0x${hex32(CSW_SIGNATURE)} ('USBS')` };
  const tag = view.getUint32(4, true);
  if (tag !== expect.tag) return { kind: 'invalid', problem: `CSW tag 0x${hex32(tag)} does not match the CBW's 0x${hex32(expect.tag)}` };
  const status = bytes[12]!;
  const residue = view.getUint32(8, true);
  if (status === CswStatus.PhaseError) return { kind: 'phase-error' };
  if (status !== CswStatus.Passed && status !== CswStatus.Failed) return { kind: 'not-meaningful', problem: `CSW status ${status} is not 0, 1 or 2` };
  if (residue > expect.dataTransferLength) {
    return { kind: 'not-meaningful', problem: `CSW residue ${residue} exceeds the ${expect.dataTransferLength} bytes the CBW asked for` };
  }
  return status === CswStatus.Passed ? { kind: 'passed', residue } : { kind: 'failed', residue };
}

const hex32 = (v: number): string => v.toString(16).padStart(8, '0');
