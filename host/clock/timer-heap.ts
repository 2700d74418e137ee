/** A pending timer: due at `at` (integer ns); `id` breaks ties so equal times fire in set order. */
export interface TimerEntry {
  at: number;
  id: number;
  fn: (() => void) | null;
  /** For {@link HostClock.settle}: virtual time waits until this settles before the timer fires. */
  wait: Promise<unknown> | null;
}

/** A binary min-heap of timers ordered by (at, id). Cancelled entries are removed lazily. */
export class TimerHeap {
  private items: TimerEntry[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): TimerEntry | undefined {
    return this.items[0];
  }

  push(entry: TimerEntry): void {
    const items = this.items;
    items.push(entry);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      if (!before(entry, p)) break;
      items[i] = p;
      i = parent;
    }
    items[i] = entry;
  }

  pop(): TimerEntry | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    const n = items.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && before(items[r]!, items[l]!) ? r : l;
      if (!before(items[c]!, last)) break;
      items[i] = items[c]!;
      i = c;
    }
    items[i] = last;
    return top;
  }
}

function before(a: TimerEntry, b: TimerEntry): boolean {
  return a.at < b.at || (a.at === b.at && a.id < b.id);
}
