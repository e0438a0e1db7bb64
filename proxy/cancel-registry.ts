import { randomBytes, randomInt } from 'node:crypto';

/** What a client's cancel key maps to: the upstream backend's own key and where it lives. */
export interface CancelTarget {
  cancel(): void;
}

/**
 * pgairlock issues its own BackendKeyData to each client and keeps the upstream's key to itself,
 * so a client can cancel only its own query, through pgairlock, and a forged or stale key (the
 * session has ended) cancels nothing.
 */
export class CancelRegistry {
  private readonly targets = new Map<string, CancelTarget>();

  /** Issues a fresh key: a random pid-like int32 and a secret of `secretBytes` (4 in 3.0, up to 256 in 3.2). */
  issue(target: CancelTarget, secretBytes: number): { pid: number; secret: Buffer; release: () => void } {
    for (;;) {
      const pid = randomInt(1, 0x7fffffff);
      const secret = randomBytes(secretBytes);
      const key = CancelRegistry.key(pid, secret);
      if (this.targets.has(key)) continue;
      this.targets.set(key, target);
      return { pid, secret, release: () => this.targets.delete(key) };
    }
  }

  /** Returns whether the key was known (and the cancel forwarded). */
  cancel(pid: number, secret: Buffer): boolean {
    const t = this.targets.get(CancelRegistry.key(pid, secret));
    if (!t) return false;
    t.cancel();
    return true;
  }

  get size(): number {
    return this.targets.size;
  }

  private static key(pid: number, secret: Buffer): string {
    return `${pid}:${secret.toString('hex')}`;
  }
}
