import net from 'node:net';

import { freePortOn } from '../../cli/net.js';

/** A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it). */
export const freePort = (): Promise<number> => freePortOn('127.0.0.1');

function tryConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/**
 * Polls until something accepts TCP connections on host:port. `stillAlive` lets the caller stop early
 * when the server process has died (its own error then says why). Returns false on timeout.
 */
export async function waitForPort(host: string, port: number, timeoutMs: number, stillAlive: () => boolean = () => true): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!stillAlive()) return false;
    if (await tryConnect(host, port)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
