import type { Random } from '../ports/random.ts';

/** A fresh session id: 53 random bits, never 0 (0 means "no session known"). */
export function drawSessionId(random: Random): number {
  const high = random.int(2 ** 21);
  const low = random.uint32();
  return high * 2 ** 32 + low || 1;
}

/** How many of a peer's earlier sessions are remembered, so their late frames are recognised as stale. */
const RETIRED_SESSIONS_MAX = 8;

export type SessionVerdict = 'current' | 'first' | 'restarted' | 'stale';

/**
 * What one controller knows of a peer's sessions (docs/link-supervision.md, "Session identity").
 * Every controller start draws a new session id and sends it in HELLO and every heartbeat. The
 * first session heard is adopted; a different one later means the peer restarted; a frame from a
 * session already replaced is stale (a late datagram of the old incarnation) and is ignored, so a
 * reordered heartbeat can never make the peer look as if it restarted twice.
 */
export class PeerSessions {
  private known = 0;
  private readonly retired: number[] = [];
  private restarts = 0;

  /** The peer's current session, 0 if none was heard yet. */
  get current(): number {
    return this.known;
  }

  /** The peer restarted at least once since this controller first heard it. */
  get restarted(): boolean {
    return this.restarts > 0;
  }

  /** Classify a session heard from the peer, adopting it if it is new. */
  observe(session: number): SessionVerdict {
    if (session === this.known) return 'current';
    if (this.retired.includes(session)) return 'stale';
    if (this.known === 0) {
      this.known = session;
      return 'first';
    }
    this.retired.push(this.known);
    if (this.retired.length > RETIRED_SESSIONS_MAX) this.retired.shift();
    this.known = session;
    this.restarts++;
    return 'restarted';
  }
}
