import { createWriteStream, type WriteStream } from 'node:fs';
import { Command, Option } from 'commander';
import { LINK_FAULT_SYNTAX, parseLinkFaults, refuseCrashes, type LinkFaultPlan } from '../faults/link-fault-plan.ts';
import {
  PROXY_LIMITS, ProxyError, formatHostPort, parseListenAddress, parseTargetAddress, startSerialFaultProxy, startTcpFaultProxy,
  type FaultProxy, type HostPort, type ProxyEventSink, type ProxyStats,
} from '../faults/proxy/index.ts';
import { ptyPair, type PtyPair } from '../../host/disks/serial-disk/socat-pty.ts';
import { SERIAL_BAUD_DEFAULT, SERIAL_BAUD_MAX, SERIAL_BAUD_MIN } from '../../host/disks/volume-spec.ts';
import type { Logger } from '../log.ts';
import { UsageError } from '../plan-error.ts';
import { integer, plan } from './parse.ts';

interface ProxyFlags {
  listen?: HostPort;
  to?: HostPort;
  serial?: [string, string];
  ptys?: string;
  baud: number;
  pace: boolean;
  faults: LinkFaultPlan;
  seed: number;
  names: { a: string; b: string };
  events?: string;
  json: boolean;
}

const NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,31}$/;

function parseNames(text: string): { a: string; b: string } {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.length !== 2 || !parts.every((p) => NAME.test(p)) || parts[0] === parts[1]) {
    throw new UsageError(`--names takes two different controller names, the connect side's then the listen side's (e.g. A,B), got "${text}"`);
  }
  return { a: parts[0]!, b: parts[1]! };
}

function parseSerialPaths(text: string): [string, string] {
  const i = text.indexOf(',');
  const [a, b] = i < 0 ? ['', ''] : [text.slice(0, i).trim(), text.slice(i + 1).trim()];
  if (a === '' || b === '') throw new UsageError(`--serial takes the proxy's ends of two PTY pairs, A's then B's: PATH_A,PATH_B; got "${text}"`);
  return [a, b];
}

const HELP = {
  command: 'a fault proxy between two controllers on real links: TCP with UDP heartbeats, or serial between two PTY pairs; '
    + 'applies --faults, seeded; runs until SIGINT/SIGTERM, then prints its stats',
  listen: 'where the connect side dials (TCP) and sends heartbeats (UDP, same port); loopback only; port 0 picks a free one',
  to: 'the real listener (its TCP port, and the same UDP port for heartbeats)',
  serial: 'relay between two PTY pairs: the proxy\'s end of the pair controller A opens, then of B\'s',
  ptys: 'make the two PTY pairs in this directory (with socat) and relay between them; '
    + 'prints the path each controller opens',
  seed: 'the seed: the same seed makes the same decision for the same frame of the same channel',
  names: 'the controllers\' names as oneway= items name them: the connect side\'s, then the listen side\'s',
  events: 'write every fault committed as JSON lines (the simulator trace\'s link.fault events)',
};

/**
 * `mirrorlab proxy`: the fault proxy for real links (docs/fault-proxy.md), until SIGINT or SIGTERM;
 * then its stats on stdout. Either `--listen` and `--to` (TCP and UDP heartbeats on the same port
 * number) or `--serial PATH_A,PATH_B` (a relay between two PTY pairs).
 */
export function proxyCommand(log: Logger, exit: (code: number) => void): Command {
  return new Command('proxy')
    .description(HELP.command)
    .addOption(new Option('--listen <host:port>', HELP.listen).argParser(plan(parseListenAddress)))
    .addOption(new Option('--to <host:port>', HELP.to).argParser(plan(parseTargetAddress)))
    .addOption(new Option('--serial <pathA,pathB>', HELP.serial).argParser(plan(parseSerialPaths)))
    .option('--ptys <dir>', HELP.ptys)
    .option('--baud <n>', 'serial: the lines\' rate', integer('--baud', SERIAL_BAUD_MIN, SERIAL_BAUD_MAX), SERIAL_BAUD_DEFAULT)
    .option('--pace', 'serial: pace each direction to the baud rate (a PTY ignores it)', false)
    .addOption(new Option('--faults <plan>', `link faults:\n${LINK_FAULT_SYNTAX}`).argParser(plan((text) => refuseCrashes(parseLinkFaults(text), 'the fault proxy'))).default(parseLinkFaults('none'), 'none'))
    .option('--seed <n>', HELP.seed, integer('--seed', 0, Number.MAX_SAFE_INTEGER), 1)
    .addOption(new Option('--names <a,b>', HELP.names).argParser(plan(parseNames)).default({ a: 'A', b: 'B' }, 'A,B'))
    .option('--events <file>', HELP.events)
    .option('--json', 'print the stats on exit as one JSON document', false)
    .action(async (flags: ProxyFlags) => {
      checkShape(flags);
      const events = flags.events === undefined ? null : await openEvents(flags.events);
      const ptys = flags.ptys === undefined ? null : await makePtys(flags.ptys).catch(async (error: unknown) => {
        await events?.close();
        throw error;
      });
      let proxy: FaultProxy;
      try {
        proxy = await start(ptys === null ? flags : { ...flags, serial: ptys.inner }, log, events?.sink);
      } catch (error) {
        await events?.close();
        await ptys?.stop();
        throw error;
      }
      const where = proxy.address === null
        ? `relaying ${proxy.description}`
        : `listening ${formatHostPort(proxy.address)} -> ${formatHostPort(flags.to!)}`;
      process.stdout.write(`${where}\n`);
      if (ptys !== null) process.stdout.write(`controller A opens ${ptys.outer[0]}\ncontroller B opens ${ptys.outer[1]}\n`);
      process.stderr.write(`mirrorlab proxy: ${proxy.description}, seed ${flags.seed} (Ctrl-C to stop)\n`);
      const signal = await untilSignal();
      await proxy.stop();
      await ptys?.stop();
      await events?.close();
      const stats = proxy.stats();
      log.info({ signal }, 'fault proxy stopped');
      process.stdout.write(flags.json ? `${JSON.stringify(stats, null, 2)}\n` : renderStats(stats));
      exit(0);
    });
}

/** Resolves with the name of the first SIGINT or SIGTERM, and stops listening for them. */
function untilSignal(): Promise<string> {
  return new Promise<string>((resolve) => {
    const stop = (name: string): void => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(name);
    };
    const onInt = (): void => stop('SIGINT');
    const onTerm = (): void => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
}

const SHAPES = '--listen 127.0.0.1:PORT and --to HOST:PORT (TCP and UDP), --serial PATH_A,PATH_B, or --ptys DIR';

function checkShape(flags: ProxyFlags): void {
  const tcp = flags.listen !== undefined || flags.to !== undefined;
  const given = [tcp, flags.serial !== undefined, flags.ptys !== undefined].filter(Boolean).length;
  if (given > 1) throw new UsageError(`mirrorlab proxy: give one of ${SHAPES}, not several`);
  if (given === 0) throw new UsageError(`mirrorlab proxy: give ${SHAPES}`);
  if (flags.listen === undefined || flags.to === undefined) {
    if (tcp) throw new UsageError(`mirrorlab proxy: --listen and --to go together; ${flags.listen === undefined ? '--listen' : '--to'} is missing`);
  }
}

function start(flags: ProxyFlags, log: Logger, onEvent: ProxyEventSink | undefined): Promise<FaultProxy> {
  const common = { plan: flags.faults, seed: flags.seed, names: flags.names, logger: log, onEvent };
  if (flags.serial !== undefined) {
    return startSerialFaultProxy({ ...common, pathA: flags.serial[0], pathB: flags.serial[1], baud: flags.baud, paceToBaud: flags.pace });
  }
  return startTcpFaultProxy({ ...common, listen: flags.listen!, to: flags.to! });
}

/** The events file: opened (or refused, exit 2) before the proxy starts; a writer whose backlog is bounded. */
async function openEvents(path: string): Promise<{ sink: ProxyEventSink; close: () => Promise<void> }> {
  const stream: WriteStream = createWriteStream(path, { flags: 'w' });
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', (error) => reject(new ProxyError('ML_ERR_PROXY_EVENTS', `--events: cannot write ${path}: ${error.message}`)));
  });
  let failed: Error | null = null;
  stream.on('error', (error) => (failed = error));
  const sink: ProxyEventSink = (event) => {
    if (failed !== null || stream.writableLength > PROXY_LIMITS.eventsQueueBytesMax) return false;
    stream.write(`${JSON.stringify(event)}\n`);
    return true;
  };
  const close = (): Promise<void> => new Promise((resolve) => {
    if (stream.closed || failed !== null) resolve();
    else stream.end(() => resolve());
  });
  return { sink, close };
}

/** The stats as a few lines a person reads: per direction, then connections, holes and events. */
export function renderStats(s: ProxyStats): string {
  const lines = [`fault proxy (${s.link}), seed ${s.seed}, faults ${s.faults}, ran ${(s.uptimeMs / 1000).toFixed(1)} s`];
  for (const [dir, d] of Object.entries(s.directions)) {
    const t = d.total;
    lines.push(`  ${dir}: ${t.framesSeen} frames seen, ${t.framesForwarded} forwarded; dropped ${t.framesDropped}, `
      + `corrupted ${t.framesCorrupted}, duplicated ${t.framesDuplicated}, reordered ${t.framesReordered}, delayed ${t.framesDelayed}, `
      + `heartbeats lost ${t.heartbeatsLost}; swallowed by holes ${t.framesSwallowed} frames (${t.bytesSwallowed} bytes); `
      + `noise ${t.noiseBytes} bytes; ${t.bytesIn} bytes in, ${t.bytesOut} out`);
    if (t.framesDroppedQueueFull + t.reorderLimitHits + t.queuePauses > 0) {
      lines.push(`    limits reached: ${t.framesDroppedQueueFull} frames dropped on a full pipe, ${t.reorderLimitHits} reorders not done, `
        + `${t.queuePauses} source pauses`);
    }
  }
  const c = s.connections;
  if (s.link === 'tcp') {
    lines.push(`  connections: ${c.accepted} accepted, ${c.open} open, ${c.refused} refused, ${c.resets} reset by the plan, `
      + `${c.upstreamFailures} could not reach the listener, ${c.closesSwallowed} closes lost in holes, ${c.orphansReset} orphans reset`);
  }
  const h = s.holes;
  lines.push(`  holes: ${h.partitions} partitions, ${h.silentCuts} silent cuts, ${h.onewayCuts} one-way cuts, ${h.flapCycles} flap cycles, `
    + `${h.bandwidthChanges} bandwidth changes`);
  const dropped = s.events.dropped > 0 ? `, ${s.events.dropped} not written (the events file fell behind)` : '';
  lines.push(`  events: ${s.events.emitted} emitted${dropped}`);
  return `${lines.join('\n')}\n`;
}

/**
 * `--ptys DIR`: two socat PTY pairs, `DIR/proxy-a-{a,b}` and `DIR/proxy-b-{a,b}`; the proxy holds
 * the inner ends, the controllers open the outer ones. Stopped (socat ended) with the proxy.
 */
interface MadePtys {
  /** The proxy's ends: of pair 1, then of pair 2. */
  inner: [string, string];
  /** The controllers' ends: A's (pair 1), then B's (pair 2). */
  outer: [string, string];
  stop: () => Promise<void>;
}

async function makePtys(dir: string): Promise<MadePtys> {
  const made: PtyPair[] = [];
  const stop = async (): Promise<void> => void (await Promise.all(made.map((p) => p.stop())));
  try {
    made.push(await ptyPair(dir, 'proxy-a'));
    made.push(await ptyPair(dir, 'proxy-b'));
  } catch (error) {
    await stop();
    throw new ProxyError('ML_ERR_PROXY_SERIAL', `--ptys: cannot make the PTY pairs in ${dir}: ${(error as Error).message}`);
  }
  const [one, two] = made as [PtyPair, PtyPair];
  return { inner: [one.b, two.a], outer: [one.a, two.b], stop };
}
