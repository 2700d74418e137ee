import { describe, expect, it } from 'vitest';
import { CBW_BYTES, CSW_BYTES, decodeCbw, encodeCbw, encodeCsw, judgeCsw } from '../../../../host/disks/usb/bot.ts';

/**
 * The Bulk-Only wrappers against byte vectors written out from the layouts in the USB Mass Storage
 * Class Bulk-Only Transport specification, rev. 1.0: the CBW of 5.1 (31 bytes, little-endian,
 * signature 43425355h sent LSB first as "USBC") and the CSW of 5.2 (13 bytes, 53425355h, "USBS"),
 * judged by the validity and meaningfulness rules of 6.2 and 6.3.
 */
const bytes = (hex: string): Uint8Array => Uint8Array.from(hex.trim().split(/\s+/).map((h) => parseInt(h, 16)));

describe('CBW (BOT 5.1)', () => {
  it('encodes the INQUIRY a host sends first: tag 1, 36 bytes in, LUN 0, a 6-byte command block', () => {
    const cb = bytes('12 00 00 00 24 00');
    const cbw = encodeCbw({ tag: 1, dataTransferLength: 36, direction: 'in', lun: 0, cb });
    expect([...cbw]).toEqual([...bytes(`
      55 53 42 43  01 00 00 00  24 00 00 00  80  00  06
      12 00 00 00 24 00 00 00 00 00 00 00 00 00 00 00`)]);
    expect(cbw.length).toBe(CBW_BYTES);
  });

  it('encodes a WRITE(10) out of LUN 3 with a 32-bit tag and a 64 KiB length, little-endian', () => {
    const cb = bytes('2a 00 12 34 56 78 00 00 80 00');
    const cbw = encodeCbw({ tag: 0xdeadbeef, dataTransferLength: 0x10000, direction: 'out', lun: 3, cb });
    expect([...cbw]).toEqual([...bytes(`
      55 53 42 43  ef be ad de  00 00 01 00  00  03  0a
      2a 00 12 34 56 78 00 00 80 00 00 00 00 00 00 00`)]);
  });

  it('encodes a command without data with flags 0 (BOT 5.1: the direction bit is ignored when the length is 0)', () => {
    const cbw = encodeCbw({ tag: 7, dataTransferLength: 0, direction: 'none', lun: 0, cb: new Uint8Array(6) });
    expect(cbw[12]).toBe(0);
    expect([...cbw.subarray(8, 12)]).toEqual([0, 0, 0, 0]);
  });

  it('refuses to build a CBW that breaks the layout (a programmer error)', () => {
    const ok = { tag: 1, dataTransferLength: 36, direction: 'in' as const, lun: 0, cb: new Uint8Array(6) };
    expect(() => encodeCbw({ ...ok, lun: 16 })).toThrow(/LUN must be 0..15/);
    expect(() => encodeCbw({ ...ok, cb: new Uint8Array(17) })).toThrow(/1..16 bytes/);
    expect(() => encodeCbw({ ...ok, cb: new Uint8Array(0) })).toThrow(/1..16 bytes/);
    expect(() => encodeCbw({ ...ok, tag: 2 ** 32 })).toThrow(/tag must be a u32/);
    expect(() => encodeCbw({ ...ok, direction: 'none' })).toThrow(/exactly when/);
  });

  it('decodes what it encodes, and judges a device\'s view of bad CBWs (BOT 6.2): not valid, or not meaningful', () => {
    const good = encodeCbw({ tag: 0x01020304, dataTransferLength: 512, direction: 'in', lun: 2, cb: bytes('28 00 00 00 00 10 00 00 01 00') });
    const d = decodeCbw(good);
    expect(d).toEqual({ ok: true, cbw: { tag: 0x01020304, dataTransferLength: 512, direction: 'in', lun: 2, cb: bytes('28 00 00 00 00 10 00 00 01 00') } });
    const mutate = (at: number, value: number): Uint8Array => {
      const b = good.slice();
      b[at] = value;
      return b;
    };
    expect(decodeCbw(good.subarray(0, 30))).toMatchObject({ ok: false, valid: false, problem: '30 bytes, not 31' });
    expect(decodeCbw(Uint8Array.of(...good, 0))).toMatchObject({ ok: false, valid: false });
    expect(decodeCbw(mutate(3, 0x53))).toMatchObject({ ok: false, valid: false, problem: expect.stringMatching(/signature 0x53425355/) });
    expect(decodeCbw(mutate(12, 0x81))).toMatchObject({ ok: false, valid: true, problem: expect.stringMatching(/reserved bits set in bmCBWFlags/) });
    expect(decodeCbw(mutate(13, 0x12))).toMatchObject({ ok: false, valid: true, problem: expect.stringMatching(/reserved bits set in bCBWLUN/) });
    expect(decodeCbw(mutate(14, 0))).toMatchObject({ ok: false, valid: true, problem: expect.stringMatching(/bCBWCBLength 0/) });
    expect(decodeCbw(mutate(14, 17))).toMatchObject({ ok: false, valid: true, problem: expect.stringMatching(/bCBWCBLength 17/) });
  });
});

describe('CSW (BOT 5.2, judged by 6.3)', () => {
  const expectFor = { tag: 0x11223344, dataTransferLength: 4096 };

  it('passed, failed with a residue, phase error', () => {
    expect(judgeCsw(bytes('55 53 42 53  44 33 22 11  00 00 00 00  00'), expectFor)).toEqual({ kind: 'passed', residue: 0 });
    expect(judgeCsw(bytes('55 53 42 53  44 33 22 11  00 02 00 00  01'), expectFor)).toEqual({ kind: 'failed', residue: 512 });
    expect(judgeCsw(bytes('55 53 42 53  44 33 22 11  00 10 00 00  00'), expectFor)).toEqual({ kind: 'passed', residue: 4096 });
    // A phase error is meaningful whatever its residue says.
    expect(judgeCsw(bytes('55 53 42 53  44 33 22 11  ff ff ff ff  02'), expectFor)).toEqual({ kind: 'phase-error' });
  });

  it('not valid: wrong size, wrong signature, a tag answering another CBW', () => {
    expect(judgeCsw(bytes('55 53 42 53  44 33 22 11  00 00 00 00'), expectFor)).toMatchObject({ kind: 'invalid', problem: 'the CSW is 12 bytes, not 13' });
    expect(judgeCsw(bytes('55 53 42 53  44 33 22 11  00 00 00 00  00 00'), expectFor)).toMatchObject({ kind: 'invalid', problem: 'the CSW is 14 bytes, not 13' });
    expect(judgeCsw(new Uint8Array(0), expectFor)).toMatchObject({ kind: 'invalid' });
    expect(judgeCsw(bytes('55 53 42 43  44 33 22 11  00 00 00 00  00'), expectFor)).toMatchObject({ kind: 'invalid', problem: expect.stringMatching(/signature 0x43425355, not 0x53425355/) });
    expect(judgeCsw(bytes('55 53 42 53  45 33 22 11  00 00 00 00  00'), expectFor)).toMatchObject({ kind: 'invalid', problem: expect.stringMatching(/tag 0x11223345 does not match the CBW's 0x11223344/) });
  });

  it('valid but not meaningful: an unknown status, a residue beyond the CBW\'s length', () => {
    expect(judgeCsw(bytes('55 53 42 53  44 33 22 11  00 00 00 00  03'), expectFor)).toMatchObject({ kind: 'not-meaningful', problem: 'CSW status 3 is not 0, 1 or 2' });
    expect(judgeCsw(bytes('55 53 42 53  44 33 22 11  01 10 00 00  00'), expectFor)).toMatchObject({ kind: 'not-meaningful', problem: expect.stringMatching(/residue 4097 exceeds/) });
  });

  it('encodes CSWs a device sends, byte for byte', () => {
    expect([...encodeCsw({ tag: 0x11223344, residue: 512, status: 1 })]).toEqual([...bytes('55 53 42 53  44 33 22 11  00 02 00 00  01')]);
    expect(encodeCsw({ tag: 1, residue: 0, status: 0 }).length).toBe(CSW_BYTES);
  });
});
