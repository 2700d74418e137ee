/** A held or awaited range; `waiters` is made only when someone waits (the uncontended path allocates less). */
interface Entry {
  start: number;
  end: number;
  waiters: (() => void)[] | null;
}

/** What {@link RangeLock.acquire} hands back: wait for `ready` (if not null), work, then `release()`. */
export interface RangeLease {
  /** Null when nothing overlapping was ahead: the holder may go on synchronously. */
  readonly ready: Promise<void> | null;
  release(): void;
}

/**
 * Exclusive locks on half-open integer ranges `[start, end)`, granted in the order asked for:
 * a request waits for every earlier request that overlaps it, held or still waiting. Fair (no
 * starvation), deadlock-free (one only ever waits on earlier ones), and overlapping updates take
 * effect in issue order. RAID arrays lock stripes and regions with it; the file disk, sectors.
 *
 * The number of entries is bounded by the requests in flight, which whoever issues them bounds.
 */
export class RangeLock {
  private readonly entries = new Set<Entry>();

  get size(): number {
    return this.entries.size;
  }

  acquire(start: number, end: number): RangeLease {
    const entry: Entry = { start, end, waiters: null };
    const ahead: Entry[] = [];
    for (const e of this.entries) if (e.start < end && start < e.end) ahead.push(e);
    this.entries.add(entry);
    const release = (): void => {
      if (!this.entries.delete(entry)) return;
      if (entry.waiters !== null) for (const wake of entry.waiters) wake();
    };
    if (ahead.length === 0) return { ready: null, release };
    const ready = new Promise<void>((resolve) => {
      let pending = ahead.length;
      const wake = (): void => {
        if (--pending === 0) resolve();
      };
      for (const e of ahead) (e.waiters ??= []).push(wake);
    });
    return { ready, release };
  }

  /** Runs `fn` holding `[start, end)`. */
  async with<T>(start: number, end: number, fn: () => Promise<T>): Promise<T> {
    const lease = this.acquire(start, end);
    try {
      if (lease.ready !== null) await lease.ready;
      return await fn();
    } finally {
      lease.release();
    }
  }
}
