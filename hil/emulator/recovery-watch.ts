import type { Telemetry } from '../../firmware/ports/telemetry.ts';
import type { MirrorSyncState, TelemetryEvent } from '../../firmware/telemetry/events.ts';

/** A mirror by its source controller, its target and its LUN. */
export interface WatchedMirror {
  source: string;
  target: string;
  lun: number;
}

/**
 * Whether each mirror's target may be held to the async prefix rule right now (docs/tag-tables.md,
 * "What the checker checks"), from telemetry: not while a resync is due or copying (it copies
 * blocks in address order, not in the order they were written), and not from a crash of either
 * side (a power cut may have lost any of the target's cached writes) until a resync has finished
 * after the crashed controller started again. A suspended mirror's target is frozen where its
 * stream stopped, a prefix like any other. `recovered()` says once when a mirror has just come
 * back, so that a write-order checkpoint follows at once.
 */
export class RecoveryWatch implements Telemetry {
  readonly enabled = true;
  private readonly state = new Map<string, MirrorSyncState>();
  /** Mirrors struck by a crash: `crashed` until the crashed side starts again, then `restarted` until a resync finishes. */
  private readonly crashed = new Map<string, 'crashed' | 'restarted'>();
  private justRecovered = false;

  constructor(private readonly mirrors: readonly WatchedMirror[]) {}

  emit(e: TelemetryEvent): void {
    switch (e.kind) {
      case 'controller.crash':
        for (const m of this.involving(e.node)) this.crashed.set(key(m.source, m.lun), 'crashed');
        return;
      case 'controller.start':
        for (const m of this.involving(e.node)) {
          const k = key(m.source, m.lun);
          if (this.crashed.get(k) === 'crashed') this.crashed.set(k, 'restarted');
        }
        return;
      case 'mirror.state':
        this.change(key(e.node, e.lun), e.state === 'in-sync', () => this.state.set(key(e.node, e.lun), e.state));
        return;
      case 'resync.done':
        this.change(key(e.node, e.lun), true, () => undefined);
        return;
      default:
        return;
    }
  }

  /** Every mirror's target holds a prefix of its source's writes, if the firmware is right. */
  holds(): boolean {
    return this.mirrors.every((m) => this.heldFor(key(m.source, m.lun)));
  }

  /** True once after some mirror came back to where the prefix rule holds again. */
  recovered(): boolean {
    const r = this.justRecovered;
    this.justRecovered = false;
    return r;
  }

  private involving(node: string): WatchedMirror[] {
    return this.mirrors.filter((m) => m.source === node || m.target === node);
  }

  /** Applies `update` to mirror `k`; a finished resync (`done`) ends a crash's recovery once the crashed side is back. */
  private change(k: string, done: boolean, update: () => void): void {
    const was = this.heldFor(k);
    update();
    if (done && this.crashed.get(k) === 'restarted') this.crashed.delete(k);
    if (!was && this.heldFor(k)) this.justRecovered = true;
  }

  private heldFor(k: string): boolean {
    const s = this.state.get(k) ?? 'in-sync';
    return !this.crashed.has(k) && (s === 'in-sync' || s === 'suspended');
  }
}

const key = (source: string, lun: number): string => `${source}|${lun}`;
