import type { BlockDevice } from '../../firmware/ports/block-device.ts';

/** A device that can lose power: what it had not made durable is lost or torn, its requests in flight are cut off. */
export interface PowerCuttable {
  powerCut(): void;
}

export function canPowerCut(device: BlockDevice): device is BlockDevice & PowerCuttable {
  return typeof (device as Partial<PowerCuttable>).powerCut === 'function';
}

/** Cuts the power of `device` if it has any notion of it (a file disk has none: the OS holds its cache). */
export function powerCutIfAble(device: BlockDevice): void {
  if (canPowerCut(device)) device.powerCut();
}
