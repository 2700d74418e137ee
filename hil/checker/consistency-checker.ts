import type { Telemetry } from '../../firmware/ports/telemetry.ts';
import type { TelemetryEvent } from '../../firmware/telemetry/events.ts';
import { WriteHistory } from './history.ts';
import type { InvariantName, Violation } from './violation.ts';

interface Range {
  lun: number;
  lba: number;
  count: number;
}

const overlaps = (a: Range, lun: number, lba: number, count: number): boolean =>
  a.lun === lun && a.lba < lba + count && lba < a.lba + a.count;

/**
 * The consistency checker's telemetry half (DESIGN 2.7, CONVENTIONS 8). It subscribes to the
 * firmware's telemetry and never looks inside the firmware. On every event it checks:
 *
 * - `lock-held`: a write is applied at a target only while the mirror lock it names is granted
 *   and not yet released there, and that lock covers the write;
 * - `lock-exclusive`: no local lock of the target's own server overlaps it at that moment;
 * - `ack-after-apply`: in `sync` and `speculative` mode a host write is acknowledged only after the
 *   target applied it (so it is on the target's disk at the moment of the ack);
 * - `rollback-after-confirm`: a source removes rollback-log entries only up to what its target
 *   has confirmed;
 * - `firmware-error`: no chart stopped on an exception.
 *
 * It also keeps every host's write history per LUN, which the disk checks in content-checks.ts
 * use at checkpoints and at the end.
 */
export class ConsistencyChecker implements Telemetry {
  readonly enabled = true;
  readonly violations: Violation[] = [];
  private readonly mirrorLocks = new Map<string, Range>();
  private readonly localLocks = new Map<string, Range>();
  private readonly applied = new Map<string, Set<number>>();
  private readonly targetConfirmed = new Map<string, number>();
  private readonly histories = new Map<string, WriteHistory>();
  private dropped = 0;

  constructor(private readonly violationsMax = 100) {}

  /** Violations beyond `violationsMax` are counted, not kept. */
  get violationsDropped(): number {
    return this.dropped;
  }

  /** The write history of `node`'s host on `lun` (empty if it wrote nothing). */
  history(node: string, lun: number): WriteHistory {
    const key = `${node}|${lun}`;
    let h = this.histories.get(key);
    if (!h) this.histories.set(key, (h = new WriteHistory()));
    return h;
  }

  report(v: Violation): void {
    if (this.violations.length < this.violationsMax) this.violations.push(v);
    else this.dropped++;
  }

  emit(e: TelemetryEvent): void {
    switch (e.kind) {
      case 'host.write':
        this.history(e.node, e.lun).add(e.tag, e.lba, e.count);
        return;
      case 'host.error':
        this.history(e.node, e.lun).failed.add(e.tag);
        return;
      case 'host.ack':
        if (e.mode === 'sync' || e.mode === 'speculative') this.checkAckAfterApply(e);
        return;
      case 'target.lock':
        this.trackMirrorLock(e);
        return;
      case 'local.lock':
        if (e.result === 'granted') this.localLocks.set(`${e.node}|${e.id}`, e);
        else if (e.result === 'released') this.localLocks.delete(`${e.node}|${e.id}`);
        return;
      case 'target.apply':
        this.checkApply(e);
        return;
      case 'commit.confirm': {
        const key = `${e.node}|${e.peer}`;
        this.targetConfirmed.set(key, Math.max(this.targetConfirmed.get(key) ?? 0, e.upTo));
        return;
      }
      case 'rollback.confirm':
        this.checkRollbackConfirm(e);
        return;
      case 'firmware.error':
        this.flag('firmware-error', e.node, 0, 0, 0, e.t, `a statechart stopped on an exception: ${e.message}`);
        return;
      default:
        return;
    }
  }

  private trackMirrorLock(e: Extract<TelemetryEvent, { kind: 'target.lock' }>): void {
    const key = `${e.node}|${e.peer}|${e.lockId}`;
    if (e.result === 'granted') this.mirrorLocks.set(key, e);
    else if (e.result === 'released') this.mirrorLocks.delete(key);
  }

  private checkApply(e: Extract<TelemetryEvent, { kind: 'target.apply' }>): void {
    const lock = this.mirrorLocks.get(`${e.node}|${e.peer}|${e.lockId}`);
    if (!lock || lock.lun !== e.lun || e.lba < lock.lba || e.lba + e.count > lock.lba + lock.count) {
      const held = lock ? `lock ${e.lockId} covers LUN ${lock.lun} [${lock.lba}, +${lock.count})` : `lock ${e.lockId} is not held`;
      this.flag('lock-held', e.node, e.lun, e.lba, e.seq, e.t, `write of ${e.count} sectors (tag ${e.tag} from ${e.peer}) applied without its mirror lock: ${held}`);
    }
    for (const [key, local] of this.localLocks) {
      if (key.startsWith(`${e.node}|`) && overlaps(local, e.lun, e.lba, e.count)) {
        this.flag('lock-exclusive', e.node, e.lun, e.lba, e.seq, e.t, `mirrored write (tag ${e.tag} from ${e.peer}) applied while local lock ${key} holds [${local.lba}, +${local.count})`);
        break;
      }
    }
    let set = this.applied.get(e.peer);
    if (!set) this.applied.set(e.peer, (set = new Set()));
    set.add(e.tag);
  }

  private checkAckAfterApply(e: Extract<TelemetryEvent, { kind: 'host.ack' }>): void {
    if (this.applied.get(e.node)?.has(e.tag)) return;
    this.flag('ack-after-apply', e.node, e.lun, e.lba, e.tag, e.t, `host write tag ${e.tag} acknowledged in ${e.mode} mode before the target applied it`);
  }

  private checkRollbackConfirm(e: Extract<TelemetryEvent, { kind: 'rollback.confirm' }>): void {
    const confirmed = this.targetConfirmed.get(`${e.peer}|${e.node}`) ?? 0;
    if (e.upTo <= confirmed) return;
    this.flag('rollback-after-confirm', e.node, 0, 0, e.upTo, e.t, `rollback log to ${e.peer} dropped entries up to seq ${e.upTo}, but ${e.peer} has confirmed only up to ${confirmed}`);
  }

  private flag(invariant: InvariantName, node: string, lun: number, lba: number, seq: number, tMs: number, message: string): void {
    this.report({ invariant, node, lun, lba, seq, tMs, message });
  }
}
