/**
 * Waits until every one of `ops` has settled, then returns their values or throws the first
 * rejection (in the order given). For fan-outs that hold something (a stripe lock, a buffer, the
 * caller's attention) until they are done: `Promise.all` rejects at the first failure while the
 * others still run, and whatever its caller releases then is released under running I/O.
 */
export async function settleAll<T>(ops: readonly Promise<T>[]): Promise<T[]> {
  const outcomes = await Promise.allSettled(ops);
  const values: T[] = new Array<T>(outcomes.length);
  for (let k = 0; k < outcomes.length; k++) {
    const outcome = outcomes[k]!;
    if (outcome.status === 'rejected') throw outcome.reason;
    values[k] = outcome.value;
  }
  return values;
}
