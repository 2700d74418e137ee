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
  /** Makes reads of `lba` fail with a MediaError naming it. Capability `mediaErrors`. */
  injectMediaError?: (lba: number) => void;
  /** Makes the whole device fail (every part a request may touch). Capability `deviceFailure`. */
  failDevice?: () => void;
  /**
   * Cuts the power and brings it back: whatever the device had not made durable may be lost.
   * Returns the device to use afterwards (the same one, or an array reassembled over the same
   * members from its superblock). Capability `powerCycle`.
   */
  powerCycle?: () => BlockDevice;
  /**
   * Durability barriers (fsync, fdatasync) that have reached the storage under the device so
   * far, counted where they happen (a spy on the file handle). Capability `barriers`.
   */
  barriers?: () => number;
  close?: () => Promise<void>;
}

/** What a subject can do beyond the BlockDevice port; cases needing what it cannot are skipped (and shown as skipped). */
export interface ContractCapabilities {
  mediaErrors?: boolean;
  deviceFailure?: boolean;
  powerCycle?: boolean;
  barriers?: boolean;
}

type Capability = keyof ContractCapabilities;

/** The subject's hook each capability stands for. */
const HOOK_OF: Record<Capability, keyof ContractSubject> = {
  mediaErrors: 'injectMediaError',
  deviceFailure: 'failDevice',
  powerCycle: 'powerCycle',
  barriers: 'barriers',
};

export interface ContractGeometry {
  sectorSize: number;
  /** At least this many sectors (an array may round its capacity). */
  sectorCountMin: number;
}

export type ContractFactory = (geometry: ContractGeometry) => Promise<ContractSubject>;

export interface ContractOptions {
  sectorSizes?: number[];
  can?: ContractCapabilities;
}

/** One check of the contract, runnable on its own (the suite's own tests feed it broken devices). */
export interface ContractCase {
  name: string;
  needs?: Capability;
  run(subject: ContractSubject, sectorSize: number): Promise<void>;
}

/** Sectors every subject has at least. */
const SECTOR_COUNT_MIN = 64;

/**
 * `actual` holds exactly the bytes of `expected` (a Buffer comparison: `toEqual` on a typed
 * array walks it element by element, which makes the contract slow at 4 KiB sectors). On a
 * difference it names the first differing byte.
 */
function sameBytes(actual: Uint8Array, expected: Uint8Array, what = 'data'): void {
  if (actual.length === expected.length && Buffer.compare(actual, expected) === 0) return;
  let at = 0;
  while (at < Math.min(actual.length, expected.length) && actual[at] === expected[at]) at++;
  expect.fail(`${what}: ${actual.length} bytes, expected ${expected.length}; first difference at byte ${at}`);
}

/**
 * The BlockDevice contract (firmware/ports/block-device.ts), run against every implementation
 * (docs/conventions.md 4): registers a `describe` block named `name`. Cases that need a capability the
 * subject lacks are registered as skipped, so a report shows what was not checked.
 */
export function blockDeviceContract(name: string, factory: ContractFactory, options: ContractOptions = {}): void {
  const can = options.can ?? {};
  describe(`BlockDevice contract: ${name}`, () => {
    for (const sectorSize of options.sectorSizes ?? [512, 4096]) {
      describe(`${sectorSize}-byte sectors`, () => {
        it('offers exactly the fault hooks it declares', async () => {
          const subject = await factory({ sectorSize, sectorCountMin: SECTOR_COUNT_MIN });
          try {
            for (const [capability, hook] of Object.entries(HOOK_OF) as [Capability, keyof ContractSubject][]) {
              expect({ capability, present: subject[hook] !== undefined }).toEqual({ capability, present: can[capability] === true });
            }
          } finally {
            await subject.close?.();
          }
        });
        for (const c of CONTRACT_CASES) {
          it.skipIf(c.needs !== undefined && can[c.needs] !== true)(c.name, () => runContractCase(c, factory, sectorSize));
        }
      });
    }
  });
}

/** Makes a fresh subject, runs one case on it, closes it. Throws what the case throws. */
export async function runContractCase(c: ContractCase, factory: ContractFactory, sectorSize: number): Promise<void> {
  const subject = await factory({ sectorSize, sectorCountMin: SECTOR_COUNT_MIN });
  try {
    if (c.needs !== undefined && subject[HOOK_OF[c.needs]] === undefined) throw new Error(`the subject lacks ${HOOK_OF[c.needs]}, which '${c.name}' needs`);
    await c.run(subject, sectorSize);
  } finally {
    await subject.close?.();
  }
}

export function contractCase(name: string): ContractCase {
  const found = CONTRACT_CASES.find((c) => c.name === name);
  if (!found) throw new Error(`no contract case '${name}'`);
  return found;
}

const GEOMETRY_AND_DATA: ContractCase[] = [
  {
    name: 'reports its geometry',
    run: async ({ device }, sectorSize) => {
      expect(device.name.length).toBeGreaterThan(0);
      expect(device.sectorSize).toBe(sectorSize);
      expect(Number.isSafeInteger(device.sectorCount) && device.sectorCount >= SECTOR_COUNT_MIN).toBe(true);
    },
  },
  {
    name: 'reads unwritten sectors as zeros, into a fresh buffer the caller owns',
    run: async ({ device, clock }) => {
      const first = await runUntilSettled(clock, device.read(device.sectorCount - 3, 3));
      sameBytes(first, new Uint8Array(3 * device.sectorSize));
      first.fill(7);
      sameBytes(await runUntilSettled(clock, device.read(device.sectorCount - 3, 3)), new Uint8Array(3 * device.sectorSize));
    },
  },
  {
    name: 'returns what was written (read-after-write), at the ends and across the middle',
    run: async ({ device, clock }) => {
      const ss = device.sectorSize;
      const last = device.sectorCount - 1;
      // Read each place once before writing it: a device serving stale copies of earlier reads fails.
      for (const lba of [0, last, 5]) await runUntilSettled(clock, device.read(lba, 1));
      const cases: [number, Uint8Array][] = [[0, pattern(1, ss)], [last, pattern(2, ss)], [5, pattern(3, 37 * ss)]];
      for (const [lba, data] of cases) await runUntilSettled(clock, device.write(lba, data));
      for (const [lba, data] of cases) sameBytes(await runUntilSettled(clock, device.read(lba, data.length / ss)), data);
      // Neighbours untouched.
      sameBytes(await runUntilSettled(clock, device.read(4, 1)), new Uint8Array(ss));
      sameBytes(await runUntilSettled(clock, device.read(42, 1)), new Uint8Array(ss));
    },
  },
  {
    name: 'does not keep the caller\'s buffer once the write has settled',
    run: async ({ device, clock }) => {
      const data = pattern(4, device.sectorSize * 2);
      const copy = data.slice();
      await runUntilSettled(clock, device.write(10, data));
      data.fill(0xee);
      sameBytes(await runUntilSettled(clock, device.read(10, 2)), copy);
    },
  },
  {
    name: 'flushes, and the data is still there',
    run: async ({ device, clock }) => {
      const data = pattern(5, device.sectorSize * 4);
      await runUntilSettled(clock, device.write(20, data));
      await runUntilSettled(clock, device.flush());
      sameBytes(await runUntilSettled(clock, device.read(20, 4)), data);
    },
  },
  {
    name: 'settles every request through the clock, never on the spot',
    run: async ({ device, clock }) => {
      let settled = false;
      const op = device.write(0, pattern(6, device.sectorSize)).then(() => (settled = true));
      await turns();
      expect(settled).toBe(false);
      await runUntilSettled(clock, op);
      expect(settled).toBe(true);
    },
  },
];

const DURABILITY: ContractCase[] = [
  {
    name: 'makes flushed writes durable: they survive a power cut',
    needs: 'powerCycle',
    run: async (s) => {
      const ss = s.device.sectorSize;
      const data = pattern(9, 6 * ss);
      await runUntilSettled(s.clock, s.device.write(20, data));
      await runUntilSettled(s.clock, s.device.write(s.device.sectorCount - 2, data.subarray(0, 2 * ss)));
      await runUntilSettled(s.clock, s.device.flush());
      const after = s.powerCycle!();
      sameBytes(await runUntilSettled(s.clock, after.read(20, 6)), data);
      sameBytes(await runUntilSettled(s.clock, after.read(after.sectorCount - 2, 2)), data.subarray(0, 2 * ss));
    },
  },
  {
    name: 'flush reaches the storage underneath: at least one durability barrier (fsync) per flush',
    needs: 'barriers',
    run: async (s) => {
      await runUntilSettled(s.clock, s.device.write(3, pattern(10, 2 * s.device.sectorSize)));
      for (let round = 1; round <= 2; round++) {
        const before = s.barriers!();
        await runUntilSettled(s.clock, s.device.flush());
        expect(s.barriers!() - before, `barriers reaching the storage in flush ${round}`).toBeGreaterThanOrEqual(1);
      }
    },
  },
];

const ERRORS: ContractCase[] = [
  {
    name: 'rejects requests outside the device with OutOfRangeError',
    run: async ({ device, clock }) => {
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
    },
  },
  {
    name: 'rejects writes that are not whole sectors with ML_ERR_DISK_ALIGNMENT',
    run: async ({ device, clock }) => {
      for (const length of [0, 1, device.sectorSize - 1, device.sectorSize + 1]) {
        const error = await rejectionOf(clock, device.write(0, new Uint8Array(length)));
        expect(error).toBeInstanceOf(OutOfRangeError);
        expect((error as OutOfRangeError).code).toBe('ML_ERR_DISK_ALIGNMENT');
      }
    },
  },
  {
    name: 'reports a media error with its LBA, and only for requests that touch it',
    needs: 'mediaErrors',
    run: async (s) => {
      const { device, clock } = s;
      await runUntilSettled(clock, device.write(30, pattern(7, device.sectorSize * 8)));
      s.injectMediaError!(33);
      const error = await rejectionOf(clock, device.read(30, 8));
      expect(error).toBeInstanceOf(MediaError);
      expect((error as MediaError).lba).toBe(33);
      expect((error as MediaError).code).toBe('ML_ERR_DISK_MEDIA');
      sameBytes(await runUntilSettled(clock, device.read(30, 3)), pattern(7, device.sectorSize * 8).subarray(0, 3 * device.sectorSize));
    },
  },
  {
    name: 'rejects everything with DeviceFailedError once the device has failed',
    needs: 'deviceFailure',
    run: async (s) => {
      const { device, clock } = s;
      await runUntilSettled(clock, device.write(0, pattern(8, device.sectorSize)));
      s.failDevice!();
      const ops = [() => device.read(0, 1), () => device.write(0, new Uint8Array(device.sectorSize)), () => device.flush()];
      for (const op of ops) expect(await rejectionOf(clock, op())).toBeInstanceOf(DeviceFailedError);
    },
  },
];

const CONCURRENCY: ContractCase[] = [
  {
    name: 'serves many requests in flight together',
    run: async ({ device, clock }) => {
      const ss = device.sectorSize;
      const writes = Array.from({ length: 16 }, (_, i) => device.write(i * 3, pattern(100 + i, 2 * ss)));
      await runUntilSettled(clock, Promise.all(writes));
      const reads = Array.from({ length: 16 }, (_, i) => device.read(i * 3, 2));
      const got = await runUntilSettled(clock, Promise.all(reads));
      got.forEach((data, i) => sameBytes(data, pattern(100 + i, 2 * ss), `read ${i}`));
    },
  },
  {
    name: 'leaves each sector holding one of the overlapping writes in flight together, never a mix',
    run: async ({ device, clock }) => {
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
    },
  },
];

export const CONTRACT_CASES: readonly ContractCase[] = [...GEOMETRY_AND_DATA, ...DURABILITY, ...ERRORS, ...CONCURRENCY];
