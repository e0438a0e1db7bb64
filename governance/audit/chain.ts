import { GENESIS_HASH, recordHash } from './canonical.js';
import type { AuditEntry } from './types.js';

export type BreakKind =
  /** The record's hash does not match its content: the row was altered. */
  | 'altered'
  /** prev_hash does not match the previous record's hash: a row was inserted or replaced before it. */
  | 'broken-link'
  /** seq jumps: records were deleted (or the chain does not start at 1). */
  | 'missing';

export interface ChainBreak {
  readonly instance: string;
  readonly kind: BreakKind;
  /** The record at which the chain stops verifying. */
  readonly id: string;
  readonly seq: number;
  /** For 'missing': the first seq that is absent. */
  readonly missingFromSeq?: number;
  readonly message: string;
}

/**
 * Walks one chain in seq order and reports the first break. Pure: feed it rows (AuditEntry) in order.
 * Checks, per record: seq is the previous seq + 1 (first is 1), prev_hash is the previous record's hash
 * (first: 64 zeros), and hash is recordHash() of the record.
 */
export class ChainVerifier {
  private lastSeq = 0;
  private lastHash = GENESIS_HASH;
  private count = 0;
  private broken: ChainBreak | undefined;

  constructor(readonly instance: string) {}

  push(e: AuditEntry): ChainBreak | undefined {
    if (this.broken) return this.broken;
    this.count++;
    const where = `chain ${JSON.stringify(this.instance)} record ${e.id} (seq ${e.seq})`;
    if (e.seq !== this.lastSeq + 1) {
      const from = this.lastSeq + 1;
      const to = e.seq - 1;
      this.broken = {
        instance: this.instance, kind: 'missing', id: e.id, seq: e.seq, missingFromSeq: from,
        message: e.seq > this.lastSeq + 1
          ? `${where}: records with seq ${from}${to > from ? `..${to}` : ''} are missing (deleted?)`
          : `${where}: seq out of order after seq ${this.lastSeq}`,
      };
      return this.broken;
    }
    const actual = recordHash({ id: e.id, instance: e.instance, seq: e.seq, time: e.time, kind: e.kind, prev_hash: e.prev_hash, body: e.body });
    if (actual !== e.hash) {
      this.broken = { instance: this.instance, kind: 'altered', id: e.id, seq: e.seq, message: `${where}: content does not match its hash (altered or forged)` };
      return this.broken;
    }
    if (e.prev_hash !== this.lastHash) {
      this.broken = {
        instance: this.instance, kind: 'broken-link', id: e.id, seq: e.seq,
        message: `${where}: prev_hash does not match the hash of seq ${this.lastSeq} (a record was inserted or replaced before it)`,
      };
      return this.broken;
    }
    this.lastSeq = e.seq;
    this.lastHash = e.hash;
    return undefined;
  }

  result(): { records: number; head: { seq: number; hash: string } | null; break?: ChainBreak } {
    return {
      records: this.count,
      head: this.lastSeq > 0 ? { seq: this.lastSeq, hash: this.lastHash } : null,
      ...(this.broken ? { break: this.broken } : {}),
    };
  }
}
