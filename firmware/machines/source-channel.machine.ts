import { assign, setup } from 'xstate';

/**
 * The source mirror channel: the control state of one controller's stream of mirrored writes to one
 * peer (docs/design.md 1.1, 2.2, 2.9). The data path (`SourceChannel`: log append, encode, send,
 * cumulative acks) tells the chart only about edges — the stream went from quiet to sending and
 * back, a LOCK began or stopped waiting for its grant, the target refused a lock or NAKed, an ack
 * timed out, a connection was lost, a confirmation passed a point the chart asked to watch — so a
 * steady stream of writes costs no chart events. The chart decides what the data path may do.
 *
 * The episode's facts live in the context, set and cleared by the chart's own actions: the halted
 * lock (`halted`), where a rollback re-sends from and must be confirmed past (`rollbackPoint`), and
 * what was out when transmission resumed (`resumePoint`).
 *
 * States, and what each decides:
 * - `linkDown`: nothing is sent; writes queue in the rollback log (the link supervisor decides the
 *   link is down). When it comes back, whatever was sent and not confirmed is sent again.
 * - `idle`: nothing is outstanding, so no ack can be late; the first entry sent starts the stream.
 * - `speculativeSent`: entries are out unconfirmed, data racing ahead of its LOCK's grant; a NAK, an
 *   ack timeout or a lost connection rolls back to the failed entry.
 * - `lockPending`: a LOCK is out whose data waits for the grant (sync mode, read locks); if no grant
 *   comes within `grantProbe`, the LOCK is sent again to ask (a lost grant must not stall it).
 * - `halted`: the target refused a lock and holds it with what followed (halt-resume). Nothing is
 *   sent; everything stays in the rollback log. Every `haltProbe` the LOCK is re-sent to ask its
 *   status; its grant (or a confirmation past it, if the grant was lost) resumes.
 * - `resumed`: the halted lock was granted; the held-back entries drain. Leaves once everything that
 *   was out when it resumed is confirmed.
 * - `rollback`: go-back-N from the failed entry (`resending`); after a lock the target discarded
 *   (retransmit policy), first a pause of `lockRetry` (`backoff`). Leaves once the target has
 *   confirmed past the rollback point.
 * - `settling` (transient): an episode ended, or the link came back with nothing to re-send; go
 *   back to what the stream is doing: waiting for a grant, entries out, or nothing.
 */
export interface SourceChannelControl {
  readonly haltProbeMs: number;
  readonly lockRetryDelayMs: number;
  readonly grantProbeMs: number;
  /** The first unconfirmed entry (the rollback log's head). */
  headSeq(): number;
  /** The newest entry sent. */
  sentThrough(): number;
  /** Entries went out and were not confirmed. */
  hasSentUnconfirmed(): boolean;
  /** Anything is outstanding: entries in the log, open lock sessions, writes waiting for room. */
  isBusy(): boolean;
  /** A LOCK waits for its grant. */
  awaitsGrant(): boolean;
  setGate(open: boolean): void;
  /** Re-send from `seq` (go-back-N); the cause says what it means for the congestion window. */
  rollBack(seq: number, cause: 'nak' | 'timeout' | 'reconnect' | 'connection' | 'discarded'): void;
  /** Move the send cursor back to `seq` without sending (the gate is closed). */
  rewind(seq: number): void;
  /** Re-send the entry `seq`, if it is still unconfirmed (a status query for a halted or awaited LOCK). */
  probe(seq: number): void;
  /** Re-send the LOCK of the oldest session that waits for its grant. */
  probeAwaitedGrant(): void;
  /** Send `stream.confirmed` once the target has confirmed through `seq` (at once if it has). */
  watchConfirmed(seq: number): void;
  count(counter: 'halts' | 'resumes' | 'rollbacks' | 'ackTimeouts' | 'lockProbes'): void;
}

export type SourceChannelEvent =
  | { type: 'link.up' }
  | { type: 'link.down' }
  | { type: 'stream.restart' }
  | { type: 'stream.sent' }
  | { type: 'stream.drained' }
  | { type: 'grant.awaited' }
  | { type: 'grant.settled' }
  | { type: 'stream.confirmed'; upTo: number }
  | { type: 'target.lock.rejected'; seq: number; lockId: number; discarded: boolean }
  | { type: 'target.lock.granted'; lockId: number }
  | { type: 'target.nak'; expected: number }
  | { type: 'ack.timeout' }
  | { type: 'connection.lost'; fromSeq: number };

export interface SourceChannelContext {
  ctl: SourceChannelControl;
  /** The refused lock the channel is halted on, and its LOCK's sequence number. */
  halted: { lockId: number; seq: number } | null;
  /** The rollback re-sends from here and ends once the target has confirmed through it (0: none). */
  rollbackPoint: number;
  /** Transmission resumed with everything through here out; the episode ends once it is confirmed (0: none). */
  resumePoint: number;
}

/** Where a failure event says re-sending must start, never before the log's head. */
function failurePoint(ctl: SourceChannelControl, event: SourceChannelEvent): number {
  const head = ctl.headSeq();
  switch (event.type) {
    case 'target.nak':
      return Math.max(head, event.expected);
    case 'target.lock.rejected':
      return Math.max(head, event.seq);
    case 'connection.lost':
      return Math.max(head, event.fromSeq);
    default:
      return head;
  }
}

function failureCause(event: SourceChannelEvent): 'nak' | 'timeout' | 'reconnect' | 'connection' | 'discarded' {
  switch (event.type) {
    case 'target.nak':
      return 'nak';
    case 'ack.timeout':
      return 'timeout';
    case 'connection.lost':
      return 'connection';
    case 'target.lock.rejected':
      return 'discarded';
    default:
      return 'reconnect';
  }
}

/** After an episode: back to what the stream is doing now. */
const toActivity = [
  { guard: 'waitsForAGrant', target: '#source.lockPending' },
  { guard: 'hasOutstandingEntries', target: '#source.speculativeSent' },
  { target: '#source.idle' },
] as const;

/** An episode ends once a confirmation passes its point (`past`); until then the point stays watched. */
function endOfEpisode(past: 'confirmedPastTheResumePoint' | 'confirmedPastTheRollbackPoint', rewatch: 'watchResumePoint' | 'watchRollbackPoint') {
  return [{ guard: past, target: '#source.settling' }, { actions: rewatch }] as const;
}

const rollBackOnFailure = { target: '#source.rollback.resending', actions: ['markRollbackPoint', 'resendFromRollbackPoint', 'watchRollbackPoint'] } as const;

export const sourceChannelMachine = setup({
  types: {
    context: {} as SourceChannelContext,
    input: {} as { ctl: SourceChannelControl },
    events: {} as SourceChannelEvent,
  },
  actions: {
    openGate: ({ context }) => context.ctl.setGate(true),
    closeGate: ({ context }) => context.ctl.setGate(false),
    forgetEpisode: assign({ halted: null, rollbackPoint: 0, resumePoint: 0 }),
    haltAtRejectedLock: assign({
      halted: ({ event }) => (event.type === 'target.lock.rejected' ? { lockId: event.lockId, seq: event.seq } : null),
    }),
    countHalt: ({ context, event }) => {
      if (event.type === 'target.lock.rejected' && context.halted?.lockId !== event.lockId) context.ctl.count('halts');
    },
    watchHaltedLock: ({ context }) => {
      if (context.halted) context.ctl.watchConfirmed(context.halted.seq);
    },
    probeHaltedLock: ({ context }) => {
      if (!context.halted) return;
      context.ctl.count('lockProbes');
      context.ctl.probe(context.halted.seq);
    },
    probeAwaitedGrant: ({ context }) => context.ctl.probeAwaitedGrant(),
    markResumePoint: assign({
      halted: null,
      resumePoint: ({ context }) => Math.max(context.ctl.sentThrough(), context.ctl.headSeq()),
    }),
    resumeTransmission: ({ context }) => {
      context.ctl.count('resumes');
      context.ctl.setGate(true);
    },
    watchResumePoint: ({ context }) => context.ctl.watchConfirmed(context.resumePoint),
    forgetResumePoint: assign({ resumePoint: 0 }),
    markRollbackPoint: assign({
      rollbackPoint: ({ context, event }) => Math.max(context.rollbackPoint, failurePoint(context.ctl, event)),
    }),
    resendFromRollbackPoint: ({ context, event }) => {
      context.ctl.count('rollbacks');
      if (event.type === 'ack.timeout') context.ctl.count('ackTimeouts');
      context.ctl.rollBack(failurePoint(context.ctl, event), failureCause(event));
    },
    watchRollbackPoint: ({ context }) => context.ctl.watchConfirmed(context.rollbackPoint),
    forgetRollbackPoint: assign({ rollbackPoint: 0 }),
    rewindWhileHalted: ({ context, event }) => context.ctl.rewind(failurePoint(context.ctl, event)),
  },
  guards: {
    hasSentUnconfirmed: ({ context }) => context.ctl.hasSentUnconfirmed(),
    hasOutstandingEntries: ({ context }) => context.ctl.isBusy(),
    waitsForAGrant: ({ context }) => context.ctl.awaitsGrant(),
    lockWasDiscarded: ({ event }) => event.type === 'target.lock.rejected' && event.discarded,
    grantIsForTheHaltedLock: ({ context, event }) => event.type === 'target.lock.granted' && event.lockId === context.halted?.lockId,
    confirmedPastTheHaltedLock: ({ context, event }) => event.type === 'stream.confirmed' && context.halted !== null && event.upTo >= context.halted.seq,
    confirmedPastTheResumePoint: ({ context, event }) => event.type === 'stream.confirmed' && event.upTo >= context.resumePoint,
    confirmedPastTheRollbackPoint: ({ context, event }) => event.type === 'stream.confirmed' && event.upTo >= context.rollbackPoint,
  },
  delays: {
    haltProbe: ({ context }) => context.ctl.haltProbeMs,
    lockRetry: ({ context }) => context.ctl.lockRetryDelayMs,
    grantProbe: ({ context }) => context.ctl.grantProbeMs,
  },
}).createMachine({
  id: 'source',
  context: ({ input }) => ({ ctl: input.ctl, halted: null, rollbackPoint: 0, resumePoint: 0 }),
  initial: 'linkDown',
  on: {
    'link.down': { target: '.linkDown', actions: 'forgetEpisode' },
    'stream.restart': { target: '.linkDown', actions: 'forgetEpisode' },
    'target.lock.rejected': [
      { guard: 'lockWasDiscarded', target: '.rollback.backoff', actions: ['markRollbackPoint', 'resendFromRollbackPoint', 'watchRollbackPoint'] },
      { target: '.halted', actions: ['countHalt', 'haltAtRejectedLock', 'watchHaltedLock'] },
    ],
    'target.nak': rollBackOnFailure,
    'ack.timeout': rollBackOnFailure,
    'connection.lost': rollBackOnFailure,
  },
  states: {
    linkDown: {
      entry: 'closeGate',
      on: {
        'link.up': [{ guard: 'hasSentUnconfirmed', ...rollBackOnFailure }, { target: '#source.settling' }],
        'target.lock.rejected': {},
        'target.nak': {},
        'ack.timeout': {},
        'connection.lost': {},
      },
    },
    settling: { always: [...toActivity] },
    idle: {
      entry: 'openGate',
      on: { 'stream.sent': 'speculativeSent', 'grant.awaited': 'lockPending' },
    },
    speculativeSent: {
      entry: 'openGate',
      on: { 'stream.drained': 'idle', 'grant.awaited': 'lockPending' },
    },
    lockPending: {
      entry: 'openGate',
      after: { grantProbe: { target: 'lockPending', reenter: true, actions: 'probeAwaitedGrant' } },
      on: { 'grant.settled': [...toActivity], 'stream.drained': 'idle' },
    },
    halted: {
      entry: 'closeGate',
      after: { haltProbe: { target: 'halted', reenter: true, actions: 'probeHaltedLock' } },
      on: {
        'target.lock.granted': { guard: 'grantIsForTheHaltedLock', target: 'resumed' },
        'stream.confirmed': [{ guard: 'confirmedPastTheHaltedLock', target: 'resumed' }, { actions: 'watchHaltedLock' }],
        'target.nak': { actions: 'rewindWhileHalted' },
        'connection.lost': { actions: 'rewindWhileHalted' },
        'ack.timeout': {},
      },
    },
    resumed: {
      entry: ['markResumePoint', 'resumeTransmission', 'watchResumePoint'],
      exit: 'forgetResumePoint',
      on: { 'stream.confirmed': [...endOfEpisode('confirmedPastTheResumePoint', 'watchResumePoint')] },
    },
    rollback: {
      initial: 'resending',
      exit: 'forgetRollbackPoint',
      on: { 'stream.confirmed': [...endOfEpisode('confirmedPastTheRollbackPoint', 'watchRollbackPoint')] },
      states: {
        backoff: {
          entry: 'closeGate',
          after: { lockRetry: 'resending' },
        },
        resending: { entry: 'openGate' },
      },
    },
  },
});
