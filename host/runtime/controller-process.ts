import { randomInt } from 'node:crypto';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { LunConfig } from '../../firmware/controller/config.ts';
import { HostRequestError, StorageController } from '../../firmware/controller/storage-controller.ts';
import { MirrorlabError } from '../../firmware/errors.ts';
import type { Telemetry } from '../../firmware/ports/telemetry.ts';
import type { TelemetryEvent } from '../../firmware/telemetry/events.ts';
import type { HostClock } from '../clock/clock.ts';
import { RealClock } from '../clock/real.ts';
import { SeededRandom } from '../random.ts';
import { openLiveLink, type LiveLink, type LiveLinkSpec } from '../transports/live-link.ts';
import type { ControllerProcessConfig } from './config.ts';
import { CONTROL_DATA_BYTES_MAX } from './control-protocol.ts';
import { ControlServer, claimSocketPath } from './control-server.ts';
import type { ControlPlane, HostFrontEnd, HostIo, HostLun } from './front-end.ts';
import type { ProcessConfigSummary, ProcessEvent, QueuedWork } from './process-events.ts';
import type { ControllerStatus } from './status.ts';
import { ResyncReporter } from './resync-reporter.ts';
import { TelemetryJournal, type JournalEvent } from './telemetry-journal.ts';
import { closeVolumes, openLunVolumes, openMetadataVolume, type OpenMetadataVolume, type OpenVolume } from './volumes.ts';

/** Opens a peer's live link: livelink's `openLiveLink` (tests may pass another). */
export type OpenLink = (spec: LiveLinkSpec, opts: { clock: HostClock; logger: Logger; localName: string; peerName: string }) => Promise<LiveLink>;

export const EXIT_CLEAN = 0;
export const EXIT_OPERATING_ERROR = 2;
export const EXIT_INTERNAL = 70;

/** How often a stop looks whether the work in flight has drained (ms). */
const DRAIN_POLL_MS = 10;
/** Each part of a stop (a link's shutdown, a volume's flush) gets this long before the stop moves on (ms). */
const STOP_STEP_MS = 5_000;

export interface RuntimeOptions {
  config: ControllerProcessConfig;
  log: Logger;
  /** Default: openLiveLink. */
  openLink?: OpenLink;
  /** Overrides the config's control path. */
  controlPath?: string;
  /** Overrides the config's telemetry target (a file, or unix:PATH). */
  telemetry?: string;
  /** The mirrorlab version, for the start event. */
  version?: string;
}

/** How a stop ended. */
export interface StopReport {
  reason: string;
  exitCode: number;
  forced: boolean;
  queued: QueuedWork;
}

/** The default control path: private to the user's run directory, else the temp directory. */
export function defaultControlPath(name: string): string {
  return join(process.env.XDG_RUNTIME_DIR || tmpdir(), `mirrorlab-${name}.sock`);
}

/**
 * One storage controller as a process (docs/controller-process.md): its volumes, its peers' live
 * links, the firmware on the real clock, telemetry, and the control socket. {@link start} brings it
 * up or fails without leaving anything held (image locks, sockets); {@link stop} brings it down
 * cleanly: no more host I/O, in-flight work drained within `shutdown.drainMs`, what is still queued
 * reported, links closed, volumes flushed and closed (image locks released), telemetry flushed.
 */
export class ControllerRuntime implements ControlPlane {
  readonly controller: StorageController;
  /** The metadata volume the config names (docs/tag-tables.md, "Metadata format"), open for the controller's life; null without one. */
  readonly metadata: OpenMetadataVolume | null;
  readonly startedAt = new Date();
  readonly controlPath: string;
  private readonly hostIo: HostIo;
  private readonly frontEnds: HostFrontEnd[] = [];
  private stopping: Promise<StopReport> | null = null;
  private state: 'running' | 'stopping' = 'running';
  private refusing = false;
  private failureWatch: ReturnType<typeof setInterval> | null = null;
  private readonly stoppedWaiters: ((r: StopReport) => void)[] = [];

  private constructor(
    private readonly cfg: ControllerProcessConfig,
    private readonly log: Logger,
    private readonly clock: RealClock,
    private readonly journal: TelemetryJournal | null,
    private readonly volumes: OpenVolume[],
    private readonly links: Map<string, LiveLink>,
    controller: StorageController,
    controlPath: string,
    metadata: OpenMetadataVolume | null,
  ) {
    this.controller = controller;
    this.metadata = metadata;
    this.controlPath = controlPath;
    this.hostIo = this.makeHostIo();
  }

  /** Brings the controller up; every failure is a typed error, and nothing stays held. */
  static async start(opts: RuntimeOptions): Promise<ControllerRuntime> {
    const { config: cfg, log } = opts;
    const clock = new RealClock();
    const controlPath = opts.controlPath ?? cfg.control.path ?? defaultControlPath(cfg.name);
    const target = opts.telemetry ?? cfg.telemetry;
    // Cheap refusals first: a live controller on the socket, a telemetry file that cannot be opened.
    await claimSocketPath(controlPath, log);
    const journal = target === null ? null : await TelemetryJournal.open(target, () => clock.now());
    const held: { volumes: OpenVolume[]; metadata: OpenMetadataVolume | null; links: LiveLink[]; controller: StorageController | null } = {
      volumes: [], metadata: null, links: [], controller: null,
    };
    try {
      held.volumes = await openLunVolumes(cfg.luns, { controller: cfg.name, clock });
      if (cfg.metadata !== null) held.metadata = await openMetadataVolume(cfg.metadata, { controller: cfg.name, clock });
      const observer = new ObservingTelemetry(journal);
      const seed = randomInt(0, 2 ** 48 - 1);
      // With a metadata volume the controller recovers its tag tables, tag reservation and mirror
      // states from it first (docs/tag-tables.md, "Metadata"); a restart with them keeps the tables trusted.
      const controller = await StorageController.recover(
        {
          name: cfg.name, id: cfg.id, onLockReject: cfg.onLockReject, limits: cfg.limits, luns: lunConfigs(cfg, held.volumes),
          ...(held.metadata !== null ? { metadata: held.metadata.device } : {}),
        },
        { clock, telemetry: observer, random: new SeededRandom(seed) },
      );
      held.controller = controller;
      journal?.setProc(`${cfg.name}/${controller.session}`);
      const links = new Map<string, LiveLink>();
      for (const p of cfg.peers) {
        const link = await (opts.openLink ?? openLiveLink)(p.link, { clock, logger: log.child({ peer: p.name }), localName: cfg.name, peerName: p.name });
        held.links.push(link);
        links.set(p.name, link);
        controller.connect(p.name, link);
      }
      const runtime = new ControllerRuntime(cfg, log, clock, journal, held.volumes, links, controller, controlPath, held.metadata);
      observer.runtime = runtime;
      controller.start();
      runtime.frontEnds.push(await ControlServer.listen({
        path: controlPath, io: runtime.hostIo, plane: runtime, connectionsMax: cfg.control.connectionsMax,
        requestsInFlightMax: cfg.control.requestsInFlightMax, frameTimeoutMs: cfg.control.frameTimeoutMs, log: log.child({ module: 'control' }),
      }));
      runtime.watchFailures();
      runtime.emit({
        kind: 'process.start', t: clock.now(), node: cfg.name, session: controller.session, proc: `${cfg.name}/${controller.session}`, pid: process.pid,
        host: hostname(), version: opts.version ?? 'unknown', control: controlPath, config: summary(cfg, held.volumes),
      });
      log.info({ session: controller.session, control: controlPath, telemetry: target, luns: cfg.luns.length, metadata: held.metadata?.text ?? null, peers: cfg.peers.map((p) => `${p.name} ${p.linkText}`) }, 'controller running');
      return runtime;
    } catch (error) {
      held.controller?.stop();
      await Promise.allSettled(held.links.map((l) => l.shutdown()));
      await closeVolumes(held.volumes).catch(() => undefined);
      await held.metadata?.close().catch(() => undefined);
      await journal?.close().catch(() => undefined);
      throw error;
    }
  }

  get session(): number {
    return this.controller.session;
  }

  get name(): string {
    return this.cfg.name;
  }

  /** Resolves when a stop, however it began, has finished. */
  stopped(): Promise<StopReport> {
    return this.stopping ?? new Promise((resolve) => this.stoppedWaiters.push(resolve));
  }

  /** ControlPlane: a clean stop, as SIGTERM asks. */
  stop(reason: string): void {
    void this.shutdown(reason, EXIT_CLEAN);
  }

  /**
   * A clean stop (idempotent: a second call returns the first's promise). `exitCode` is what the
   * process should exit with when it is done (70 after a firmware error).
   */
  shutdown(reason: string, exitCode: number): Promise<StopReport> {
    this.stopping ??= this.stopCleanly(reason, exitCode);
    return this.stopping;
  }

  /**
   * Stop at once (a second signal): no draining. The telemetry gets the stop event and is flushed
   * synchronously; image locks are left to be taken over as stale by the next opener (their owner
   * is gone). The caller exits the process right after.
   */
  forceStop(reason: string): StopReport {
    const report: StopReport = { reason, exitCode: EXIT_OPERATING_ERROR, forced: true, queued: this.queued() };
    this.log.warn({ reason, queued: report.queued }, 'stopping now, without draining');
    this.controller.stop();
    this.emit({ kind: 'process.stop', t: this.clock.now(), node: this.cfg.name, reason, exitCode: report.exitCode, forced: true, queued: report.queued });
    this.journal?.flush();
    return report;
  }

  status(): ControllerStatus {
    const c = this.controller;
    const peers = c.status().map((p) => {
      const link = this.links.get(p.peer);
      return { ...p, linkSpec: this.cfg.peers.find((q) => q.name === p.peer)?.linkText ?? '', transport: link ? link.stats() : null };
    });
    const charts: Record<string, string> = {};
    for (const p of peers) {
      if (p.source) charts[`source:${this.cfg.name}->${p.peer}`] = p.source.state;
      charts[`target:${p.peer}->${this.cfg.name}`] = p.target.state;
      charts[`link:${this.cfg.name}->${p.peer}`] = p.link.state;
    }
    const failure = c.failure;
    return {
      name: this.cfg.name, id: this.cfg.id, session: c.session, pid: process.pid, state: this.state, startedAt: this.startedAt.toISOString(),
      uptimeMs: Math.round(this.clock.now()), onLockReject: this.cfg.onLockReject, control: this.controlPath,
      telemetry: { target: this.journal?.target ?? null, events: this.journal?.events ?? 0, lost: this.journal?.lostEvents ?? 0 },
      hostWritesInFlight: c.hostWritesInFlight,
      frontEnds: this.frontEnds.map((f) => ({ kind: f.kind, address: f.address, connections: f.connections, inFlight: f.inFlight })),
      luns: summary(this.cfg, this.volumes).luns.map((l) => ({ lun: l.lun, role: l.role, peer: l.peer, mode: l.mode, volume: l.volume, sectorSize: l.sectorSize, sectorCount: l.sectors })),
      lockTable: c.lockTable, charts, chartEvents: c.chartEvents(), peers,
      firmwareError: failure === null ? null : failure instanceof Error ? (failure.stack ?? failure.message) : String(failure),
    };
  }

  /** What is still queued: per peer, the rollback log (unconfirmed entries) and the commit log; host writes not acknowledged. */
  queued(): QueuedWork {
    return {
      hostWritesInFlight: this.controller.hostWritesInFlight,
      peers: this.controller.status().map((p) => ({
        peer: p.peer,
        rollbackEntries: p.source?.rollbackLog.entries ?? 0,
        rollbackBytes: p.source?.rollbackLog.bytes ?? 0,
        rollbackWaiting: p.source?.rollbackLog.waiting ?? 0,
        commitEntries: p.target.commitLog.entries,
        mirrorsNotInSync: p.mirrors.filter((m) => m.state !== 'in-sync').map((m) => m.lun),
      })),
    };
  }

  /** Called by the telemetry observer on the firmware's events the process acts on. */
  onFirmwareEvent(e: TelemetryEvent): void {
    if (e.kind === 'link.supervision' && (e.event === 'up' || e.event === 'down')) {
      const link = this.links.get(e.peer);
      this.emit({ kind: 'process.link', t: this.clock.now(), node: this.cfg.name, peer: e.peer, state: e.event, transport: link ? link.stats() : null });
      this.log.info({ peer: e.peer, detail: e.detail, peerSession: e.peerSession }, `link ${e.event}`);
    } else if (e.kind === 'link.supervision' && e.event === 'peer.restarted') {
      this.log.warn({ peer: e.peer, peerSession: e.peerSession }, 'peer restarted (new session): its streams start afresh and mirrors to it resynchronise');
    }
  }

  // ---- internals ---------------------------------------------------------------------------

  private emit(e: ProcessEvent): void {
    this.journal?.emit(e);
  }

  /**
   * A chart that stopped on an exception is a firmware bug: stop cleanly, exit 70. Without a
   * telemetry target the firmware emits nothing (it costs nothing), so link changes are noticed
   * here for the log instead; resyncs are always logged from here (their progress, too).
   */
  private watchFailures(): void {
    const linkStates = new Map<string, boolean>();
    const resyncs = new ResyncReporter(this.log);
    this.failureWatch = setInterval(() => {
      resyncs.observe(this.controller.status(), this.clock.now());
      if (!this.journal) {
        for (const p of this.controller.status()) {
          const up = p.link.state === 'up';
          if (linkStates.has(p.peer) && linkStates.get(p.peer) !== up) this.log.info({ peer: p.peer, peerSession: p.link.peerSession }, `link ${up ? 'up' : 'down'}`);
          linkStates.set(p.peer, up);
        }
      }
      const failure = this.controller.failure;
      if (failure === null || this.stopping) return;
      this.log.error({ err: failure instanceof Error ? failure.stack : String(failure) }, 'firmware error: a statechart stopped; stopping the controller');
      void this.shutdown('firmware error', EXIT_INTERNAL);
    }, 250);
    this.failureWatch.unref();
  }

  private async stopCleanly(reason: string, exitCode: number): Promise<StopReport> {
    this.state = 'stopping';
    this.refusing = true;
    for (const f of this.frontEnds) f.refuseHostIo();
    this.emit({ kind: 'process.stopping', t: this.clock.now(), node: this.cfg.name, reason });
    this.log.info({ reason, drainMs: this.cfg.shutdown.drainMs }, 'stopping: no more host I/O; draining what is in flight');
    const drained = await this.drain(this.cfg.shutdown.drainMs);
    const queued = this.queued();
    const left = queued.hostWritesInFlight > 0 || queued.peers.some((p) => p.rollbackEntries > 0 || p.rollbackWaiting > 0 || p.commitEntries > 0);
    if (left) this.log.warn({ queued, drained }, 'stopping with work still queued');
    else this.log.info('nothing queued');
    if (this.failureWatch) clearInterval(this.failureWatch);
    this.controller.stop();
    const problems: string[] = [];
    await Promise.all(this.frontEnds.map((f) => within(f.close(), STOP_STEP_MS, `front end ${f.kind}`).catch((e: Error) => problems.push(e.message))));
    await Promise.all([...this.links].map(([peer, l]) => within(l.shutdown(), STOP_STEP_MS, `link to ${peer}`).catch((e: Error) => problems.push(e.message))));
    await Promise.all(this.volumes.map((v) => within(v.device.flush(), STOP_STEP_MS, `flush of LUN ${v.lun}`).catch((e: Error) => problems.push(e.message))));
    if (this.metadata) await within(this.metadata.device.flush(), STOP_STEP_MS, 'flush of the metadata volume').catch((e: Error) => problems.push(e.message));
    await closeVolumes(this.volumes).catch((e: Error) => problems.push(`closing volumes: ${e.message}`));
    await this.metadata?.close().catch((e: Error) => problems.push(`closing the metadata volume: ${e.message}`));
    const code = problems.length > 0 && exitCode === EXIT_CLEAN ? EXIT_OPERATING_ERROR : exitCode;
    for (const p of problems) this.log.error({ problem: p }, 'stop: a part did not close cleanly');
    this.emit({ kind: 'process.stop', t: this.clock.now(), node: this.cfg.name, reason, exitCode: code, forced: false, queued });
    await this.journal?.close().catch((e: Error) => this.log.error({ err: e.message }, 'telemetry could not be finished'));
    this.log.info({ reason, exitCode: code }, 'stopped');
    const report: StopReport = { reason, exitCode: code, forced: false, queued };
    for (const w of this.stoppedWaiters.splice(0)) w(report);
    return report;
  }

  /**
   * Waits until no host request is in flight and every rollback log whose link is up is empty, or
   * until `ms` pass; whether it drained.
   */
  private async drain(ms: number): Promise<boolean> {
    const deadline = this.clock.now() + ms;
    for (;;) {
      const busyFrontEnd = this.frontEnds.some((f) => f.inFlight > 0);
      const busyMirror = this.controller.status().some((p) => p.link.state === 'up' && p.source !== null && (p.source.rollbackLog.entries > 0 || p.source.rollbackLog.waiting > 0));
      if (!busyFrontEnd && this.controller.hostWritesInFlight === 0 && !busyMirror) return true;
      if (this.clock.now() >= deadline) return false;
      await this.clock.sleep(DRAIN_POLL_MS);
    }
  }

  private makeHostIo(): HostIo {
    const c = this.controller;
    const byLun = new Map(this.cfg.luns.map((l) => [l.lun, l] as const));
    const transferBytesMax = Math.min(c.limits.payloadBytesMax, CONTROL_DATA_BYTES_MAX);
    const usable = (lun: number, writing: boolean): void => {
      if (this.refusing) throw new MirrorlabError('ML_ERR_STOPPING', `${this.cfg.name} is stopping and takes no more host I/O`);
      const l = byLun.get(lun);
      if (!l) throw new HostRequestError('ML_ERR_NO_LUN', `${this.cfg.name} has no LUN ${lun} (LUNs: ${[...byLun.keys()].join(', ')})`);
      if (writing && l.designation.role === 'replica') {
        throw new HostRequestError('ML_ERR_LUN_REPLICA', `LUN ${lun} of ${this.cfg.name} is the replica of ${l.designation.of}'s LUN ${lun}; hosts write it at ${l.designation.of}`);
      }
    };
    return {
      transferBytesMax,
      luns: (): HostLun[] => this.volumes.map((v) => ({
        lun: v.lun, sectorSize: v.device.sectorSize, sectorCount: v.device.sectorCount, role: byLun.get(v.lun)!.designation.role,
      })),
      write: async (lun, lba, data, tag) => {
        usable(lun, true);
        if (data.length > transferBytesMax) throw new HostRequestError('ML_ERR_WRITE_TOO_LARGE', `a write carries at most ${transferBytesMax} bytes, this one ${data.length}`);
        await new Promise<void>((resolve, reject) => c.submitWrite(lun, lba, data, (err) => (err ? reject(err) : resolve()), tag));
      },
      read: async (lun, lba, count) => {
        usable(lun, false);
        const bytes = count * this.volumes.find((v) => v.lun === lun)!.device.sectorSize;
        if (bytes > transferBytesMax) throw new HostRequestError('ML_ERR_READ_TOO_LARGE', `a read returns at most ${transferBytesMax} bytes; ${count} sectors are ${bytes}`);
        return c.read(lun, lba, count);
      },
      flush: async (lun) => {
        if (lun !== undefined) usable(lun, false);
        else if (this.refusing) throw new MirrorlabError('ML_ERR_STOPPING', `${this.cfg.name} is stopping and takes no more host I/O`);
        await Promise.all(this.volumes.filter((v) => lun === undefined || v.lun === lun).map((v) => v.device.flush()));
      },
      holdLock: async (lun, lba, count, holdMs) => {
        usable(lun, false);
        const lock = await c.localLock(lun, lba, count, 'write');
        setTimeout(() => lock.release(), holdMs);
      },
    };
  }
}

/**
 * The firmware's telemetry port in a process: every event to the journal, and the few the process
 * acts on (link up and down) to the runtime. Without a journal it is disabled, and the firmware
 * builds no events at all.
 */
class ObservingTelemetry implements Telemetry {
  readonly enabled: boolean;
  runtime: ControllerRuntime | null = null;

  constructor(private readonly journal: TelemetryJournal | null) {
    this.enabled = journal !== null;
  }

  emit(event: TelemetryEvent): void {
    this.journal?.emit(event as JournalEvent);
    if (event.kind === 'link.supervision') this.runtime?.onFirmwareEvent(event);
  }
}

function lunConfigs(cfg: ControllerProcessConfig, volumes: OpenVolume[]): LunConfig[] {
  return cfg.luns.map((l) => {
    const device = volumes.find((v) => v.lun === l.lun)!.device;
    const mirror = l.designation.role === 'primary' ? { peer: l.designation.peer, mode: l.designation.mode } : undefined;
    return { lun: l.lun, device, ...(mirror ? { mirror } : {}), ...(l.lockRegionSectors === undefined ? {} : { lockRegionSectors: l.lockRegionSectors }) };
  });
}

function summary(cfg: ControllerProcessConfig, volumes: OpenVolume[]): ProcessConfigSummary {
  return {
    id: cfg.id, onLockReject: cfg.onLockReject,
    luns: cfg.luns.map((l) => {
      const v = volumes.find((x) => x.lun === l.lun)!;
      const d = l.designation;
      return {
        lun: l.lun, role: d.role, peer: d.role === 'primary' ? d.peer : d.role === 'replica' ? d.of : null, mode: d.role === 'primary' ? d.mode : null,
        volume: v.text, sectors: v.device.sectorCount, sectorSize: v.device.sectorSize,
      };
    }),
    peers: cfg.peers.map((p) => ({ name: p.name, link: p.linkText })),
    limits: cfg.limitOverrides as Record<string, number>,
  };
}

/** `op`, or a rejection naming `what` once `ms` pass. */
function within<T>(op: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([op, late]).finally(() => clearTimeout(timer));
}
