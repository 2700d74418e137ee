import { open, type FileHandle } from 'node:fs/promises';

/**
 * An `openFile` for FileDisk that counts the durability barriers (`sync`, `datasync`) that
 * completed on the handles it opened: the contract's flush case checks a flush really reaches
 * the file, which reading the data back cannot show.
 */
export function syncSpy(): { openFile: (path: string, flags: string) => Promise<FileHandle>; syncs: () => number } {
  let syncs = 0;
  const wrap = (handle: FileHandle): FileHandle => new Proxy(handle, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      if (prop === 'sync' || prop === 'datasync') {
        return async () => {
          await (value as () => Promise<void>).call(target);
          syncs++;
        };
      }
      return (value as (...args: unknown[]) => unknown).bind(target);
    },
  });
  return { openFile: async (path, flags) => wrap(await open(path, flags)), syncs: () => syncs };
}
