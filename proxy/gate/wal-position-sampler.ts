/**
 * The upstream WAL position (pg_current_wal_lsn()) for changes about to be forwarded, sampled rather than
 * read once per change (audit.wal_lsn_max_age_ms, docs/audit.md "wal_lsn").
 *
 * Any position read before a change is forwarded precedes the change's commit record, so it is a valid
 * restore point "before the change". A caller therefore gets:
 * - the last sample, when its read completed before the caller asked and at most `maxAgeMs` ago;
 * - else the read in flight, if there is one (the caller awaits it before forwarding its change);
 * - else a new read, shared with every caller that asks while it is in flight.
 * A read that fails or returns null (a standby) is handed to its waiters but never kept as a sample.
 * maxAgeMs 0 keeps no sample: each caller with no read in flight starts one.
 */
export class WalPositionSampler {
  /** The last good sample, as an already-resolved promise (the fast path allocates nothing). */
  private sample: Promise<string | null> | undefined;
  /** When the sample's read completed (now()). */
  private sampledAt = 0;
  private inFlight: Promise<string | null> | undefined;

  constructor(
    private readonly read: () => Promise<string | null>,
    private readonly maxAgeMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** A WAL position read before this call returns or before the returned promise settles. */
  readonly position = (): Promise<string | null> => {
    if (this.sample && this.now() - this.sampledAt <= this.maxAgeMs) return this.sample;
    return (this.inFlight ??= this.start());
  };

  private start(): Promise<string | null> {
    let p: Promise<string | null>;
    try {
      p = this.read();
    } catch (err) {
      p = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return p.then(
      (lsn) => {
        this.inFlight = undefined;
        if (lsn !== null && this.maxAgeMs > 0) {
          this.sample = Promise.resolve(lsn);
          this.sampledAt = this.now();
        } else {
          this.sample = undefined;
        }
        return lsn;
      },
      (err: unknown) => {
        this.inFlight = undefined;
        this.sample = undefined;
        throw err;
      },
    );
  }
}
