import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ptyPair, type PtyPair } from '../../host/disks/serial-disk/socat-pty.ts';
import { formatBytes } from '../../host/disks/volume-spec.ts';
import { ControlClient } from '../../host/runtime/control-client.ts';
import {
  ControllerSpawnError, SerialDiskSpawnError, startControllerProcess, startSerialDiskProcess,
  type ChildWithReadyLine, type ControllerExit, type ControllerProcess, type SerialDiskReady,
} from '../../host/runtime/spawn.ts';
import type { ControllerStatus } from '../../host/runtime/status.ts';
import type { Baseline } from '../checker/content-checks.ts';
import { ConsistencyChecker } from '../checker/consistency-checker.ts';
import type { Violation } from '../checker/violation.ts';
import { describeLinkFaultCounters } from '../faults/link-fault-injector.ts';
import { formatLinkFaults } from '../faults/link-fault-plan.ts';
import { mergeTelemetryFiles } from '../trace/merge.ts';
import type { TraceEvent } from '../trace/events.ts';
import { LatencyRecorder } from '../workload/latency.ts';
import { judgeRack, type JudgedCopy, type JudgedMirror } from './judge.ts';
import { RACK_SECTOR_BYTES, rackReproduceCommand, resolveRack, type RackOptions, type ResolvedRack } from './options.ts';
import { RACK_PTY_BAUD, writeRackConfigs, type RackBoardPorts, type RackNode, type RackWiring } from './rack-configs.ts';
import { checkCopiesBeforeRun, checkGeometry, readCopies } from './rack-copies.ts';
import { RackError } from './rack-error.ts';
import { RackHost } from './rack-host.ts';
import { faultCountersOf, faultsTotal, RackProxy, type ProxyWiring } from './rack-proxy.ts';
import { freePort } from './ports.ts';
import type { RackProcessReport, RackReport } from './report.ts';

export { RackError };

export interface RackProgress {
  elapsedS: number;
  phase: 'starting' | 'writing' | 'healing' | 'draining' | 'reading' | 'stopping' | 'judging';
  writesAcked: number;
  faultsInjected: number;
  /** The source's view of its link (`up`, `down`, ...), or `unknown` while it cannot be asked. */
  link: string;
}

export interface RackDeps {
  /**
   * The module each controller process runs (host/runtime/spawn.ts), and arguments before
   * `controller`: tests pass one under `test/` that plants a firmware bug (docs/conventions.md 15).
   * No flag of `rack run` reaches these.
   */
  entryModule?: string;
  entryArgs?: Partial<Record<'A' | 'B', string[]>>;
  onProgress?: (p: RackProgress) => void;
  /** Aborting stops the run (Ctrl-C): everything is torn down and {@link runRack} rejects with ML_ERR_RACK_INTERRUPTED. */
  signal?: AbortSignal;
  /** Environment of the controller processes (MIRRORLAB_LOG...). */
  env?: Record<string, string>;
}

/** How long the link may take to come up after the controllers start (ms). */
const LINK_UP_MS = 20_000;
/** How long a killed controller's host waits for it to come back (ms). */
const RECONNECT_MS = 30_000;
const POLL_MS = 100;
const PROGRESS_MS = 250;
/** A controller's clean stop gets this long before it is killed (ms). */
const STOP_MS = 20_000;
/** After a killed controller is back, the hosts write at least this long more (s), so the restarted pair is exercised. */
const WRITE_AFTER_RESTART_S = 1.5;

/**
 * One rack run (docs/rack.md): two controller processes on file images, the fault proxy between
 * them, hosts writing self-describing data through the control sockets, an optional SIGKILL and
 * restart; then the heal, a bounded drain, a clean stop, and the judgement from the telemetry and
 * the images. Every child process, proxy, PTY pair and (unless kept) file is gone when it returns
 * or throws. Throws {@link RackError} when the rack could not be run.
 */
export async function runRack(opts: RackOptions, deps: RackDeps = {}): Promise<RackReport> {
  const o = resolveRack(opts);
  const rack = new Rack(o, deps);
  try {
    const report = await rack.run();
    await rack.teardown({ keepFiles: o.keep || report.verdict !== 'consistent' });
    return { ...report, dir: o.keep || report.verdict !== 'consistent' ? rack.dir : null };
  } catch (error) {
    // Could not run, or interrupted: nothing to judge, so nothing is kept unless asked.
    await rack.teardown({ keepFiles: o.keep });
    throw asRackError(error, o.keep ? rack.dir : null);
  }
}

function asRackError(error: unknown, dir: string | null): unknown {
  if (error instanceof ControllerSpawnError || error instanceof SerialDiskSpawnError) {
    const lines = error.message.split('\n');
    const why = lines.slice(1).reverse().find((l) => /^error: /.test(l.trim())) ?? lines.at(-1) ?? '';
    const detail = lines.length > 1 ? ` (${why.trim().slice(0, 300)})` : '';
    return new RackError('ML_ERR_RACK_START', `${lines[0]}${detail}${dir ? `; its files are in ${dir}` : ''}`);
  }
  return error;
}

/** A running controller of the rack, across its restarts. */
interface Member {
  node: RackNode;
  proc: ControllerProcess | null;
  sessions: number[];
  pids: number[];
  exits: ControllerExit[];
}

class Rack {
  dir: string | null = null;
  private readonly started = performance.now();
  private t0 = 0;
  private ptys: PtyPair[] = [];
  /** Board stand-ins serving serial-disk copies, one per such copy. */
  private boards: ChildWithReadyLine<SerialDiskReady>[] = [];
  /** Per LUN, what its untouched sectors held before the run when a device's copy was not blank (read in {@link checkCopiesBeforeRun}). */
  private baselines = new Map<number, Baseline>();
  private proxy: RackProxy | null = null;
  private members: Member[] = [];
  private hosts: RackHost[] = [];
  private phase: RackProgress['phase'] = 'starting';
  private linkState = 'unknown';
  private killTimer: ReturnType<typeof setTimeout> | null = null;
  private killing: Promise<void> | null = null;
  /** When the killed controller was ready again (s into the run), null until then. */
  private restartedAtS: number | null = null;
  private readonly notes: string[] = [];
  /** Set once teardown begins: a kill's restart must not start a controller nobody will stop. */
  private closing = false;

  constructor(private readonly o: ResolvedRack, private readonly deps: RackDeps) {}

  async run(): Promise<RackReport> {
    const o = this.o;
    await this.makeDir();
    const wiring = await this.wire();
    const boards = await this.startBoards();
    const nodes = await writeRackConfigs(this.dir!, o, wiring.controllers, boards);
    this.members = nodes.map((node) => ({ node, proc: null, sessions: [], pids: [], exits: [] }));
    await this.startMembers();
    await checkGeometry(nodes, o);
    this.proxy = await RackProxy.start(wiring.proxy, o.plan, o.seed);
    this.t0 = performance.now();
    const ticker = this.deps.onProgress ? setInterval(() => this.progress(), PROGRESS_MS) : null;
    try {
      await this.waitFor('the link between A and B to come up', () => this.linkUp(), LINK_UP_MS, { failure: 'start' });
      this.baselines = await checkCopiesBeforeRun(nodes, o, this.dir!);
      this.phase = 'writing';
      this.armKill();
      await this.writeLoad(nodes);
      await this.killing;
      this.phase = 'healing';
      await this.proxy.heal();
      this.phase = 'draining';
      const drained = await this.drain();
      // Copies that are not image files are read through the control sockets while the controllers still serve them.
      this.phase = 'reading';
      const copies = await readCopies(nodes, this.dir!);
      this.phase = 'stopping';
      await this.stopAll();
      this.phase = 'judging';
      this.progress();
      return await this.judge(nodes, drained, copies);
    } finally {
      if (ticker) clearInterval(ticker);
    }
  }

  /** Stops whatever is still running, then removes the run's directory unless it is kept. */
  async teardown(o: { keepFiles: boolean }): Promise<void> {
    this.closing = true;
    if (this.killTimer) clearTimeout(this.killTimer);
    // A kill under way may be starting the controller again: wait for it, so that what it starts is stopped below.
    await this.killing?.catch(() => undefined);
    await Promise.allSettled(this.hosts.map((h) => h.close()));
    await Promise.allSettled(this.members.map(async (m) => {
      if (m.proc) m.exits.push(await m.proc.stop({ timeoutMs: 2_000 }));
      m.proc = null;
    }));
    await this.proxy?.stop().catch(() => undefined);
    await Promise.allSettled(this.boards.map((b) => b.stop({ timeoutMs: 2_000 })));
    await Promise.allSettled(this.ptys.map((p) => p.stop()));
    if (!o.keepFiles && this.dir !== null) await rm(this.dir, { recursive: true, force: true });
  }

  // ---- setting up ------------------------------------------------------------------------------------

  private async makeDir(): Promise<void> {
    const parent = this.o.dir ?? tmpdir();
    if (this.o.dir !== null) await mkdir(parent, { recursive: true });
    this.dir = await mkdtemp(join(parent, 'mirrorlab-rack-'));
  }

  /** TCP: free ports for B's listener and the proxy. Serial: two socat PTY pairs. */
  private async wire(): Promise<{ controllers: RackWiring; proxy: ProxyWiring }> {
    if (this.o.link === 'tcp') {
      const listenPort = await freePort();
      let proxyPort = await freePort();
      while (proxyPort === listenPort) proxyPort = await freePort();
      return { controllers: { link: 'tcp', listenPort, proxyPort }, proxy: { link: 'tcp', listenPort, proxyPort } };
    }
    const one = await this.pty('line-a', 'a serial rack');
    const two = await this.pty('line-b', 'a serial rack');
    return { controllers: { link: 'serial', pathA: one.a, pathB: two.b }, proxy: { link: 'serial', innerA: one.b, innerB: two.a } };
  }

  /** A socat PTY pair in the run's directory; socat missing is ML_ERR_RACK_SOCAT, naming what needs it. */
  private async pty(name: string, who: string): Promise<PtyPair> {
    try {
      const pair = await ptyPair(this.dir!, name);
      this.ptys.push(pair);
      return pair;
    } catch (error) {
      throw new RackError('ML_ERR_RACK_SOCAT', `${(error as Error).message}; ${who} needs socat (apt-get install socat)`);
    }
  }

  /**
   * For each side whose copies are `serial-disk` (docs/rack.md 7): per LUN a PTY pair, and on its far
   * end a board stand-in (`mirrorlab serial-disk`) serving a blank memory disk of the rack's size;
   * the controller gets the near end. All started before the controllers, so that they find a board
   * answering; stopped after them.
   */
  private async startBoards(): Promise<RackBoardPorts> {
    const ports: RackBoardPorts = {};
    const luns = this.o.bidirectional ? [0, 1] : [0];
    for (const [name, v] of [['A', this.o.sourceVolume], ['B', this.o.targetVolume]] as const) {
      if (v.kind !== 'serial-pty') continue;
      const byLun: Record<number, string> = {};
      for (const lun of luns) {
        const pair = await this.pty(`disk-${name.toLowerCase()}-lun${lun}`, 'a serial-disk copy');
        this.boards.push(await startSerialDiskProcess({
          port: pair.b, volume: `mem:${formatBytes(this.o.volumeBytes)}`, baud: RACK_PTY_BAUD, env: { MIRRORLAB_LOG: 'warn', ...this.deps.env },
        }));
        byLun[lun] = pair.a;
      }
      ports[name] = byLun;
    }
    return ports;
  }

  /** Both at once (each takes a second or more to load); if one fails, the other is stopped before the error goes on. */
  private async startMembers(): Promise<void> {
    const results = await Promise.allSettled(this.members.map((m) => this.startMember(m)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private async startMember(m: Member): Promise<void> {
    const entryArgs = this.deps.entryArgs?.[m.node.name];
    const proc = await startControllerProcess({
      configPath: m.node.configPath, env: { MIRRORLAB_LOG: 'warn', ...this.deps.env },
      ...(this.deps.entryModule === undefined ? {} : { entryModule: this.deps.entryModule }), ...(entryArgs === undefined ? {} : { entryArgs }),
    });
    m.proc = proc;
    m.sessions.push(proc.ready.session);
    m.pids.push(proc.pid);
  }

  // ---- the run ---------------------------------------------------------------------------------------

  private elapsedS(): number {
    return this.t0 === 0 ? 0 : (performance.now() - this.t0) / 1000;
  }

  private get aborted(): boolean {
    return this.deps.signal?.aborted === true;
  }

  private async writeLoad(nodes: readonly RackNode[]): Promise<void> {
    const o = this.o;
    const writers = o.bidirectional ? nodes : [nodes[0]!];
    this.hosts = writers.map((node, i) => new RackHost({
      node: node.name, controlPath: node.controlPath, writer: node.id, lun: i, writeBytes: o.writeBytes, queueDepth: o.queueDepth,
      seed: o.seed * 2 + i, writesMax: o.writes, reconnectMs: RECONNECT_MS,
    }));
    const restartedLongEnough = (): boolean =>
      o.kill === null || (this.restartedAtS !== null && this.elapsedS() >= this.restartedAtS + WRITE_AFTER_RESTART_S);
    const until = (): boolean => this.aborted || (this.elapsedS() >= o.durationS && restartedLongEnough());
    await Promise.all(this.hosts.map((h) => h.run(until)));
    if (this.aborted) throw new RackError('ML_ERR_RACK_INTERRUPTED', 'the rack run was interrupted; its processes were stopped');
    // A host that reached --writes early: the faults and the kill still run their course.
    while (!until()) await sleep(POLL_MS);
    if (this.aborted) throw new RackError('ML_ERR_RACK_INTERRUPTED', 'the rack run was interrupted; its processes were stopped');
  }

  /** SIGKILLs the chosen controller at its second, then starts it again on the same config and images. */
  private armKill(): void {
    if (this.o.kill === null || this.o.killAtS === null) return;
    const member = this.members[this.o.kill.side === 'source' ? 0 : 1]!;
    const delayMs = Math.max(0, this.o.killAtS * 1000 - (performance.now() - this.t0));
    this.killTimer = setTimeout(() => {
      this.killTimer = null;
      this.killing = (async () => {
        const proc = member.proc!;
        member.proc = null;
        proc.kill('SIGKILL');
        member.exits.push(await proc.exited);
        if (this.aborted || this.closing) return;
        await this.startMember(member);
        this.restartedAtS = this.elapsedS();
      })();
      // Seen by run() when it awaits the kill; until then a failure only ends the writing.
      this.killing.catch(() => {
        this.restartedAtS = -Infinity;
      });
    }, delayMs);
  }

  /** The pair has drained: on both, the link up, nothing in flight or in a log, every mirror in sync. */
  private async drain(): Promise<boolean> {
    const drainedAt = async (m: Member): Promise<boolean> => {
      const s = await this.statusOf(m);
      return s !== null && isDrained(s);
    };
    const both = async (): Promise<boolean> => (await drainedAt(this.members[0]!)) && drainedAt(this.members[1]!);
    return this.waitFor('the pair to drain', both, this.o.drainS * 1000, { failure: 'report' });
  }

  private async stopAll(): Promise<void> {
    await Promise.all(this.hosts.map((h) => h.close()));
    await Promise.all(this.members.map(async (m) => {
      const proc = m.proc;
      m.proc = null;
      if (proc) m.exits.push(await proc.stop({ timeoutMs: STOP_MS }));
    }));
    await this.proxy?.stop();
  }

  private async linkUp(): Promise<boolean> {
    const statuses = await Promise.all(this.members.map((m) => this.statusOf(m)));
    return statuses.every((s) => s !== null && s.peers[0]?.link.state === 'up');
  }

  /** The controller's status, or null while it cannot be asked (being restarted). */
  private async statusOf(m: Member): Promise<ControllerStatus | null> {
    let client: ControlClient | null = null;
    try {
      client = await ControlClient.connect(m.node.controlPath, { connectTimeoutMs: 1_000, requestTimeoutMs: 5_000 });
      return await client.status();
    } catch {
      return null;
    } finally {
      await client?.close().catch(() => undefined);
    }
  }

  /** Polls `check` until it holds; past `ms`, a start failure throws, a drain failure returns false. */
  private async waitFor(what: string, check: () => Promise<boolean>, ms: number, o: { failure: 'start' | 'report' }): Promise<boolean> {
    const deadline = performance.now() + ms;
    for (;;) {
      if (this.aborted) throw new RackError('ML_ERR_RACK_INTERRUPTED', 'the rack run was interrupted; its processes were stopped');
      if (await check()) return true;
      if (performance.now() > deadline) {
        if (o.failure === 'start') throw new RackError('ML_ERR_RACK_START', `timed out after ${ms / 1000} s waiting for ${what}`);
        return false;
      }
      await sleep(POLL_MS);
    }
  }

  private progress(): void {
    const acked = this.hosts.reduce((n, h) => n + h.acknowledged, 0);
    this.deps.onProgress?.({
      elapsedS: Math.round(this.elapsedS() * 10) / 10, phase: this.phase, writesAcked: acked,
      faultsInjected: faultsTotal(faultCountersOf(this.proxy?.stats() ?? null)), link: this.linkState,
    });
    if (this.phase === 'writing' || this.phase === 'draining') {
      void this.statusOf(this.members[0]!).then((s) => {
        this.linkState = s === null ? 'unknown' : (s.peers[0]?.link.state ?? 'unknown');
      });
    }
  }

  // ---- the verdict -----------------------------------------------------------------------------------

  private async judge(nodes: readonly RackNode[], drained: boolean, read: ReadonlyMap<string, JudgedCopy>): Promise<RackReport> {
    const o = this.o;
    const [a, b] = nodes as [RackNode, RackNode];
    const copy = (node: RackNode, lun: number): JudgedCopy => {
      const c = node.copies[lun]!;
      return c.image !== null ? { node: node.name, image: c.image, volume: c.asked, read: 'image file' } : read.get(`${node.name}/${lun}`)!;
    };
    const mirror = (lun: number, primary: RackNode, secondary: RackNode): JudgedMirror => ({
      lun, primary: { ...copy(primary, lun), id: primary.id }, secondary: copy(secondary, lun), ...(this.baselines.has(lun) ? { baseline: this.baselines.get(lun)! } : {}),
    });
    const mirrors: JudgedMirror[] = [mirror(0, a, b)];
    if (o.bidirectional) mirrors.push(mirror(1, b, a));
    const killed = o.kill === null ? null : o.kill.side === 'source' ? 'A' : 'B';
    const judgement = await judgeRack({
      telemetry: nodes.map((n) => ({ node: n.name, path: n.telemetryPath })), mirrors, sectorSize: RACK_SECTOR_BYTES, killed,
      uncertain: Object.fromEntries(this.hosts.map((h, i) => [nodes[i]!.name, h.uncertain])),
      recentAcked: Object.fromEntries(this.hosts.map((h, i) => [nodes[i]!.name, h.recentAcked])),
    });
    const violations: Violation[] = [...judgement.violations];
    if (!drained) violations.unshift(await this.livenessViolation(nodes));
    this.exitViolations(violations);
    for (const h of this.hosts) if (h.uncertainOverflow > 0) this.notes.push(`${h.uncertainOverflow} uncertain writes beyond the bound were not remembered`);
    const faults = faultCountersOf(this.proxy?.stats() ?? null);
    const hosts = this.hosts;
    return {
      seed: o.seed, link: o.link, mode: o.mode, onLockReject: o.onLockReject, bidirectional: o.bidirectional, faults: formatLinkFaults(o.plan),
      faultsDrawn: o.planDrawn, durationS: o.durationS, kill: o.kill === null ? null : { side: o.kill.side, atS: o.killAtS! },
      verdict: violations.length === 0 ? 'consistent' : 'inconsistent', violations, violationsDropped: judgement.violationsDropped, notes: this.notes,
      writes: {
        requested: o.writes === null ? null : o.writes * hosts.length, issued: sum(hosts, (h) => h.issued), acknowledged: sum(hosts, (h) => h.acknowledged),
        errors: sum(hosts, (h) => h.errors), uncertain: sum(hosts, (h) => h.uncertain.length),
      },
      latencyMs: LatencyRecorder.merged(hosts.map((h) => h.latency)),
      faultsInjected: faults, faultsDescribed: describeLinkFaultCounters(faults), proxy: this.proxy?.stats() ?? null,
      processes: this.members.map((m): RackProcessReport => ({
        name: m.node.name, pids: m.pids, sessions: m.sessions, restarts: m.sessions.length - 1, exits: m.exits,
      })),
      restarts: sum(this.members, (m) => m.sessions.length - 1),
      images: judgement.images, telemetry: judgement.telemetry, drained,
      wallMs: Math.round(performance.now() - this.started), reproduce: rackReproduceCommand(o), dir: this.dir,
    };
  }

  /** Not drained within the bound: what the telemetry shows still outstanding, as the simulator's checker names it. */
  private async livenessViolation(nodes: readonly RackNode[]): Promise<Violation> {
    const merged = await mergeTelemetryFiles(nodes.map((n) => n.telemetryPath));
    const checker = new ConsistencyChecker();
    for (const m of merged.events) {
      try {
        checker.emit(m.event as unknown as TraceEvent);
      } catch {
        // judged in full elsewhere; here only what is outstanding matters
      }
    }
    return checker.liveness(`the pair did not drain within ${this.o.drainS} s of the heal`, 0);
  }

  /** A controller that did not stop cleanly on SIGTERM: a firmware error (70) is a violation; another code, a note. */
  private exitViolations(violations: Violation[]): void {
    for (const m of this.members) {
      const last = m.exits.at(-1);
      if (!last || last.code === 0) continue;
      const what = last.signal ?? `code ${last.code}`;
      if (last.code === 70) {
        const message = `controller ${m.node.name} exited with code 70 (a firmware error) when stopped`;
        violations.push({ invariant: 'firmware-error', node: m.node.name, lun: 0, lba: 0, seq: 0, tMs: 0, message });
      } else {
        this.notes.push(`controller ${m.node.name} did not stop cleanly (${what})`);
      }
    }
  }
}

/** Drained, as the controller's status says it. */
export function isDrained(s: ControllerStatus): boolean {
  return s.hostWritesInFlight === 0 && s.peers.every((p) => p.link.state === 'up' && (p.source?.rollbackLog.entries ?? 0) === 0
    && p.target.commitLog.entries === 0 && p.mirrors.every((mm) => mm.state === 'in-sync'));
}

function sum<T>(items: readonly T[], f: (t: T) => number): number {
  return items.reduce((n, t) => n + f(t), 0);
}
