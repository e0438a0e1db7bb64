import { ProtocolViolation } from '../errors.js';

const EMPTY = Buffer.alloc(0);

/**
 * Splits a byte stream of typed protocol messages (type byte + int32 length) into whole messages,
 * one at a time, without copying: a message that lies inside one chunk is returned as a view of
 * that chunk. Only a message split across chunks is assembled into its own buffer, allocated once
 * at its final size as soon as its header is known.
 *
 * Usage: `push(chunk)` only after `next()` has returned false for the previous chunk; then read
 * `type`, `buf`, `start`, `end` after each `next()` that returns true. A message view is valid as
 * long as its chunk is: with a reused read buffer, until that buffer is read into again.
 */
export class Framer {
  type = 0;
  buf: Buffer = EMPTY;
  start = 0;
  end = 0;

  private chunk: Buffer = EMPTY;
  /** End of the valid bytes in `chunk` (a reused read buffer is longer than what was read into it). */
  private chunkEnd = 0;
  private off = 0;
  /** Header bytes of a message whose header was split across chunks. */
  private readonly head = Buffer.alloc(5);
  private headLen = 0;
  /** Message being assembled across chunks, and how much of it is filled. */
  private partial: Buffer | null = null;
  private filled = 0;

  constructor(
    private readonly maxMessageBytes: number,
    private readonly direction: 'client' | 'server',
  ) {}

  /** `length`: how many bytes of `chunk` are data (a reused read buffer); the whole chunk by default. */
  push(chunk: Buffer, length = chunk.length): void {
    this.chunk = chunk;
    this.chunkEnd = length;
    this.off = 0;
  }

  /** Bytes of the current chunk not yet consumed (for a hand-over, e.g. to TLS). */
  remaining(): number {
    return this.chunkEnd - this.off + this.headLen + (this.partial ? this.filled : 0);
  }

  next(): boolean {
    const chunk = this.chunk;
    const n = this.chunkEnd;
    if (this.partial) {
      const need = this.partial.length - this.filled;
      const take = Math.min(need, n - this.off);
      chunk.copy(this.partial, this.filled, this.off, this.off + take);
      this.filled += take;
      this.off += take;
      if (this.filled < this.partial.length) return false;
      const msg = this.partial;
      this.partial = null;
      return this.emit(msg, 0, msg.length);
    }
    if (this.headLen > 0) {
      const take = Math.min(5 - this.headLen, n - this.off);
      chunk.copy(this.head, this.headLen, this.off, this.off + take);
      this.headLen += take;
      this.off += take;
      if (this.headLen < 5) return false;
      this.headLen = 0;
      const len = this.checkLength(this.head.readInt32BE(1), this.head[0]!);
      this.partial = Buffer.allocUnsafe(1 + len);
      this.head.copy(this.partial, 0, 0, 5);
      this.filled = 5;
      return this.next();
    }
    const off = this.off;
    if (off >= n) return false;
    if (n - off < 5) {
      chunk.copy(this.head, 0, off, n);
      this.headLen = n - off;
      this.off = n;
      return false;
    }
    const type = chunk[off]!;
    const len = this.checkLength(chunk.readInt32BE(off + 1), type);
    const end = off + 1 + len;
    if (end <= n) {
      this.off = end;
      return this.emit(chunk, off, end);
    }
    this.partial = Buffer.allocUnsafe(1 + len);
    chunk.copy(this.partial, 0, off, n);
    this.filled = n - off;
    this.off = n;
    return false;
  }

  private emit(buf: Buffer, start: number, end: number): true {
    this.type = buf[start]!;
    this.buf = buf;
    this.start = start;
    this.end = end;
    return true;
  }

  private checkLength(len: number, type: number): number {
    if (len < 4) {
      throw new ProtocolViolation(`invalid message length ${len} for message type 0x${type.toString(16)}`);
    }
    if (len > this.maxMessageBytes) {
      throw new ProtocolViolation(
        `message of ${len} bytes (type '${String.fromCharCode(type)}') exceeds the limit of ${this.maxMessageBytes} bytes`,
        this.direction === 'client' ? 'Send smaller statements or raise limits.max_message_bytes in pgairlock.yaml.' : undefined,
      );
    }
    return len;
  }
}

/** Reads a NUL-terminated UTF-8 string at `off`; returns the string and the offset after the NUL. */
export function readCString(buf: Buffer, off: number, end: number): [string, number] {
  const nul = buf.indexOf(0, off);
  if (nul < 0 || nul >= end) throw new ProtocolViolation('unterminated string in message');
  return [buf.toString('utf8', off, nul), nul + 1];
}
