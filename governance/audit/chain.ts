import { GENESIS_HASH, recordHash } from './canonical.js';
import type { AuditEntry } from './types.js';

export type BreakKind =
  /** The record's hash does not match its content: the row was altered. */
  | 'altered'
  /** prev_hash does not match the previous record's hash: a row was inserted or replaced before it. */
  | 'broken-link'
  /** seq jumps: records were deleted (or the chain does not start at 1). */
  | 'missing'
  /** The record at an anchored seq has another hash than the anchor (the chain was rewritten from there on). */
  | 'anchor-mismatch'
  /** The chain ends before an anchored seq: its newest records (or the whole chain) were deleted. */
  | 'truncated';

export interface ChainBreak {
  readonly instance: string;
  readonly kind: BreakKind;
  /** The record at which the chain stops verifying (for 'truncated': the last record left, null if none). */
  readonly id: string | null;
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

  /**
   * @param anchors heads recorded elsewhere earlier (seq -> hash): the only defence against a rewritten or
   *   truncated tail, which a keyless chain cannot detect on its own.
   */
  constructor(readonly instance: string, private readonly anchors: ReadonlyMap<number, string> = new Map()) {}

  private lastId: string | null = null;

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
    const anchored = this.anchors.get(e.seq);
    if (anchored !== undefined && anchored !== e.hash) {
      this.broken = { instance: this.instance, kind: 'anchor-mismatch', id: e.id, seq: e.seq, message: `${where}: hash ${e.hash} differs from the anchored ${anchored} (the chain was rewritten)` };
      return this.broken;
    }
    this.lastSeq = e.seq;
    this.lastHash = e.hash;
    this.lastId = e.id;
    return undefined;
  }

  /** Call after the last record: reports anchors beyond the end of the chain. */
  finish(): ChainBreak | undefined {
    if (this.broken) return this.broken;
    const beyond = [...this.anchors.keys()].filter((seq) => seq > this.lastSeq).sort((a, b) => a - b)[0];
    if (beyond !== undefined) {
      this.broken = {
        instance: this.instance, kind: 'truncated', id: this.lastId, seq: this.lastSeq + 1, missingFromSeq: this.lastSeq + 1,
        message: `chain ${JSON.stringify(this.instance)} ends at seq ${this.lastSeq} but seq ${beyond} was anchored: records from seq ${this.lastSeq + 1} on were deleted`,
      };
    }
    return this.broken;
  }

  result(): { records: number; head: { seq: number; hash: string } | null; break?: ChainBreak } {
    return {
      records: this.count,
      head: this.lastSeq > 0 ? { seq: this.lastSeq, hash: this.lastHash } : null,
      ...(this.broken ? { break: this.broken } : {}),
    };
  }
}
