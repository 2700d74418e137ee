import type { MergedEvent, MergeResult } from '../trace/merge.ts';

/**
 * One order of the merged events that respects every happens-before edge of the merge (local
 * order, send before receive) and places the events of `preferred` as early as those edges allow
 * (docs/rack.md 2). Every event of another source placed before an event `e` of `preferred` then
 * happened before `e`: another source's events are placed only while `preferred` waits for a
 * receive whose send is among them. So a checker fed this order sees a target's apply before the
 * source's host acknowledgement (or its commit confirmation before the source's rollback
 * confirmation) only when the telemetry proves it came first; mere wall-clock luck cannot hide a
 * source that acknowledged too early. Among the other sources, the earliest wall stamp goes first.
 *
 * A receive whose send cannot be placed before it (the merge reported a cycle) waits at most
 * until nothing else can go; then it goes by local order, as the merge did.
 */
export function linearize(merged: MergeResult, preferred: number): MergedEvent[] {
  const n = merged.sources.length;
  const streams: MergedEvent[][] = Array.from({ length: n }, () => []);
  for (const m of merged.events) streams[m.source]!.push(m);
  const placed = new Set<MergedEvent>();
  const next = new Array<number>(n).fill(0);
  const out: MergedEvent[] = [];
  const ready = (s: number): boolean => {
    const m = streams[s]![next[s]!]!;
    return m.sentAt === null || placed.has(merged.events[m.sentAt]!);
  };
  const take = (s: number): void => {
    const m = streams[s]![next[s]!++]!;
    placed.add(m);
    out.push(m);
  };
  for (;;) {
    const open = [...Array(n).keys()].filter((s) => next[s]! < streams[s]!.length);
    if (open.length === 0) return out;
    if (open.includes(preferred) && ready(preferred)) {
      take(preferred);
      continue;
    }
    const candidates = open.filter(ready);
    const pool = candidates.length > 0 ? candidates : open;
    let pick = pool[0]!;
    for (const s of pool) if (streams[s]![next[s]!]!.event.wall < streams[pick]![next[pick]!]!.event.wall) pick = s;
    take(pick);
  }
}
