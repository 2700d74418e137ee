import { blockDeviceContract } from '../contract.ts';
import { memoryLine } from './memory-line.ts';
import { serialFactory } from './serial-fixtures.ts';

const ALL = { mediaErrors: true, deviceFailure: true, powerCycle: true };
const none = async (): Promise<void> => {};

blockDeviceContract('serial-disk over an in-memory line', serialFactory(async () => [...memoryLine(), none]), { can: ALL });

/**
 * Line noise: about one byte in 20,000 flipped and one in 20,000 lost, both ways. A 4 KiB request
 * then fails its CRC about a third of the time; the protocol must turn all of it into retries.
 */
blockDeviceContract('serial-disk over a noisy in-memory line (bytes flipped and lost)',
  serialFactory(async () => [...memoryLine({ flipPerMillion: 50, dropPerMillion: 50, seed: 3 }), none]), { can: ALL, sectorSizes: [512] });
