import { describe, expect, it } from 'vitest';
import {
  DeviceFailedError,
  MediaError,
  OutOfRangeError,
  type BlockDevice,
} from '../../../firmware/ports/block-device.ts';
import type { VirtualClock } from '../../../host/clock/virtual.ts';
import { pattern, rejectionOf, runUntilSettled, turns } from './helpers.ts';

/** One device under test, made fresh for every case. */
export interface ContractSubject {
  device: BlockDevice;
  clock: VirtualClock;
  /** Makes reads of `lba` fail with a MediaError naming it; absent when the device cannot. */
  injectMediaError?: (lba: number) => void;
  /** Makes the whole device fail (every part a request may touch); absent when it cannot. */
  failDevice?: () => void;
  close?: () => Promise<void>;
}

export interface ContractGeometry {
  sectorSize: number;
  /** At least this many sectors (an array may round its capacity). */
  sectorCountMin: number;
}

export type ContractFactory = (geometry: ContractGeometry) => Promise<ContractSubject>;

/**
 * The BlockDevice contract (firmware/ports/block-device.ts), run against every implementation
 * (CONVENTIONS 4): registers a `describe` block named `name`.
 */
export function blockDeviceContract(name: string, factory: ContractFactory, sectorSizes = [512, 4096]): void {
  describe(`BlockDevice contract: ${name}`, () => {
    for (const sectorSize of sectorSizes) {
      describe(`${sectorSize}-byte sectors`, () => {
        const withSubject = (test: (s: ContractSubject) => Promise<void>) => async () => {
          const subject = await factory({ sectorSize, sectorCountMin: 64 });
          try {
            await test(subject);
          } finally {
            await subject.close?.();
          }
        };
        geometryAndDataCases(sectorSize, withSubject);
        errorCases(withSubject);
        concurrencyCases(withSubject);
      });
    }
  });
}

type WithSubject = (test: (s: ContractSubject) => Promise<void>) => () => Promise<void>;

function geometryAndDataCases(sectorSize: number, withSubject: WithSubject): void {
  it('reports its geometry', withSubject(async ({ device }) => {
    expect(device.name.length).toBeGreaterThan(0);
    expect(device.sectorSize).toBe(sectorSize);
    expect(Number.isSafeInteger(device.sectorCount) && device.sectorCount >= 64).toBe(true);
  }));

  it('reads unwritten sectors as zeros, into a fresh buffer the caller owns', withSubject(async ({ device, clock }) => {
    const first = await runUntilSettled(clock, device.read(device.sectorCount - 3, 3));
    expect(first).toEqual(new Uint8Array(3 * sectorSize));
    first.fill(7);
    expect(await runUntilSettled(clock, device.read(device.sectorCount - 3, 3))).toEqual(new Uint8Array(3 * sectorSize));
  }));

  it('returns what was written (read-after-write), at the ends and across the middle', withSubject(async ({ device, clock }) => {
    const ss = device.sectorSize;
    const last = device.sectorCount - 1;
    const cases: [number, Uint8Array][] = [[0, pattern(1, ss)], [last, pattern(2, ss)], [5, pattern(3, 37 * ss)]];
    for (const [lba, data] of cases) await runUntilSettled(clock, device.write(lba, data));
    for (const [lba, data] of cases) expect(await runUntilSettled(clock, device.read(lba, data.length / ss))).toEqual(data);
    // Neighbours untouched.
    expect(await runUntilSettled(clock, device.read(4, 1))).toEqual(new Uint8Array(ss));
    expect(await runUntilSettled(clock, device.read(42, 1))).toEqual(new Uint8Array(ss));
  }));

  it('does not keep the caller\'s buffer once the write has settled', withSubject(async ({ device, clock }) => {
    const data = pattern(4, device.sectorSize * 2);
    const copy = data.slice();
    await runUntilSettled(clock, device.write(10, data));
    data.fill(0xee);
    expect(await runUntilSettled(clock, device.read(10, 2))).toEqual(copy);
  }));

  it('flushes, and the data is still there', withSubject(async ({ device, clock }) => {
    const data = pattern(5, device.sectorSize * 4);
    await runUntilSettled(clock, device.write(20, data));
    await runUntilSettled(clock, device.flush());
    expect(await runUntilSettled(clock, device.read(20, 4))).toEqual(data);
  }));

  it('settles every request through the clock, never on the spot', withSubject(async ({ device, clock }) => {
    let settled = false;
    const op = device.write(0, pattern(6, device.sectorSize)).then(() => (settled = true));
    await turns();
    expect(settled).toBe(false);
    await runUntilSettled(clock, op);
    expect(settled).toBe(true);
  }));
}

function errorCases(withSubject: WithSubject): void {
  it('rejects requests outside the device with OutOfRangeError', withSubject(async ({ device, clock }) => {
    const ss = device.sectorSize;
    const n = device.sectorCount;
    const bad: (() => Promise<unknown>)[] = [
      () => device.read(n, 1), () => device.read(n - 1, 2), () => device.read(-1, 1), () => device.read(0, 0), () => device.read(1.5, 1),
      () => device.write(n, new Uint8Array(ss)), () => device.write(n - 1, new Uint8Array(2 * ss)), () => device.write(-1, new Uint8Array(ss)),
    ];
    for (const op of bad) {
      const error = await rejectionOf(clock, op());
      expect(error).toBeInstanceOf(OutOfRangeError);
      expect((error as OutOfRangeError).code).toBe('ML_ERR_DISK_RANGE');
    }
  }));

  it('rejects writes that are not whole sectors with ML_ERR_DISK_ALIGNMENT', withSubject(async ({ device, clock }) => {
    for (const length of [0, 1, device.sectorSize - 1, device.sectorSize + 1]) {
      const error = await rejectionOf(clock, device.write(0, new Uint8Array(length)));
      expect(error).toBeInstanceOf(OutOfRangeError);
      expect((error as OutOfRangeError).code).toBe('ML_ERR_DISK_ALIGNMENT');
    }
  }));

  it('reports a media error with its LBA, and only for requests that touch it', withSubject(async (s) => {
    if (!s.injectMediaError) return;
    const { device, clock } = s;
    await runUntilSettled(clock, device.write(30, pattern(7, device.sectorSize * 8)));
    s.injectMediaError(33);
    const error = await rejectionOf(clock, device.read(30, 8));
    expect(error).toBeInstanceOf(MediaError);
    expect((error as MediaError).lba).toBe(33);
    expect((error as MediaError).code).toBe('ML_ERR_DISK_MEDIA');
    expect(await runUntilSettled(clock, device.read(30, 3))).toEqual(pattern(7, device.sectorSize * 8).subarray(0, 3 * device.sectorSize));
  }));

  it('rejects everything with DeviceFailedError once the device has failed', withSubject(async (s) => {
    if (!s.failDevice) return;
    const { device, clock } = s;
    await runUntilSettled(clock, device.write(0, pattern(8, device.sectorSize)));
    s.failDevice();
    const ops = [() => device.read(0, 1), () => device.write(0, new Uint8Array(device.sectorSize)), () => device.flush()];
    for (const op of ops) {
      const error = await rejectionOf(clock, op());
      expect(error).toBeInstanceOf(DeviceFailedError);
    }
  }));
}

function concurrencyCases(withSubject: WithSubject): void {
  it('serves many requests in flight together', withSubject(async ({ device, clock }) => {
    const ss = device.sectorSize;
    const writes = Array.from({ length: 16 }, (_, i) => device.write(i * 3, pattern(100 + i, 2 * ss)));
    await runUntilSettled(clock, Promise.all(writes));
    const reads = Array.from({ length: 16 }, (_, i) => device.read(i * 3, 2));
    const got = await runUntilSettled(clock, Promise.all(reads));
    got.forEach((data, i) => expect(data).toEqual(pattern(100 + i, 2 * ss)));
  }));

  it('leaves each sector holding one of the overlapping writes in flight together, never a mix', withSubject(async ({ device, clock }) => {
    const ss = device.sectorSize;
    const payloads = [pattern(201, 4 * ss), pattern(202, 4 * ss), pattern(203, 4 * ss)];
    const offsets = [0, 1, 2];
    await runUntilSettled(clock, Promise.all(payloads.map((p, i) => device.write(40 + offsets[i]!, p))));
    const got = await runUntilSettled(clock, device.read(40, 6));
    for (let sector = 0; sector < 6; sector++) {
      const actual = got.subarray(sector * ss, (sector + 1) * ss);
      const candidates = payloads
        .map((p, i) => ({ p, start: offsets[i]! }))
        .filter(({ start }) => sector >= start && sector < start + 4)
        .map(({ p, start }) => p.subarray((sector - start) * ss, (sector - start + 1) * ss));
      expect(candidates.some((c) => Buffer.compare(c, actual) === 0)).toBe(true);
    }
  }));
}
