import { afterEach, describe, expect, it, vi } from 'vitest';
import { BulkOnlyTransport } from '../../../../host/disks/usb/bot-transport.ts';
import type { UsbEmuFaultPlan } from '../../../../host/disks/usb/emulated/faults.ts';
import type { UsbMassStorageDisk } from '../../../../host/disks/usb/usb-disk.ts';
import type { UsbSession } from '../../../../host/disks/usb/usb-session.ts';
import { contractCase, runContractCase, type ContractFactory } from '../contract.ts';
import { emulatedRig, openDriver } from './usb-fixtures.ts';

/**
 * The emulated device's faults must be able to catch a driver (docs/conventions.md 10): each
 * driver below is broken in one way a real driver can be, and fails the contract under the fault
 * that exposes it, while passing without that fault. The same case then passes with the real driver.
 */
type Breaker = (disk: UsbMassStorageDisk) => void;

/** Takes a READ that claims success with data missing, as a driver that ignores the residue does. */
const ignoresResidue: Breaker = (disk) => {
  const session = (disk as unknown as { session: UsbSession }).session;
  const run = session.run.bind(session);
  session.run = (cmd, request) => run(cmd, request, false);
};

function factory(faults: UsbEmuFaultPlan, breaker: Breaker | null): ContractFactory {
  return async ({ sectorSize, sectorCountMin }) => {
    const rig = emulatedRig({ sectorSize, sectorCount: sectorCountMin, faults, seed: 17 });
    const disk = await openDriver(rig);
    breaker?.(disk);
    return { device: disk, clock: rig.clock, close: () => disk.close() };
  };
}

const readBack = contractCase('returns what was written (read-after-write), at the ends and across the middle');

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the emulated device\'s faults catch broken drivers', () => {
  it('a driver that ignores the residue returns short reads as data under faults=short, and the contract says so', async () => {
    await expect(runContractCase(readBack, factory({ short: 500_000 }, ignoresResidue), 512)).rejects.toThrow(/first difference at byte|bytes, expected/);
    await expect(runContractCase(readBack, factory({}, ignoresResidue), 512)).resolves.toBeUndefined();
    await expect(runContractCase(readBack, factory({ short: 500_000 }, null), 512)).resolves.toBeUndefined();
  });

  it('a driver whose reset recovery does not clear the halts is left with a stalled device under faults=phase', async () => {
    const real = BulkOnlyTransport.prototype.resetRecovery;
    vi.spyOn(BulkOnlyTransport.prototype, 'resetRecovery').mockImplementation(async function (this: BulkOnlyTransport) {
      const device = (this as unknown as { device: { controlTransferOut: (s: object) => Promise<unknown> } }).device;
      await device.controlTransferOut({ requestType: 'class', recipient: 'interface', request: 0xff, value: 0, index: 0 }); // the reset, and nothing after it
    });
    // An internal error leaves both pipes stalled: the reset alone never frees them, and the driver gives up.
    await expect(runContractCase(readBack, factory({ phase: 300_000 }, null), 512)).rejects.toThrow(/gave up|DeviceFailed|failed/i);
    vi.restoreAllMocks();
    expect(BulkOnlyTransport.prototype.resetRecovery).toBe(real);
    await expect(runContractCase(readBack, factory({ phase: 300_000 }, null), 512)).resolves.toBeUndefined();
  });
});
