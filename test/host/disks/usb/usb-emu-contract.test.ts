import { afterAll, describe, expect, it } from 'vitest';
import { MediaError } from '../../../../firmware/ports/block-device.ts';
import { USB_EMU_FAULT_KINDS, type UsbEmuFaultKind } from '../../../../host/disks/usb/emulated/faults.ts';
import { CONTRACT_CASES, blockDeviceContract, runContractCase, type ContractFactory } from '../contract.ts';
import { emulatedRig, openDriver } from './usb-fixtures.ts';

/**
 * The driver on the emulated device passes the BlockDevice contract (docs/conventions.md 4), clean
 * and under each fault the device can commit. Every fault but `medium` must be invisible apart
 * from time; `medium` may fail a request, but only with a MediaError, never with wrong data.
 */

/** Faults struck per kind over every run of this file: a fault that never struck proved nothing. */
const struck = new Map<UsbEmuFaultKind, number>();
let seed = 1;

function factory(kind: UsbEmuFaultKind | null, perMillion: number): ContractFactory {
  return async ({ sectorSize, sectorCountMin }) => {
    const rig = emulatedRig({ sectorSize, sectorCount: sectorCountMin, seed: seed++, writeCacheSectors: 64, faults: kind === null ? {} : { [kind]: perMillion } });
    const disk = await openDriver(rig);
    return {
      device: disk,
      clock: rig.clock,
      injectMediaError: kind === 'medium' ? undefined : (lba) => rig.overlays[0]!.apply({ badSectors: [lba] }),
      failDevice: () => rig.device.unplug({ forever: true }),
      powerCycle: () => {
        rig.media[0]!.powerCut();
        rig.device.unplug();
        return disk;
      },
      close: async () => {
        if (kind !== null) struck.set(kind, (struck.get(kind) ?? 0) + rig.device.faults.injected[kind]);
        await disk.close();
      },
    };
  };
}

const ALL = { mediaErrors: true, deviceFailure: true, powerCycle: true };

blockDeviceContract('usb-emu (driver over the emulated USB mass-storage device)', factory(null, 0), { can: ALL });

/** Per-command chances: high enough that every contract case meets the fault, low enough that 8 attempts always suffice. */
const CHANCE: Record<UsbEmuFaultKind, number> = {
  'stall-in': 150_000, 'stall-out': 150_000, short: 150_000, zlp: 150_000, 'csw-signature': 100_000, 'csw-tag': 100_000,
  phase: 100_000, medium: 100_000, 'unit-attention': 100_000, disconnect: 30_000,
};

for (const kind of USB_EMU_FAULT_KINDS.filter((k) => k !== 'medium')) {
  blockDeviceContract(`usb-emu with faults=${kind}@${CHANCE[kind] / 1e6}`, factory(kind, CHANCE[kind]), { can: ALL, sectorSizes: [512] });
}

describe('usb-emu with faults=medium', () => {
  for (const c of CONTRACT_CASES.filter((x) => x.needs === undefined || x.needs === 'deviceFailure' || x.needs === 'powerCycle')) {
    it(`${c.name}: passes, or fails with a MediaError only`, async () => {
      try {
        await runContractCase(c, factory('medium', 300_000), 512);
      } catch (error) {
        expect(error, 'a medium fault may only surface as a MediaError').toBeInstanceOf(MediaError);
      }
    });
  }
});

describe('every fault kind', () => {
  it('struck during the contract runs above', () => {
    for (const kind of USB_EMU_FAULT_KINDS) expect({ kind, struck: (struck.get(kind) ?? 0) > 0 }).toEqual({ kind, struck: true });
  });
});

afterAll(() => {
  struck.clear();
});
