import type { Duplex } from 'node:stream';
import type { ReadBuffer } from './readbuf.js';

/**
 * Collects the whole messages of one incoming chunk that go to the same socket and writes them
 * with as few `write` calls as possible: contiguous ranges of the same buffer merge into one
 * view, and several pieces go out under cork/uncork (one writev). Every socket.write costs ~10 µs,
 * so this is where the proxy's throughput is won (see docs/benchmarks.md).
 */
export class WriteBatcher {
  private readonly pieces: Buffer[] = [];
  private runBuf: Buffer | null = null;
  private runStart = 0;
  private runEnd = 0;

  /**
   * The reused read buffer the queued views point into, if any. A write Node could not hand to the
   * kernel at once keeps referencing its bytes, so that buffer must not be read into again.
   */
  source: ReadBuffer | undefined;

  constructor(private readonly socket: Duplex) {}

  /** Queue buf[start, end). */
  add(buf: Buffer, start: number, end: number): void {
    if (buf === this.runBuf && start === this.runEnd) {
      this.runEnd = end;
      return;
    }
    this.closeRun();
    this.runBuf = buf;
    this.runStart = start;
    this.runEnd = end;
  }

  /** Queue a whole buffer that pgairlock made itself. */
  addBuffer(b: Buffer): void {
    this.closeRun();
    this.pieces.push(b);
  }

  get empty(): boolean {
    return this.runBuf === null && this.pieces.length === 0;
  }

  /** Writes what is queued. Returns false when the socket's buffer is full (caller should pause its source). */
  flush(): boolean {
    const pieces = this.pieces;
    const socket = this.socket;
    let ok: boolean;
    if (pieces.length === 0) {
      // The common case (one contiguous run, e.g. a whole pgbench round trip): no array traffic.
      const b = this.runBuf;
      if (b === null) return true;
      this.runBuf = null;
      if (socket.destroyed || !socket.writable) return true;
      ok = socket.write(this.runStart === 0 && this.runEnd === b.length ? b : b.subarray(this.runStart, this.runEnd));
      if (this.source && socket.writableLength > 0) this.source.release();
      return ok;
    }
    this.closeRun();
    if (socket.destroyed || !socket.writable) {
      pieces.length = 0;
      return true;
    }
    if (pieces.length === 1) {
      ok = this.socket.write(pieces[0]!);
    } else {
      this.socket.cork();
      ok = true;
      for (const p of pieces) ok = this.socket.write(p);
      this.socket.uncork();
    }
    pieces.length = 0;
    // Node completes a write synchronously when the kernel takes all of it (writableLength back to
    // 0); otherwise the stream keeps the views until its callback.
    if (this.source && this.socket.writableLength > 0) this.source.release();
    return ok;
  }

  private closeRun(): void {
    const b = this.runBuf;
    if (b === null) return;
    this.pieces.push(this.runStart === 0 && this.runEnd === b.length ? b : b.subarray(this.runStart, this.runEnd));
    this.runBuf = null;
  }
}
