/**
 * The 8-byte connection preamble a live link's connect side sends first on every TCP connection
 * (agreed with the live links: ASCII `MLLK`, version 1, the slot index, the number of connections,
 * a zero byte). The proxy relays it untouched, whatever it says (judging it is the listener's
 * job), and reads it only to name the channel: connection slot k.
 */
export const PREAMBLE_BYTES = 8;
const MAGIC = [0x4d, 0x4c, 0x4c, 0x4b];
const VERSION = 1;

export interface Preamble {
  slot: number;
  connections: number;
}

/** The slot and count a well-formed preamble names, or null for anything else. */
export function readPreamble(bytes: Uint8Array): Preamble | null {
  if (bytes.length < PREAMBLE_BYTES) return null;
  for (let i = 0; i < MAGIC.length; i++) if (bytes[i] !== MAGIC[i]) return null;
  if (bytes[4] !== VERSION || bytes[7] !== 0) return null;
  const slot = bytes[5]!;
  const connections = bytes[6]!;
  return connections >= 1 && slot < connections ? { slot, connections } : null;
}

/** A preamble for slot `slot` of `connections` (tests, and a client of the proxy's own). */
export function writePreamble(slot: number, connections: number): Uint8Array {
  return Uint8Array.from([...MAGIC, VERSION, slot, connections, 0]);
}
