import { describe, expect, it } from 'vitest';
import { WalPositionSampler } from '../../proxy/gate/wal-position-sampler.js';

/** A read the test settles by hand, counting how many were started. */
function reads() {
  const pending: { resolve: (lsn: string | null) => void; reject: (err: Error) => void }[] = [];
  let started = 0;
  const read = (): Promise<string | null> => {
    started++;
    return new Promise((resolve, reject) => pending.push({ resolve, reject }));
  };
  return {
    read,
    get started() { return started; },
    /** Settles the oldest unsettled read. */
    resolve(lsn: string | null) { pending.shift()!.resolve(lsn); },
    reject(err: Error) { pending.shift()!.reject(err); },
  };
}

function clock(start = 1_000) {
  let t = start;
  return { now: () => t, advance(ms: number) { t += ms; } };
}

/** A sampler over a hand-settled read and a hand-moved clock. */
function sampler(maxAgeMs = 50) {
  const r = reads();
  const c = clock();
  return { r, c, s: new WalPositionSampler(r.read, maxAgeMs, c.now) };
}

describe('WalPositionSampler', () => {
  it('reuses a sample whose read completed at most max age ago, as the same resolved promise', async () => {
    const { r, c, s } = sampler();
    const first = s.position();
    r.resolve('0/100');
    expect(await first).toBe('0/100');
    c.advance(50);
    const a = s.position();
    const b = s.position();
    expect(a).toBe(b); // the kept promise, not a new one per call
    expect(await a).toBe('0/100');
    expect(r.started).toBe(1);
  });

  it('a sample older than max age: one new read, awaited, then reused', async () => {
    const { r, c, s } = sampler();
    const first = s.position();
    r.resolve('0/100');
    await first;
    c.advance(51);
    const a = s.position();
    const b = s.position();
    expect(r.started).toBe(2);
    expect(a).toBe(b);
    let settled = false;
    void a.then(() => { settled = true; });
    await Promise.resolve();
    expect(settled).toBe(false); // not the old sample: the caller waits for the new read
    r.resolve('0/200');
    expect(await a).toBe('0/200');
    // Its age counts from when the read completed, not from when it started.
    c.advance(50);
    expect(await s.position()).toBe('0/200');
    expect(r.started).toBe(2);
  });

  it('concurrent callers share the read in flight', async () => {
    const { r, c, s } = sampler();
    const ps = [s.position(), s.position()];
    c.advance(1_000); // a read in flight is never too old: it completes after the caller asked
    ps.push(s.position());
    expect(r.started).toBe(1);
    r.resolve('0/300');
    expect(await Promise.all(ps)).toEqual(['0/300', '0/300', '0/300']);
  });

  it('only a sample completed before the caller asked is reused: a caller during a read gets that read', async () => {
    const { r, c, s } = sampler();
    const first = s.position();
    r.resolve('0/100');
    await first;
    c.advance(60);
    const during = s.position(); // starts a read
    c.advance(1);
    const alsoDuring = s.position(); // the old sample is still stale: shares the new read
    expect(alsoDuring).toBe(during);
    r.resolve('0/400');
    expect(await alsoDuring).toBe('0/400');
    expect(r.started).toBe(2);
  });

  it('a failed read is passed to its waiters and not kept: the next caller reads again', async () => {
    const { r, s } = sampler();
    const a = s.position();
    const b = s.position();
    r.reject(new Error('connection lost'));
    await expect(a).rejects.toThrow('connection lost');
    await expect(b).rejects.toThrow('connection lost');
    const next = s.position();
    expect(r.started).toBe(2);
    r.resolve('0/500');
    expect(await next).toBe('0/500');
  });

  it('a failed read after a good one drops the stale sample too', async () => {
    const { r, c, s } = sampler();
    const first = s.position();
    r.resolve('0/100');
    await first;
    c.advance(100);
    const failed = s.position();
    r.reject(new Error('timeout'));
    await expect(failed).rejects.toThrow('timeout');
    const next = s.position();
    expect(r.started).toBe(3);
    r.resolve('0/600');
    expect(await next).toBe('0/600');
  });

  it('null (a standby) is returned but not kept as a sample', async () => {
    const { r, s } = sampler();
    const a = s.position();
    r.resolve(null);
    expect(await a).toBeNull();
    const b = s.position();
    expect(r.started).toBe(2);
    r.resolve('0/700');
    expect(await b).toBe('0/700');
  });

  it('a read that throws synchronously is a failed read', async () => {
    let calls = 0;
    const s = new WalPositionSampler(() => { calls++; throw new Error('no pool'); }, 50, () => 0);
    await expect(s.position()).rejects.toThrow('no pool');
    await expect(s.position()).rejects.toThrow('no pool');
    expect(calls).toBe(2);
  });

  it('max age 0: every caller with no read in flight reads, even at the same instant', async () => {
    const { r, s } = sampler(0);
    const a = s.position();
    const a2 = s.position(); // shared while in flight, as before sampling existed
    expect(a2).toBe(a);
    r.resolve('0/800');
    expect(await a).toBe('0/800');
    const b = s.position(); // the clock has not moved: still a new read
    expect(r.started).toBe(2);
    r.resolve('0/900');
    expect(await b).toBe('0/900');
  });

  it('defaults to performance.now()', async () => {
    let calls = 0;
    const s = new WalPositionSampler(() => { calls++; return Promise.resolve('0/1'); }, 60_000);
    expect(await s.position()).toBe('0/1');
    expect(await s.position()).toBe('0/1');
    expect(calls).toBe(1);
  });
});
