import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/** Tries to find a port free for both TCP and UDP before giving up. */
const TRIES_MAX = 32;

/**
 * A port on 127.0.0.1 free for both TCP and UDP right now (a live link and the fault proxy each
 * listen on both with one number). Another process may still take it before it is used: then the
 * controller or proxy that wanted it fails to start, and the rack says so (exit 2).
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < TRIES_MAX; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const u = createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error(`no port on 127.0.0.1 was free for both TCP and UDP in ${TRIES_MAX} tries`);
}
