import type { Telemetry } from '../../firmware/ports/telemetry.ts';
import type { MirrorTable, MirrorTables } from '../../firmware/tags/mirror-tables.ts';
import { TagTable, type MirrorRole } from '../../firmware/tags/tag-table.ts';
import type { TelemetryEvent } from '../../firmware/telemetry/events.ts';

type Node = 'A' | 'B';

/** One table and whether it is trusted (a test may say it is not: lost in a restart without metadata). */
class BookTable implements MirrorTable {
  readonly table: TagTable;
  trusted = true;
  constructor(entriesMax: number) {
    this.table = new TagTable(entriesMax);
  }
}

/**
 * A stand-in for the tag tables the firmware will keep itself (docs/tag-tables.md, "Tag tables"),
 * for resync tests: it keeps each controller's tables by watching telemetry, as an idealised
 * bookkeeper with perfectly durable metadata would (its tables survive a crash of either side).
 *
 * - The source of a mirror enters a write when the write is issued (`host.write`), the target when
 *   it applies it (`target.apply`); a resync's copies (tag 0) are no one's write.
 * - When the source's stream confirms a write (`rollback.confirm` through the write's entry), both
 *   sides delete its entry at once: tokens that are never lost.
 *
 * `mirrors` says which LUN each controller mirrors to which peer (A's LUN 0 to B; bidirectional,
 * B's LUN 1 to A), as the emulator's topology builds them.
 */
export class TagBook {
  private readonly tables = new Map<string, BookTable>();
  /** Per controller and peer: the tag of each write entry of its source stream, by sequence number. */
  private readonly streams = new Map<string, Map<number, number>>();

  constructor(private readonly mirrors: Readonly<Record<Node, Readonly<Record<number, Node>>>>, private readonly entriesMax = 1 << 20) {}

  /** The tables of controller `node`, as its port (docs/tag-tables.md). */
  tablesOf(node: Node): MirrorTables {
    return (peer, lun, role) => this.ref(node, peer as Node, lun, role);
  }

  /** One table (made empty on first use). */
  ref(node: Node, peer: Node, lun: number, role: MirrorRole): BookTable {
    const key = `${node}/${peer}/${lun}/${role}`;
    let t = this.tables.get(key);
    if (t === undefined) this.tables.set(key, (t = new BookTable(this.entriesMax)));
    return t;
  }

  /** Telemetry that feeds the book, then `next`. */
  tap(next: Telemetry): Telemetry {
    return { enabled: true, emit: (e) => { this.emit(e); next.emit(e); } };
  }

  emit(e: TelemetryEvent): void {
    const node = e.node as Node;
    switch (e.kind) {
      case 'host.write': {
        const peer = this.mirrors[node]?.[e.lun];
        if (peer !== undefined && e.tag !== 0) this.ref(node, peer, e.lun, 'source').table.add({ tag: e.tag, lun: e.lun, lba: e.lba, count: e.count });
        return;
      }
      case 'target.apply':
        if (e.tag !== 0) this.ref(node, e.peer as Node, e.lun, 'target').table.add({ tag: e.tag, lun: e.lun, lba: e.lba, count: e.count });
        return;
      case 'rollback.append':
        if (e.entry === 'write' && e.tag !== 0) this.stream(node, e.peer).set(e.seq, e.tag);
        return;
      case 'rollback.confirm':
        return this.confirmed(node, e.peer as Node, e.upTo);
      case 'stream.start':
        // A new stream numbers what it re-sends afresh; a restarted controller's old stream is gone.
        if (e.role === 'source') this.stream(node, e.peer).clear();
        return;
      default:
    }
  }

  private confirmed(node: Node, peer: Node, upTo: number): void {
    const stream = this.stream(node, peer);
    for (const [seq, tag] of stream) {
      if (seq > upTo) continue;
      stream.delete(seq);
      for (const [lun, to] of Object.entries(this.mirrors[node] ?? {})) {
        if (to !== peer) continue;
        this.ref(node, peer, Number(lun), 'source').table.delete(tag);
        this.ref(peer, node, Number(lun), 'target').table.delete(tag);
      }
    }
  }

  private stream(node: string, peer: string): Map<number, number> {
    const key = `${node}->${peer}`;
    let s = this.streams.get(key);
    if (s === undefined) this.streams.set(key, (s = new Map()));
    return s;
  }
}
