import type { PeerStatus } from '../../firmware/controller/storage-controller.ts';
import type { LiveLinkStats } from '../transports/live-link.ts';

/**
 * What `mirrorlab status` shows and the control socket's `status` answers
 * (docs/controller-process.md 6): the whole state of one controller process, as plain JSON.
 */
export interface ControllerStatus {
  name: string;
  id: number;
  /** This start's session id (a restart draws a new one). */
  session: number;
  pid: number;
  state: 'running' | 'stopping';
  startedAt: string;
  uptimeMs: number;
  onLockReject: string;
  control: string;
  telemetry: { target: string | null; events: number; lost: number };
  hostWritesInFlight: number;
  frontEnds: { kind: string; address: string; connections: number; inFlight: number }[];
  luns: {
    lun: number;
    role: 'primary' | 'replica' | 'local';
    peer: string | null;
    mode: string | null;
    volume: string;
    sectorSize: number;
    sectorCount: number;
  }[];
  lockTable: { locks: number; rejections: number; localWaiting: number };
  /** Every statechart and its state: `source:A->B`, `target:A<-B`, `link:A-B`. */
  charts: Record<string, string>;
  chartEvents: number;
  peers: (PeerStatus & { linkSpec: string; transport: LiveLinkStats | null })[];
  /** A firmware error that stopped a chart, or null. */
  firmwareError: string | null;
}

const n = (v: number): string => v.toLocaleString('en-US');

/** The status as text for a terminal: one block per part, the most telling figures first. */
export function renderStatus(s: ControllerStatus): string {
  const lines: string[] = [];
  const uptime = (s.uptimeMs / 1000).toFixed(1);
  lines.push(`controller ${s.name} (id ${s.id}, pid ${s.pid}) ${s.state}, up ${uptime} s, session ${s.session}`);
  if (s.firmwareError) lines.push(`  FIRMWARE ERROR: ${s.firmwareError.split('\n')[0]}`);
  lines.push(`  control ${s.control}; telemetry ${s.telemetry.target ?? 'off'} (${n(s.telemetry.events)} events${s.telemetry.lost > 0 ? `, ${n(s.telemetry.lost)} lost` : ''})`);
  lines.push(`  host writes in flight ${s.hostWritesInFlight}; lock table ${s.lockTable.locks} locks, ${s.lockTable.rejections} rejection records, ${s.lockTable.localWaiting} local waiting`);
  lines.push('volumes:');
  for (const l of s.luns) {
    const what = l.role === 'primary' ? `primary, mirrored to ${l.peer} (${l.mode})` : l.role === 'replica' ? `replica of ${l.peer}` : 'local';
    lines.push(`  LUN ${l.lun}  ${l.volume}  ${n(l.sectorCount)} x ${l.sectorSize} B  ${what}`);
  }
  lines.push('charts:');
  for (const [chart, state] of Object.entries(s.charts)) lines.push(`  ${chart.padEnd(24)} ${state}`);
  for (const p of s.peers) {
    lines.push(`peer ${p.peer} (${p.linkSpec}):`);
    const conns = p.link.connections.map((c) => `${c.conn}:${c.state}`).join(' ');
    lines.push(`  link ${p.link.state}, peer session ${p.link.peerSession || 'unknown'}, connections ${conns}`);
    const lc = p.link.counters;
    lines.push(`  heartbeats ${n(lc.heartbeatsSent)} sent / ${n(lc.heartbeatsReceived)} heard; frames in ${n(lc.framesIn)} (${n(lc.bytesIn)} B), errors ${n(lc.frameErrors)}; downs ${lc.downs}, reconnects ${lc.reconnects}, peer restarts ${lc.peerRestarts}`);
    if (p.source) {
      const r = p.source.rollbackLog;
      lines.push(`  source ${p.source.state}: rollback log ${n(r.entries)} entries, ${n(r.bytes)} B, ${n(r.waiting)} waiting; ${p.source.openSessions} lock sessions open`);
      const sc = p.source.counters;
      lines.push(`    writes confirmed ${n(sc.writesConfirmed)}, locks granted ${n(sc.locksGranted)}, rejected ${n(sc.locksRejected)}, NAKs ${n(sc.naksReceived)}, streams ${sc.streamsStarted}`);
    }
    const c = p.target.commitLog;
    lines.push(`  target ${p.target.state}: commit log ${n(c.entries)} entries, ${n(c.bytes)} B, ${p.target.heldEarly} held early`);
    for (const m of p.mirrors) lines.push(mirrorLine(m));
    const rt = p.resyncTarget;
    if (rt.tableRequests > 0) lines.push(`  resyncs of ${p.peer}'s mirrors: ${n(rt.tableRequests)} table requests answered, ${n(rt.tableEntriesSent)} entries sent, ${n(rt.resyncsSettled)} settled`);
    if (p.transport) {
      const t = p.transport;
      const sent = t.connections.reduce((sum, c) => sum + c.bytesSent, 0);
      const received = t.connections.reduce((sum, c) => sum + c.bytesReceived, 0);
      lines.push(`  transport ${t.description}: ${n(sent)} B sent, ${n(received)} B received, ${t.connects} connects (${t.reconnects} reconnects), heartbeat datagrams ${n(t.datagrams.sent)} sent / ${n(t.datagrams.received)} received`);
    }
  }
  for (const f of s.frontEnds) lines.push(`front end ${f.kind} at ${f.address}: ${f.connections} connections, ${f.inFlight} requests in flight`);
  return lines.join('\n');
}

/**
 * One mirror's line: its state, how far a resync under way has come, and what its resyncs did
 * (docs/tag-tables.md, "Resync").
 */
export function mirrorLine(m: PeerStatus['mirrors'][number]): string {
  const r = m.resync;
  const progress = m.state === 'resyncing' ? ` (${n(m.doneSectors)} of ${n(m.totalSectors)} sectors)` : '';
  const runs = r.runs === 0 ? '' : `; resyncs ${n(r.runs)} (${n(r.fullRuns)} full, ${n(r.aborts)} stopped early), ${n(r.sectorsCopied)} sectors copied, `
    + `${n(r.entriesCompared)} tag entries compared, ${n(r.entriesMatched)} matched`;
  const why = m.lastRefusal === null ? '' : `; the peer's table was last refused: ${m.lastRefusal}`;
  return `  mirror LUN ${m.lun}: ${m.state}${progress}${runs}${why}`;
}
