import { MirrorlabError } from '../errors.ts';
import type { ChannelWrite, MirrorMode } from '../mirror/types.ts';
import type { BlockDevice } from '../ports/block-device.ts';
import type { Clock } from '../ports/clock.ts';
import type { Telemetry } from '../ports/telemetry.ts';
import { encodeFrame } from '../protocol/encode.ts';
import { FEATURE_BITS, FrameType, type Frame, type ResyncAckFrame, type ResyncDataFrame } from '../protocol/frame.ts';
import { trustworthy, type MirrorTables } from '../tags/mirror-tables.ts';
import { compareTables, mergeRanges, rangeSectors, type TagEntry } from '../tags/tag-table.ts';
import type { MirrorSyncState, SectorRange } from '../telemetry/events.ts';
import { TableFetch } from './table-fetch.ts';
import type { WriteFence } from './write-fence.ts';

export interface MirrorResyncConfig {
  node: string;
  peer: string;
  lun: number;
  mode: MirrorMode;
  /** Sectors copied per chunk (one WRITE each). */
  chunkSectors: number;
  /** Chunks being copied at once. */
  chunksInFlightMax: number;
  /** A request of the table exchange, or RESYNC_DONE, is repeated this often until it is answered. */
  retryMs: number;
  /** Most entries one RESYNC_DATA may bring (what this side's decoder takes); 0: no exchange, full copies only. */
  entriesPerRequest: number;
  /** Most entries of the target's table this side takes (`resyncEntriesMax`); a larger one means a full copy. */
  peerEntriesMax: number;
}

export interface MirrorResyncDeps {
  clock: Clock;
  telemetry: Telemetry;
  device: BlockDevice;
  fence: WriteFence;
  /** Mirror one chunk through the LUN's source channel. */
  submit(w: ChannelWrite): void;
  /** Reading the source volume failed: the resync cannot go on (it is retried at the next reconnect). */
  failed(error: unknown): void;
  /** This controller's table of the mirror, as its source (undefined: none kept). */
  table(): MirrorTables | undefined;
  /** The host write with this tag is still on its way through the mirror (the target has not confirmed it). */
  inMirror(tag: number): boolean;
  /** Send a frame of the table exchange to the target. */
  send(bytes: Uint8Array): void;
  /** The mirror's state (or how far a resync came) changed: persist it with the mirror's metadata. */
  stateChanged(): void;
}

export function newResyncCounters() {
  return {
    runs: 0, fullRuns: 0, aborts: 0, sectorsCopied: 0, entriesCompared: 0, entriesMatched: 0,
    tableRequests: 0, tablesUntrusted: 0, tablesRefused: 0, framesIgnored: 0,
  };
}
export type ResyncCounters = ReturnType<typeof newResyncCounters>;

/**
 * What a resync copies and what it settles at its end: `ranges` (merged, sorted), the tags both
 * sides held (deleted here at the end), the tags of this side it copied (deleted at the end unless
 * their write is still on its way), and the table's overflow count when it began.
 */
interface Plan {
  readonly full: boolean;
  readonly ranges: readonly SectorRange[];
  readonly compared: number;
  readonly matched: readonly number[];
  readonly settle: readonly number[];
  readonly overflows: number;
}

/** One try at resynchronising: replaced by the next, so that late callbacks of an old one see they are late. */
interface Attempt {
  /** The table exchange's number (0: none, the peer lacks the feature), and the fetch while it runs. */
  exchange: number;
  fetch: TableFetch | null;
  plan: Plan | null;
  /** The resync's number once it started (its `resync.start`); 0 before. */
  run: number;
  startedMs: number;
  range: number;
  nextLba: number;
  sectors: number;
  done: number;
  chunks: number;
  inFlight: number;
}

type Phase = 'in-sync' | 'needed' | 'suspended' | 'exchanging' | 'comparing' | 'copying' | 'settling';

/** Chunks confirmed between two progress reports (`mirror.state`). */
const PROGRESS_EVERY_CHUNKS = 64;

/**
 * The resynchronisation of one mirrored LUN, on its source (docs/tag-tables.md, "Resync";
 * docs/link-supervision.md, "Resynchronisation"). Once the mirror's copies may differ (a restart
 * was seen, or whoever keeps the tag tables says so), and the link is up:
 *
 * 1. **Exchange.** With a peer that offers the `resync` feature, ask the target for its table of
 *    the mirror, in chunks (`TableFetch` checks them; the target flushes before answering, so the
 *    entries it sends name durable data).
 * 2. **Compare.** If both tables can be trusted: flush this volume, compare by tag, and copy the
 *    union of the blocks named by entries only one side holds. A tag both hold is matched (not
 *    copied) only if this side's copy is known durable: not an entry this controller recovered at
 *    its start (its write may never have reached the disk) and not a write still on the disk when
 *    the flush began. Otherwise (a table untrusted or lying, no table, a peer without the
 *    feature): a full copy, `full`.
 * 3. **Copy** the ranges chunk by chunk through the mirror stream, with hosts online: each chunk
 *    is fenced against host writes while it is read and queued ({@link WriteFence}), so a host
 *    write to a block being copied is never overwritten by the copy's older data; chunks go under
 *    mirror locks, in order, with the stream's retransmission.
 * 4. **Settle.** RESYNC_DONE asks the target to make the copies durable and delete every entry the
 *    exchange read; once it answers (RESYNC_ACK), this side deletes the matched entries and those
 *    it copied whose write is no longer on its way (a write still in the mirror will bring its own
 *    token), and forgets an overflow older than the resync: the mirror is in sync.
 *
 * A fault on the way (the link goes down, a restart is seen, the target refuses a chunk) aborts
 * the resync (`resync.abort`) and leaves every entry where it was: the next link-up compares again
 * and copies what is still unmatched.
 *
 * States (`mirror.state`): `in-sync`; `needs-resync` while waiting for the link, exchanging and
 * comparing; `resyncing` while copying and settling (how far in `doneSectors` of `totalSectors`).
 */
export class MirrorResync {
  readonly counters = newResyncCounters();
  private phase: Phase = 'in-sync';
  private attempt: Attempt | null = null;
  private exchanges = 0;
  private runs = 0;
  /** Chunks of any attempt still on their way (an aborted attempt's too): together at most chunksInFlightMax. */
  private chunksInFlight = 0;
  private up = false;
  private features = 0;
  private timer: unknown = null;
  /** Tags up to this one were in the table when the controller started: their writes' local copies are unknown. */
  private recoveredTagMax = 0;
  /** How far the resync under way (or the last one) came. */
  private readonly shown = { doneSectors: 0, totalSectors: 0 };
  /** Why the last table the target sent was refused, and why the last resync stopped before it finished (null: none). */
  private refusal: string | null = null;
  private abortReason: string | null = null;
  private stopped = false;

  constructor(private readonly cfg: MirrorResyncConfig, private readonly deps: MirrorResyncDeps) {}

  get state(): MirrorSyncState {
    if (this.phase === 'in-sync' || this.phase === 'suspended') return this.phase;
    return this.phase === 'copying' || this.phase === 'settling' ? 'resyncing' : 'needs-resync';
  }

  /** The resync under way (or the last one): sectors copied of those it copies. */
  get progress(): { doneSectors: number; totalSectors: number } {
    return { ...this.shown };
  }

  /** Why the target's table was last refused as a lie (a full copy followed), or null. */
  get lastRefusal(): string | null {
    return this.refusal;
  }

  /** Why the last resync stopped before it finished (`resync.abort`), or null. */
  get lastAbort(): string | null {
    return this.abortReason;
  }

  /** The controller started: the entries its table holds now were recovered, not written in this start. */
  controllerStarted(): void {
    const ref = this.deps.table();
    if (ref !== undefined) for (const e of ref.table.entries()) this.recoveredTagMax = Math.max(this.recoveredTagMax, e.tag);
  }

  /**
   * The mirror's copies may differ: resync (from the start, even if a resync was under way: that
   * one is aborted, saying `reason`), at once if the link is up.
   */
  markNeeded(reason: string): void {
    this.abort(reason);
    // A suspended mirror stays suspended (its hosts acknowledged locally) until the link is back:
    // then {@link resume} makes the resync it owes anyway.
    if (this.phase === 'suspended') return;
    this.setPhase('needed');
    if (this.up) this.begin();
  }

  /** The link is back after a suspension: the mirror needs a resync ({@link linkUp} starts it). */
  resume(): void {
    if (this.phase === 'suspended') this.setPhase('needed');
  }

  /**
   * The link stayed down past `suspendAfterMs` (docs/tag-tables.md, "Suspension"): the mirror is
   * suspended, a resync under way stops (its chunks in the stream are dropped with the backlog),
   * and once the link is back the mirror needs a resync ({@link markNeeded}, then {@link linkUp}).
   */
  suspend(): void {
    this.abort('the mirror was suspended');
    this.setPhase('suspended');
  }

  /** The link is up, with the features both sides implement: start a resync if one is needed. */
  linkUp(features: number): void {
    this.up = true;
    this.features = features;
    if (this.phase === 'needed') this.begin();
  }

  /** The link went down: a resync under way stops here; the next link-up compares again. */
  linkDown(): void {
    this.up = false;
    if (this.phase === 'in-sync' || this.phase === 'needed' || this.phase === 'suspended') return;
    this.abort('the link went down');
    this.setPhase('needed');
  }

  /** A RESYNC_DATA or RESYNC_ACK from the target about this LUN. */
  onFrame(f: ResyncDataFrame | ResyncAckFrame): void {
    const a = this.attempt;
    if (a !== null && a.exchange === f.seq) {
      if (f.type === FrameType.ResyncData && this.phase === 'exchanging') return this.onData(a, f);
      if (f.type === FrameType.ResyncAck && this.phase === 'settling') return this.complete(a);
    }
    this.counters.framesIgnored++; // about an exchange that is over, or was never asked for
  }

  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  // ---- exchange and comparison -------------------------------------------------------------

  private begin(): void {
    const a: Attempt = { exchange: 0, fetch: null, plan: null, run: 0, startedMs: 0, range: 0, nextLba: 0, sectors: 0, done: 0, chunks: 0, inFlight: 0 };
    this.attempt = a;
    if ((this.features & FEATURE_BITS.resync) === 0 || this.cfg.entriesPerRequest < 1) return this.startCopy(a, this.fullPlan());
    a.exchange = ++this.exchanges;
    a.fetch = new TableFetch({ lun: this.cfg.lun, sectorCount: this.deps.device.sectorCount, entriesMax: this.cfg.peerEntriesMax });
    this.setPhase('exchanging');
    this.request(a);
  }

  private request(a: Attempt): void {
    this.counters.tableRequests++;
    this.send({ type: FrameType.ResyncRequest, lun: this.cfg.lun, seq: a.exchange, flags: 0, first: a.fetch!.next, entriesMax: this.cfg.entriesPerRequest });
    this.arm(() => this.request(a));
  }

  private onData(a: Attempt, f: ResyncDataFrame): void {
    const r = a.fetch!.take(f);
    if (r === 'ignored') {
      this.counters.framesIgnored++;
      return;
    }
    if (r === 'more') return this.request(a);
    this.disarm();
    a.fetch = null;
    if (r.kind === 'untrusted') this.counters.tablesUntrusted++;
    if (r.kind === 'refused') {
      this.counters.tablesRefused++;
      this.refusal = r.reason;
    }
    this.compare(a, r.kind === 'table' ? r.entries : null);
  }

  /**
   * With the target's table and a trustworthy one here: flush this volume first, so that this
   * side's copy of what both tables hold is durable, then compare. Otherwise a full copy.
   */
  private compare(a: Attempt, theirs: TagEntry[] | null): void {
    const mine = this.deps.table();
    if (theirs === null || !trustworthy(mine)) return this.startCopy(a, this.fullPlan());
    this.setPhase('comparing');
    const onDisk = this.deps.fence.inflightSpans();
    this.deps.device.flush().then(
      () => {
        if (this.attempt === a && !this.stopped) this.startCopy(a, this.exactPlan(mine, theirs, onDisk));
      },
      () => {
        if (this.attempt === a && !this.stopped) this.startCopy(a, this.fullPlan());
      },
    );
  }

  /** Everything, and at the end whatever the table held at the start (docs/tag-tables.md, "Resync"). */
  private fullPlan(): Plan {
    const mine = this.deps.table();
    const settle = mine === undefined ? [] : [...mine.table.entries()].map((e) => e.tag);
    return { full: true, ranges: [[0, this.deps.device.sectorCount]], compared: 0, matched: [], settle, overflows: mine?.table.overflows ?? 0 };
  }

  private exactPlan(mine: MirrorTables, theirs: TagEntry[], onDisk: readonly { lba: number; end: number }[]): Plan {
    const c = compareTables(mine.table.entries(), theirs);
    const matched: number[] = [];
    const copied: TagEntry[] = [...c.unmatched];
    for (const tag of c.matched) {
      const e = mine.table.get(tag)!;
      const unsure = tag <= this.recoveredTagMax || onDisk.some((s) => s.lba < e.lba + e.count && e.lba < s.end);
      if (unsure) copied.push(e);
      else matched.push(tag);
    }
    const settle = copied.filter((e) => mine.table.has(e.tag)).map((e) => e.tag);
    return { full: false, ranges: mergeRanges(copied), compared: c.compared, matched, settle, overflows: mine.table.overflows };
  }

  // ---- copying -------------------------------------------------------------------------------

  private startCopy(a: Attempt, plan: Plan): void {
    a.plan = plan;
    a.run = ++this.runs;
    a.sectors = rangeSectors(plan.ranges);
    a.startedMs = this.deps.clock.now();
    this.shown.doneSectors = 0;
    this.shown.totalSectors = a.sectors;
    const c = this.counters;
    c.runs++;
    if (plan.full) c.fullRuns++;
    c.entriesCompared += plan.compared;
    c.entriesMatched += plan.matched.length;
    const t = this.deps.telemetry;
    if (t.enabled) {
      t.emit({
        kind: 'resync.start', t: a.startedMs, node: this.cfg.node, peer: this.cfg.peer, lun: this.cfg.lun, resync: a.run, full: plan.full,
        entriesCompared: plan.compared, entriesMatched: plan.matched.length, ranges: plan.ranges, sectors: a.sectors,
      });
    }
    this.setPhase('copying');
    this.pump(a);
  }

  private pump(a: Attempt): void {
    if (this.attempt !== a || this.phase !== 'copying') return; // exchanging, or settling: no chunk to send
    const ranges = a.plan!.ranges;
    while (this.attempt === a && this.phase === 'copying' && this.chunksInFlight < this.cfg.chunksInFlightMax && a.range < ranges.length) {
      const [lba0, count0] = ranges[a.range]!;
      const lba = Math.max(a.nextLba, lba0);
      const count = Math.min(this.cfg.chunkSectors, lba0 + count0 - lba);
      a.nextLba = lba + count;
      if (a.nextLba >= lba0 + count0) a.range++;
      a.inFlight++;
      this.chunksInFlight++;
      this.copy(a, lba, count);
    }
    if (this.attempt === a && this.phase === 'copying' && a.inFlight === 0 && a.range >= ranges.length) this.finish(a);
  }

  /** Fence the chunk, wait for host writes on it to reach the disk, read it, queue its copy, lift the fence. */
  private copy(a: Attempt, lba: number, count: number): void {
    const { fence, device } = this.deps;
    fence.close(lba, count, () => {
      device.read(lba, count).then(
        (data) => {
          if (this.attempt !== a || this.stopped) {
            // Aborted meanwhile: the next resync copies this range again if it must.
            fence.open(lba, count);
            return this.chunkGone(a);
          }
          this.deps.submit(new ResyncWrite(this.cfg, lba, count, data, () => fence.open(lba, count), (error) => this.copied(a, lba, count, error)));
        },
        (error: unknown) => {
          fence.open(lba, count);
          this.chunkGone(a);
          this.deps.failed(error);
        },
      );
    });
  }

  private chunkGone(a: Attempt): void {
    a.inFlight--;
    this.chunksInFlight--;
    if (this.attempt !== null && this.attempt !== a) this.pump(this.attempt);
  }

  private copied(a: Attempt, lba: number, count: number, error: MirrorlabError | undefined): void {
    if (this.attempt !== a) return this.chunkGone(a);
    a.inFlight--;
    this.chunksInFlight--;
    if (error !== undefined) {
      // The target refused the copy (a media error there): the mirror is not whole; try again at the next link-up.
      this.abort(`the target refused a chunk: ${error.message}`);
      this.setPhase('needed');
      return;
    }
    a.done += count;
    a.chunks++;
    this.shown.doneSectors = a.done;
    this.counters.sectorsCopied += count;
    const t = this.deps.telemetry;
    if (t.enabled) t.emit({ kind: 'resync.chunk', t: this.deps.clock.now(), node: this.cfg.node, peer: this.cfg.peer, lun: this.cfg.lun, resync: a.run, lba, count });
    if (a.chunks % PROGRESS_EVERY_CHUNKS === 0) this.publish();
    this.pump(a);
  }

  // ---- settling ------------------------------------------------------------------------------

  /** Every range is copied: with an exchange, the target settles its side first (RESYNC_DONE, until RESYNC_ACK). */
  private finish(a: Attempt): void {
    if (a.exchange === 0) return this.complete(a);
    this.setPhase('settling');
    const done = (): void => {
      this.send({ type: FrameType.ResyncDone, lun: this.cfg.lun, seq: a.exchange, flags: 0 });
      this.arm(done);
    };
    done();
  }

  private complete(a: Attempt): void {
    this.disarm();
    this.attempt = null;
    const plan = a.plan!;
    const mine = this.deps.table();
    if (mine !== undefined) {
      const settled = [...plan.matched, ...plan.settle.filter((tag) => !this.deps.inMirror(tag))];
      mine.resynced({ tags: settled, overflowsBefore: plan.overflows, full: plan.full });
    }
    const t = this.deps.telemetry;
    if (t.enabled) {
      const now = this.deps.clock.now();
      t.emit({ kind: 'resync.done', t: now, node: this.cfg.node, peer: this.cfg.peer, lun: this.cfg.lun, resync: a.run, sectorsCopied: a.done, virtualMs: now - a.startedMs });
    }
    this.setPhase('in-sync');
  }

  /** Stop the attempt under way; `resync.abort` if it had started copying. Every entry stays where it is. */
  private abort(reason: string): void {
    const a = this.attempt;
    this.disarm();
    if (a === null) return;
    this.attempt = null;
    if (this.phase !== 'copying' && this.phase !== 'settling') return;
    this.counters.aborts++;
    this.abortReason = reason;
    const t = this.deps.telemetry;
    if (t.enabled) t.emit({ kind: 'resync.abort', t: this.deps.clock.now(), node: this.cfg.node, peer: this.cfg.peer, lun: this.cfg.lun, resync: a.run, reason });
  }

  // ---- plumbing ------------------------------------------------------------------------------

  private send(frame: Frame): void {
    this.deps.send(encodeFrame(frame));
  }

  private arm(retry: () => void): void {
    this.disarm();
    this.timer = this.deps.clock.setTimeout(() => {
      this.timer = null;
      if (!this.stopped) retry();
    }, this.cfg.retryMs);
  }

  private disarm(): void {
    if (this.timer !== null) this.deps.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private setPhase(p: Phase): void {
    const before = this.state;
    this.phase = p;
    if (this.state !== before) this.publish();
  }

  private publish(): void {
    this.deps.stateChanged();
    const t = this.deps.telemetry;
    if (!t.enabled) return;
    t.emit({ kind: 'mirror.state', t: this.deps.clock.now(), node: this.cfg.node, peer: this.cfg.peer, lun: this.cfg.lun, state: this.state, ...this.progress });
  }
}

/** One chunk of a resync, as its source channel sees it. Tag 0: it is no host's write. */
class ResyncWrite implements ChannelWrite {
  readonly tag = 0;
  readonly lun: number;
  readonly mode: MirrorMode;
  private wasPlaced = false;
  constructor(
    cfg: MirrorResyncConfig,
    readonly lba: number,
    readonly count: number,
    readonly data: Uint8Array,
    private readonly onPlaced: () => void,
    private readonly onConfirmed: (error: MirrorlabError | undefined) => void,
  ) {
    this.lun = cfg.lun;
    this.mode = cfg.mode;
  }

  admitted(): void {}

  /** The mirror was suspended with this chunk unconfirmed: the copy is void (the resync after the suspension copies again). */
  suspended(): void {
    this.placed();
    this.onConfirmed(new MirrorlabError('ML_ERR_MIRROR_SUSPENDED', `resync chunk [${this.lba}, +${this.count}) of LUN ${this.lun} dropped: the mirror was suspended`));
  }

  placed(): void {
    if (this.wasPlaced) return;
    this.wasPlaced = true;
    this.onPlaced();
  }

  confirmed(error?: MirrorlabError): void {
    this.onConfirmed(error);
  }
}
