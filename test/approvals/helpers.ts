import { randomBytes } from 'node:crypto';
import { MemoryApprovalStore, RedisApprovalStore, textHash, type ApprovalStore, type ChangeEvent, type ChangeRequest, type CreateInput, type PrincipalRef, type StoreOptions } from '../../governance/approvals/index.js';
import { REDIS_URL } from '../harness/env.js';

export const agent: PrincipalRef = { name: 'agent:billing', roles: ['agent'] };
export const alice: PrincipalRef = { name: 'alice', roles: ['dba'] };
export const bob: PrincipalRef = { name: 'bob', roles: ['dba'] };
export const carol: PrincipalRef = { name: 'carol', roles: ['release-manager'] };
export const dave: PrincipalRef = { name: 'dave', roles: ['developer'] };

let serial = 0;
/** Each call gets its own statement text (unless given), so approvals of earlier tests never match. */
export function holdInput(over: Partial<CreateInput> = {}): CreateInput {
  const sql = over.sql ?? `ALTER TABLE invoices DROP COLUMN note_${++serial}`;
  return {
    requester: agent,
    database: 'app',
    sql,
    fingerprint: 'fp-1',
    textHash: textHash(sql),
    facts: { kind: 'ddl', destructive: true },
    rules: [{ rule: 'destructive-ddl', reason: 'drops a column' }],
    required: { count: 1, roles: ['dba'] },
    mode: 'wait',
    ttlMs: 60_000,
    ...over,
  };
}

export const uniquePrefix = (label: string) => `pgairlock-test:${label}:${randomBytes(4).toString('hex')}:`;

/** A store factory: `open()` gives a new store instance (a new "replica") over the same data. */
export interface StoreKind {
  readonly name: 'memory' | 'redis';
  open(opts?: StoreOptions): ApprovalStore;
  /** Memory cannot be shared: a second instance of the same store is the same object. */
  readonly shared: boolean;
  cleanup(): Promise<void>;
}

export function memoryKind(): StoreKind {
  return { name: 'memory', shared: false, open: (opts) => new MemoryApprovalStore(opts), cleanup: () => Promise.resolve() };
}

export function redisKind(label: string, url = REDIS_URL): StoreKind {
  const prefix = uniquePrefix(label);
  const opened: RedisApprovalStore[] = [];
  return {
    name: 'redis',
    shared: true,
    open: (opts) => {
      const s = new RedisApprovalStore({ url, keyPrefix: prefix, ...opts });
      opened.push(s);
      return s;
    },
    cleanup: async () => {
      const s = new RedisApprovalStore({ url, keyPrefix: prefix });
      await s.ready();
      await s.dropAllForTests();
      await s.close();
      for (const o of opened) await o.close();
    },
  };
}

export function recorder(): { events: Array<{ id: string; type: ChangeEvent['type']; status: ChangeRequest['status'] }>; onEvent: (r: ChangeRequest, e: ChangeEvent) => void } {
  const events: Array<{ id: string; type: ChangeEvent['type']; status: ChangeRequest['status'] }> = [];
  return { events, onEvent: (r, e) => void events.push({ id: r.id, type: e.type, status: r.status }) };
}

export async function rejectsWith(p: Promise<unknown>, code: string): Promise<Error & { code: string; sqlstate: string; hint?: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as Error & { code: string; sqlstate: string };
    if (err.code !== code) throw new Error(`expected ${code}, got ${err.code}: ${err.message}`, { cause: e });
    return err;
  }
  throw new Error(`expected ${code}, got success`);
}
