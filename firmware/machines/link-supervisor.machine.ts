import { setup } from 'xstate';

/**
 * The link supervisor: the one place that decides whether the link to a peer is up
 * (docs/link-supervision.md). Transports only move bytes and report connection errors; this chart
 * decides from heartbeats and the clock.
 *
 * The data path (`PeerLink`) keeps the connection array (per connection its state and when it was
 * last heard, refreshed by every heartbeat and every chunk of traffic) and sends a heartbeat every
 * heartbeat interval. It tells the chart only about edges: a heartbeat heard, a connection ready
 * (HELLO exchanged) or lost, the peer's session changed, the peer is incompatible. The chart's
 * timers are deadlines computed from when the peer was last heard, so detection is exact and costs
 * one chart event per suspicion interval while traffic flows.
 *
 * States, and what each decides:
 * - `connecting`: the data connections are wanted; the first one whose HELLOs are exchanged brings
 *   the link up. Connections that fail are asked for again every `connectRetry`. Silence past the
 *   interruption timeout means the peer is not there: `down`.
 * - `up`: data flows. A connection lost while others live is asked for again at once. When nothing
 *   has been heard for the suspicion time, the link becomes `suspect`.
 * - `suspect`: heartbeats go out with the Probe flag (answer at once); hearing anything returns to
 *   `up`; silence until the interruption timeout declares the link `down`.
 * - `down`: the data connections are closed and both channels told: writes queue in the rollback
 *   log. The first heartbeat heard again starts `probation`.
 * - `probation`: heartbeats must keep coming, never with a gap longer than the interruption
 *   timeout (a longer gap goes back to `down`, restarting probation at the next heartbeat), for the
 *   whole probationary interval; only then are the connections re-established (`connecting`), and
 *   the queue drains once they are.
 * - From any state, a changed peer session (the peer restarted) goes `down`: the old connections
 *   belong to the old session, and both streams start afresh before anything more is exchanged.
 */
export interface LinkSupervisorControl {
  readonly heartbeatMs: number;
  readonly suspectMs: number;
  readonly interruptionMs: number;
  readonly probationMs: number;
  readonly connectRetryMs: number;
  /** Milliseconds since the peer was last heard (a heartbeat or traffic); Infinity if never. */
  silentForMs(): number;
  openConnections(): void;
  closeConnections(): void;
  /** Ask again for a connection the transport lost while the link is up. */
  reopenConnection(conn: number): void;
  /** The link is up: tell both channels (the source gets the peer's HELLO). */
  announceUp(): void;
  /** The link is down: tell both channels; whatever they send waits. */
  announceDown(reason: string): void;
  setProbing(on: boolean): void;
  /** The peer restarted: both streams with it start again (sequence numbers from 1), and its mirrors need resynchronising. */
  startNewStreams(): void;
  /** Telemetry and counters for the chart's episodes. */
  report(event: 'suspect' | 'probation.start' | 'probation.restart' | 'probation.passed', detail: string): void;
}

export type LinkSupervisorEvent =
  | { type: 'heartbeat.heard' }
  | { type: 'connection.ready'; conn: number }
  | { type: 'connection.lost'; conn: number; reason: string }
  | { type: 'peer.restarted' }
  | { type: 'peer.incompatible'; reason: string };

/** Timer slack: a deadline computed from the clock fires exactly at it; this absorbs float rounding. */
const EPSILON_MS = 1e-6;

export const linkSupervisorMachine = setup({
  types: {
    context: {} as { ctl: LinkSupervisorControl },
    input: {} as { ctl: LinkSupervisorControl },
    events: {} as LinkSupervisorEvent,
  },
  actions: {
    openConnections: ({ context }) => context.ctl.openConnections(),
    closeConnections: ({ context }) => context.ctl.closeConnections(),
    reopenLostConnection: ({ context, event }) => {
      if (event.type === 'connection.lost') context.ctl.reopenConnection(event.conn);
    },
    announceLinkUp: ({ context }) => context.ctl.announceUp(),
    announceSilence: ({ context }) => context.ctl.announceDown(`nothing heard for ${context.ctl.interruptionMs} ms`),
    announcePeerRestart: ({ context }) => context.ctl.announceDown('the peer restarted (its session changed)'),
    announceIncompatible: ({ context, event }) => {
      if (event.type === 'peer.incompatible') context.ctl.announceDown(`incompatible peer: ${event.reason}`);
    },
    startProbing: ({ context }) => {
      context.ctl.setProbing(true);
      context.ctl.report('suspect', `nothing heard for ${context.ctl.suspectMs} ms`);
    },
    stopProbing: ({ context }) => context.ctl.setProbing(false),
    startNewStreams: ({ context }) => context.ctl.startNewStreams(),
    startProbation: ({ context }) => context.ctl.report('probation.start', `heartbeats heard again; ${context.ctl.probationMs} ms of them before reconnecting`),
    restartProbation: ({ context }) => context.ctl.report('probation.restart', `a heartbeat gap longer than ${context.ctl.interruptionMs} ms during probation`),
    passProbation: ({ context }) => context.ctl.report('probation.passed', `${context.ctl.probationMs} ms of clean heartbeats`),
  },
  guards: {
    silentForSuspicionTime: ({ context }) => context.ctl.silentForMs() + EPSILON_MS >= context.ctl.suspectMs,
    silentPastInterruption: ({ context }) => context.ctl.silentForMs() + EPSILON_MS >= context.ctl.interruptionMs,
  },
  delays: {
    /** When the suspicion time runs out if nothing more is heard. */
    suspicionDeadline: ({ context }) => Math.max(0, context.ctl.suspectMs - context.ctl.silentForMs()),
    /** When the interruption timeout runs out if nothing more is heard. */
    interruptionDeadline: ({ context }) => Math.max(0, context.ctl.interruptionMs - context.ctl.silentForMs()),
    /** A heartbeat gap this long restarts probation. */
    heartbeatGapMax: ({ context }) => context.ctl.interruptionMs,
    probation: ({ context }) => context.ctl.probationMs,
    connectRetry: ({ context }) => context.ctl.connectRetryMs,
  },
}).createMachine({
  id: 'link',
  context: ({ input }) => ({ ctl: input.ctl }),
  initial: 'connecting',
  on: {
    'peer.restarted': { target: '.down', actions: ['announcePeerRestart', 'startNewStreams'] },
    'peer.incompatible': { target: '.down', actions: 'announceIncompatible' },
  },
  states: {
    connecting: {
      entry: 'openConnections',
      initial: 'asking',
      states: {
        asking: { after: { connectRetry: { target: 'asking', reenter: true, actions: 'openConnections' } } },
      },
      after: {
        interruptionDeadline: [
          { guard: 'silentPastInterruption', target: 'down', actions: 'announceSilence' },
          { target: 'connecting', reenter: true },
        ],
      },
      on: { 'connection.ready': { target: 'up', actions: 'announceLinkUp' } },
    },
    up: {
      after: {
        suspicionDeadline: [
          { guard: 'silentForSuspicionTime', target: 'suspect' },
          { target: 'up', reenter: true },
        ],
      },
      on: { 'connection.lost': { actions: 'reopenLostConnection' } },
    },
    suspect: {
      entry: 'startProbing',
      exit: 'stopProbing',
      after: {
        interruptionDeadline: [
          { guard: 'silentPastInterruption', target: 'down', actions: 'announceSilence' },
          { target: 'up' },
        ],
      },
      on: {
        'heartbeat.heard': 'up',
        'connection.lost': { actions: 'reopenLostConnection' },
      },
    },
    down: {
      entry: 'closeConnections',
      on: { 'heartbeat.heard': 'probation' },
    },
    probation: {
      entry: 'startProbation',
      initial: 'clean',
      states: {
        clean: {
          after: { heartbeatGapMax: { target: '#link.down', actions: 'restartProbation' } },
          on: { 'heartbeat.heard': { target: 'clean', reenter: true } },
        },
      },
      after: { probation: { target: 'connecting', actions: 'passProbation' } },
    },
  },
});
