import { describe, expect, it } from 'vitest';
import { DeviceFailedError, MediaError } from '../../../../firmware/ports/block-device.ts';
import {
  descriptorSense, fixedSense, inquiry, parseCapacity10, parseCapacity16, parseInquiry, parseMaxTransferBlocks, parseSense, parseSupportedVpdPages,
  readCapacity16, readWrite, readWriteRange, requestSense, synchronizeCache10, testUnitReady,
} from '../../../../host/disks/usb/scsi.ts';
import { senseAction } from '../../../../host/disks/usb/sense-action.ts';

/** Command blocks and replies against the layouts of SBC-3 and SPC-4 (big-endian). */
const bytes = (hex: string): Uint8Array => Uint8Array.from(hex.trim().split(/\s+/).map((h) => parseInt(h, 16)));
const hex = (b: Uint8Array): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');

describe('command blocks', () => {
  it('READ/WRITE use the 10-byte form while it reaches, the 16-byte form beyond', () => {
    expect(hex(readWrite('read', 0x12345678, 8))).toBe('28 00 12 34 56 78 00 00 08 00');
    expect(hex(readWrite('write', 0, 0xffff))).toBe('2a 00 00 00 00 00 00 ff ff 00');
    expect(hex(readWrite('read', 0xffffffff, 1))).toBe('28 00 ff ff ff ff 00 00 01 00');
    expect(hex(readWrite('read', 0xffffffff, 2))).toBe('88 00 00 00 00 00 ff ff ff ff 00 00 00 02 00 00');
    expect(hex(readWrite('write', 2 ** 33 + 5, 0x10000))).toBe('8a 00 00 00 00 02 00 00 00 05 00 01 00 00 00 00');
    for (const [lba, n] of [[7, 3], [2 ** 40, 9], [0xfffffffe, 0xffff]] as const) {
      expect(readWriteRange(readWrite('read', lba, n))).toEqual({ write: false, lba, blocks: n });
      expect(readWriteRange(readWrite('write', lba, n))).toEqual({ write: true, lba, blocks: n });
    }
  });

  it('the others', () => {
    expect(hex(testUnitReady())).toBe('00 00 00 00 00 00');
    expect(hex(requestSense(64))).toBe('03 00 00 00 40 00');
    expect(hex(inquiry(36))).toBe('12 00 00 00 24 00');
    expect(hex(inquiry(64, 0xb0))).toBe('12 01 b0 00 40 00');
    expect(hex(readCapacity16())).toBe('9e 10 00 00 00 00 00 00 00 00 00 00 00 20 00 00');
    expect(hex(synchronizeCache10())).toBe('35 00 00 00 00 00 00 00 00 00');
  });
});

describe('replies', () => {
  it('INQUIRY, READ CAPACITY (10) and (16), the VPD pages', () => {
    const std = new Uint8Array(36);
    std.set(bytes('00 80 06 02 1f'), 0);
    std.set(new TextEncoder().encode('SanDisk Cruzer Blade    1.00'), 8);
    expect(parseInquiry(std)).toEqual({ qualifier: 0, deviceType: 0, removable: true, vendor: 'SanDisk', product: 'Cruzer Blade', revision: '1.00' });
    expect(parseInquiry(new Uint8Array(35))).toBeNull();
    expect(parseCapacity10(bytes('00 ed ff ff 00 00 02 00'))).toEqual({ lastLba: 0x00edffff, blockLength: 512 });
    expect(parseCapacity16(bytes('00 00 00 01 ff ff ff ff 00 00 10 00 00 00 00 00'))).toEqual({ lastLba: 2 ** 33 - 1, blockLength: 4096 });
    expect(parseSupportedVpdPages(bytes('00 00 00 03 00 80 b0'))).toEqual([0x00, 0x80, 0xb0]);
    expect(parseMaxTransferBlocks(bytes('00 b0 00 3c 00 00 00 00 00 00 00 f0'))).toBe(240);
    expect(parseMaxTransferBlocks(bytes('00 b1 00 3c 00 00 00 00 00 00 00 f0'))).toBeNull();
  });

  it('sense data in fixed and descriptor format, with and without the information field', () => {
    expect(parseSense(bytes('70 00 06 00 00 00 00 0a 00 00 00 00 29 00 00 00 00 00'))).toEqual({ key: 6, asc: 0x29, ascq: 0, information: null });
    expect(parseSense(bytes('f0 00 03 00 00 12 34 0a 00 00 00 00 11 00 00 00 00 00'))).toEqual({ key: 3, asc: 0x11, ascq: 0, information: 0x1234 });
    expect(parseSense(bytes('72 03 11 00 00 00 00 0c 00 0a 80 00 00 00 00 02 00 00 00 07'))).toEqual({ key: 3, asc: 0x11, ascq: 0, information: 2 ** 33 + 7 });
    expect(parseSense(bytes('72 02 3a 00 00 00 00 00'))).toEqual({ key: 2, asc: 0x3a, ascq: 0, information: null });
    expect(parseSense(bytes('71 00 03'))).toBeNull();
    expect(parseSense(bytes('7f 00 03 00 00 00 00 0a 00 00 00 00 11 00'))).toBeNull();
    expect(parseSense(fixedSense({ key: 3, asc: 0x11, ascq: 0, information: 99 }))).toEqual({ key: 3, asc: 0x11, ascq: 0, information: 99 });
    expect(parseSense(descriptorSense({ key: 3, asc: 0x11, ascq: 0, information: 2 ** 40 }))).toEqual({ key: 3, asc: 0x11, ascq: 0, information: 2 ** 40 });
  });
});

describe('what a failed command\'s sense means', () => {
  const request = { lba: 100, blocks: 8 };
  const act = (key: number, asc: number, ascq: number, information: number | null = null) => senseAction('usb', { key, asc, ascq, information }, request);

  it('only a medium error is a MediaError, naming the LBA the device gave when it lies inside the request', () => {
    const inside = act(3, 0x11, 0, 103);
    expect(inside.kind === 'fail' && inside.error instanceof MediaError && inside.error.lba).toBe(103);
    const outside = act(3, 0x11, 0, 5000);
    expect(outside.kind === 'fail' && outside.error instanceof MediaError && outside.error.lba).toBe(100);
    const none = act(3, 0x0c, 0);
    expect(none.kind === 'fail' && none.error instanceof MediaError && none.error.lba).toBe(100);
  });

  it('not ready, no medium, hardware error, write protection, a refused command: the device failed', () => {
    for (const [key, asc, ascq, why] of [[2, 0x3a, 0, /no medium/], [2, 0x04, 0x02, /not ready/], [4, 0x44, 0, /hardware error/], [7, 0x27, 0, /write-protected/], [5, 0x20, 0, /refused the command/], [0xd, 0, 0, /unexpected sense 0d/]] as const) {
      const a = act(key, asc, ascq);
      expect(a.kind).toBe('fail');
      if (a.kind === 'fail') {
        expect(a.error).toBeInstanceOf(DeviceFailedError);
        expect(a.error.message).toMatch(why);
      }
    }
  });

  it('unit attentions, aborted commands and no sense are retried; a possible medium change is checked; becoming ready is waited for', () => {
    expect(act(6, 0x29, 0).kind).toBe('retry');
    expect(act(0xb, 0, 0).kind).toBe('retry');
    expect(act(0, 0, 0).kind).toBe('retry');
    expect(act(6, 0x28, 0).kind).toBe('recheck');
    expect(act(6, 0x2a, 0x09).kind).toBe('recheck');
    expect(act(2, 0x04, 0x01)).toMatchObject({ kind: 'wait', ms: 100 });
  });
});
