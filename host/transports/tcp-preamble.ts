/**
 * The 8 bytes that open every TCP data connection of a live link, before any firmware byte
 * (docs/live-links.md 2): the connect side's **preamble** names the slot the connection is for,
 * and the listen side's **acceptance** says it took it. They are what TCP's handshake is to a
 * socket: a connection counts as open (`opened(k)` at both ends) only once both ends want it.
 *
 *   preamble    'M' 'L' 'L' 'K'  version  slot  connections  0
 *   acceptance  'm' 'l' 'l' 'a'  version  slot  connections  0
 *
 * The acceptance holds no byte pair 0x4d 0x4c (the frame magic 'ML'), so a frame decoder in a
 * proxy between the ends skips it as noise at once instead of waiting for a 48-byte header.
 */
export const PREAMBLE_BYTES = 8;
export const PREAMBLE_VERSION = 1;
/** Slots are one byte: a link carries at most this many data connections. */
export const PREAMBLE_CONNECTIONS_MAX = 255;

const PREAMBLE_MAGIC = [0x4d, 0x4c, 0x4c, 0x4b] as const; // 'MLLK'
const ACCEPT_MAGIC = [0x6d, 0x6c, 0x6c, 0x61] as const; // 'mlla'

function encode(magic: readonly number[], slot: number, connections: number): Uint8Array {
  const countOk = Number.isInteger(connections) && connections >= 1 && connections <= PREAMBLE_CONNECTIONS_MAX;
  if (!countOk || !Number.isInteger(slot) || slot < 0 || slot >= connections) {
    throw new RangeError(`a preamble names slot 0 to connections - 1 of 1 to ${PREAMBLE_CONNECTIONS_MAX} connections, got slot ${slot} of ${connections}`);
  }
  return Uint8Array.of(magic[0]!, magic[1]!, magic[2]!, magic[3]!, PREAMBLE_VERSION, slot, connections, 0);
}

/** What the connect side sends first on the connection for `slot`. */
export function encodePreamble(slot: number, connections: number): Uint8Array {
  return encode(PREAMBLE_MAGIC, slot, connections);
}

/** What the listen side answers once it takes the connection for `slot`. */
export function encodeAcceptance(slot: number, connections: number): Uint8Array {
  return encode(ACCEPT_MAGIC, slot, connections);
}

const hex = (b: Uint8Array): string => Array.from(b.subarray(0, PREAMBLE_BYTES), (x) => x.toString(16).padStart(2, '0')).join(' ');

/** Why 8 bytes are not `magic` for a link of `connections`, or null. `what` names them in the reason. */
function problem(b: Uint8Array, magic: readonly number[], connections: number, what: string): string | null {
  if (b.length < PREAMBLE_BYTES) return `the ${what} is ${b.length} bytes, not ${PREAMBLE_BYTES}`;
  if (magic.some((m, i) => b[i] !== m)) {
    return `the ${what} does not start with ${String.fromCharCode(...magic)} (got ${hex(b)}): not a mirrorlab link`;
  }
  if (b[4] !== PREAMBLE_VERSION) return `the ${what} is version ${b[4]}, this end speaks version ${PREAMBLE_VERSION}`;
  if (b[6] !== connections) return `the ${what} is for a link of ${b[6]} connections, this end has ${connections}`;
  if (b[5]! >= connections) return `the ${what} names slot ${b[5]}, which is not 0 to ${connections - 1}`;
  if (b[7] !== 0) return `the ${what}'s last byte is ${b[7]}, not 0`;
  return null;
}

/** The slot a valid preamble names, or the reason it is not valid for a listener of `connections`. */
export function readPreamble(b: Uint8Array, connections: number): { slot: number } | { problem: string } {
  const p = problem(b, PREAMBLE_MAGIC, connections, 'preamble');
  return p === null ? { slot: b[5]! } : { problem: p };
}

/** Why `b` is not the acceptance of `slot` on a link of `connections`, or null. */
export function acceptanceProblem(b: Uint8Array, slot: number, connections: number): string | null {
  const p = problem(b, ACCEPT_MAGIC, connections, 'acceptance');
  if (p !== null) return p;
  return b[5] === slot ? null : `the acceptance is for slot ${b[5]}, this connection asked for slot ${slot}`;
}
