import { once } from 'node:events';
import { Command, Option } from 'commander';
import { RealClock } from '../../host/clock/real.ts';
import { BLOCK_PAYLOAD_BYTES_MAX } from '../../host/disks/serial-disk/block-frames.ts';
import { BLOCK_SERVER_REQUESTS_IN_FLIGHT_DEFAULT, BLOCK_SERVER_TRANSFER_BYTES_DEFAULT, BlockServer } from '../../host/disks/serial-disk/block-server.ts';
import { openSerialLine } from '../../host/disks/serial-disk/line.ts';
import {
  SERIAL_BAUD_DEFAULT, SERIAL_BAUD_MAX, SERIAL_BAUD_MIN, VOLUME_SPEC_HELP, buildVolume, formatVolumeSpec, parseVolumeSpec, withKernelDriverDetach, type VolumeSpec,
} from '../../host/disks/volume-spec.ts';
import type { Logger } from '../log.ts';
import { UsageError } from '../plan-error.ts';
import type { SerialDiskReady } from '../../host/runtime/spawn.ts';
import { integer, plan } from './parse.ts';

interface SerialDiskFlags {
  port: string;
  volume: VolumeSpec;
  baud: number;
  transferBytes: number;
  requestsInFlight: number;
  detachKernelDriver: boolean;
}

/**
 * `mirrorlab serial-disk --port PATH --volume SPEC`: the board's side of the serial block protocol
 * (docs/usb-serial-targets.md), serving any volume on a serial port until interrupted or until the
 * line closes. What a board's firmware does; what `serial-disk:PATH` volumes talk to.
 */
export function serialDiskCommand(log: Logger, exit: (code: number) => void): Command {
  return new Command('serial-disk')
    .description('serve a volume over a serial port in the serial block protocol (the stand-in for a board); a serial-disk:PATH volume at the other end uses it')
    .requiredOption('--port <path>', 'the serial port (a tty, e.g. /dev/ttyUSB0, or one end of a PTY pair)')
    .addOption(new Option('--volume <spec>', `the volume to serve; ${VOLUME_SPEC_HELP}`).argParser(plan(parseVolumeSpec)).makeOptionMandatory())
    .option('--baud <n>', `the line's rate (both ends must agree; a PTY ignores it)`, integer('--baud', SERIAL_BAUD_MIN, SERIAL_BAUD_MAX), SERIAL_BAUD_DEFAULT)
    .option('--transfer-bytes <n>', 'largest READ or WRITE taken in one frame (a multiple of the sector size)',
      integer('--transfer-bytes', 512, BLOCK_PAYLOAD_BYTES_MAX), BLOCK_SERVER_TRANSFER_BYTES_DEFAULT)
    .option('--requests-in-flight <n>', 'requests a host may have outstanding', integer('--requests-in-flight', 1, 256), BLOCK_SERVER_REQUESTS_IN_FLIGHT_DEFAULT)
    .option('--detach-kernel-driver', 'a usb: volume may be taken from the kernel driver holding it (never from a mounted disk)', false)
    .action(async (flags: SerialDiskFlags) => {
      const spec = flags.detachKernelDriver ? withKernelDriverDetach(flags.volume) : flags.volume;
      if (flags.transferBytes % spec.sectorSize !== 0) throw new UsageError(`--transfer-bytes ${flags.transferBytes} is not a multiple of the volume's ${spec.sectorSize}-byte sector`);
      const volume = await buildVolume(spec, { name: formatVolumeSpec(spec), clock: new RealClock(), faultOverlay: false });
      try {
        const line = await openSerialLine(flags.port, flags.baud);
        const closed = new Promise<Error | undefined>((resolve) => line.onClose(resolve));
        const server = new BlockServer({
          line, device: volume.device, name: formatVolumeSpec(spec), baud: flags.baud, transferBytesMax: flags.transferBytes, requestsInFlightMax: flags.requestsInFlight,
          onEvent: (e) => (e.kind === 'device-error' ? log.warn(e, 'device error') : log.debug(e, 'protocol event')),
        });
        const ready: SerialDiskReady = {
          ready: true, port: flags.port, volume: formatVolumeSpec(spec), sectors: volume.device.sectorCount, sectorSize: volume.device.sectorSize, baud: flags.baud, pid: process.pid,
        };
        log.info(ready, 'serving');
        // The one line on stdout: a program that starts the board stand-in (the rack) waits for it.
        process.stdout.write(`${JSON.stringify(ready)}\n`);
        const why = await Promise.race([
          closed.then((e) => `the line closed${e ? `: ${e.message}` : ''}`),
          once(process, 'SIGINT').then(() => 'SIGINT'),
          once(process, 'SIGTERM').then(() => 'SIGTERM'),
        ]);
        await server.stop();
        await line.close();
        log.info({ why, counters: server.counters }, 'stopped');
      } finally {
        await volume.close();
      }
      exit(0);
    });
}
