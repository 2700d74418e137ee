import type { TelemetrySource } from '../trace/merge.ts';

/**
 * Ties each `frame.received` to the `frame.sent` it came from more precisely than the merger's
 * rule alone can, when controllers restart (docs/rack.md 2). The merger names a frame by type,
 * seq, connection, length and CRC, and ties a receive to the *first* send of that identity: always
 * sound (that send happened before the receive), but after a restart the same identity recurs (an
 * ACK of seq 11 in the new stream is byte for byte the ACK of seq 11 in the old one), and a tie to
 * the old send proves nothing about the new one, so a correct acknowledgement would look unproven.
 *
 * Each side knows which incarnations a frame was between: a sender its own session and its view of
 * the peer's (the last `peerSession` its supervisor reported), a receiver its view of the sender's
 * session and its own. A receive is tied to the first send of the same identity whose two sessions
 * agree with the receiver's (a view not known yet agrees with any: the two sides learn each other's
 * session at different moments); when there is none (a HELLO sent before the new session was known),
 * to the first send of the identity, as the merger would. The tie is then written into both
 * events' `crc` (`CRC~N`, N the send's position), so the merger's own rule finds exactly it.
 * Lines that do not parse are passed on untouched, for the merger to report.
 */
export function tieFramesAcrossRestarts(sources: readonly TelemetrySource[]): TelemetrySource[] {
  const parsed = sources.map((s) => s.text.split('\n').map(parseLine));
  const sends = new Map<string, { own: string; view: string; token: string; event: Record<string, unknown> }[]>();
  let position = 0;
  parsed.forEach((events) => walkViews(events, (e, own, peerView) => {
    if (e.kind !== 'frame.sent') return;
    const key = identity(e.node, e.peer, e);
    const list = sends.get(key) ?? [];
    if (list.length === 0) sends.set(key, list);
    list.push({ own, view: peerView, token: `${String(e.crc)}~${position++}`, event: e });
  }));
  const used = new Set<Record<string, unknown>>();
  parsed.forEach((events) => walkViews(events, (e, own, peerView) => {
    if (e.kind !== 'frame.received') return;
    const list = sends.get(identity(e.peer, e.node, e));
    if (!list) return;
    // A view not yet known (before the first supervision report) is compatible with any session.
    const send = list.find((s) => (peerView === UNKNOWN || s.own === peerView) && (s.view === UNKNOWN || s.view === own)) ?? list[0]!;
    e.crc = send.token;
    used.add(send.event);
  }));
  for (const list of sends.values()) for (const s of list) if (used.has(s.event)) s.event.crc = s.token;
  return sources.map((s, i) => ({
    name: s.name,
    text: parsed[i]!.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join('\n'),
  }));
}

const UNKNOWN = '?';

function parseLine(text: string): Record<string, unknown> | string {
  if (!text.includes('"frame.') && !text.includes('"link.supervision"')) return text;
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : text;
  } catch {
    return text;
  }
}

function identity(from: unknown, to: unknown, e: Record<string, unknown>): string {
  return `${String(from)}>${String(to)}|${String(e.type)}|${String(e.seq)}|${String(e.conn)}|${String(e.bytes)}|${String(e.crc)}`;
}

/**
 * Walks one file's events in order, telling `visit` the event's own session (from its `proc`) and
 * its view of the peer's session at that point (null before its supervisor named one; reset at
 * each new incarnation).
 */
function walkViews(events: (Record<string, unknown> | string)[], visit: (e: Record<string, unknown>, own: string, peerView: string) => void): void {
  let proc = '';
  const views = new Map<string, string>();
  for (const e of events) {
    if (typeof e === 'string') continue;
    if (e.proc !== proc) {
      proc = String(e.proc);
      views.clear();
    }
    const own = proc.slice(proc.indexOf('/') + 1);
    if (e.kind === 'link.supervision' && e.peerSession !== undefined && e.peerSession !== null) views.set(String(e.peer), String(e.peerSession));
    visit(e, own, views.get(String(e.peer)) ?? UNKNOWN);
  }
}
