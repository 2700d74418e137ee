import { ControlClient } from '../../host/runtime/control-client.ts';
import type { TargetControl } from './cases.ts';

/** How long a read or a lock request to the target's control socket may take (ms). */
const CONTROL_REQUEST_MS = 10_000;

/**
 * The target's control socket, when the target is `mirrorlab controller` (docs/conformance.md 5):
 * the battery reads the target's copy back through it, and takes a local lock there so that a
 * mirror lock is refused. A socket nobody answers on is `ML_ERR_CONTROL_UNREACHABLE` (exit 2).
 */
export async function connectTargetControl(path: string): Promise<{ control: TargetControl; close(): Promise<void> }> {
  const client = await ControlClient.connect(path, { requestTimeoutMs: CONTROL_REQUEST_MS });
  return {
    control: {
      read: (lun, lba, count) => client.read(lun, lba, count),
      holdLock: (lun, lba, count, holdMs) => client.holdLock(lun, lba, count, holdMs),
    },
    close: () => client.close(),
  };
}
