/** `opts` without its undefined fields, so that spreading it over defaults keeps the defaults. */
export function definedOnly<T extends object>(opts: T): Partial<T> {
  return Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as Partial<T>;
}
