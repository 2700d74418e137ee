/** target ^= source, byte for byte (equal lengths). Word-wise when both are 4-byte aligned, as sector buffers are. */
export function xorInto(target: Uint8Array, source: Uint8Array): void {
  const n = target.length;
  if (n % 4 === 0 && target.byteOffset % 4 === 0 && source.byteOffset % 4 === 0) {
    const t = new Uint32Array(target.buffer, target.byteOffset, n / 4);
    const s = new Uint32Array(source.buffer, source.byteOffset, n / 4);
    for (let i = 0; i < t.length; i++) t[i]! ^= s[i]!;
    return;
  }
  for (let i = 0; i < n; i++) target[i]! ^= source[i]!;
}

/** The XOR of equal-length buffers (at least one), in a fresh buffer. */
export function xorAll(buffers: readonly Uint8Array[]): Uint8Array {
  const out = buffers[0]!.slice();
  for (let i = 1; i < buffers.length; i++) xorInto(out, buffers[i]!);
  return out;
}

/** True when every byte is zero. */
export function isZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}
