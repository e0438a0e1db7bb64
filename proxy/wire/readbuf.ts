import net from 'node:net';
import tls from 'node:tls';

/**
 * Reading a socket into one reused buffer instead of a fresh Buffer per read, through Node's
 * `onread` machinery (the `net.connect({ onread })` option).
 *
 * Why: in a stream-mode socket every read allocates a 64 KiB backing store, shrinks it, wraps it
 * in a Buffer, pushes it through Readable (addChunk, emit('data'), maybeReadMore's nextTick); the
 * proxy relays two small reads per pgbench transaction, so that machinery was a large part of its
 * own (user) CPU per round trip (docs/proxy.md "Reused read buffers").
 *
 * How, and what is internal: `onread` is public for sockets pgairlock connects, but net.Server has
 * no such option for accepted sockets, and the upstream socket may first need a plain exchange
 * (SSLRequest). So this installs it on an existing socket the way the net.Socket constructor
 * does: it sets the socket's `kBuffer` / `kBufferCb` / `kBufferGen` slots (found by their symbol
 * descriptions) and calls `_handle.useUserBuffer()`. Everything else (pause/resume = readStop/
 * readStart, EOF, errors, close) is Node's own onread path. When any of that is not there (another
 * Node version, a TLS socket, data already buffered in the stream) it returns undefined and the
 * caller keeps its 'data' listener: the fallback is the ordinary stream path.
 *
 * The contract this buys and costs: a chunk handed to `onChunk` is valid only until `onChunk`
 * returns, unless the buffer is `release()`d, which gives the current buffer away (to a write that
 * still references it) and reads into a new one from then on.
 */
export interface ReadBuffer {
  /** The current buffer is still referenced (e.g. by a socket write queued in Node): read into a new one. */
  release(): void;
}

/** Set PGAIRLOCK_REUSE_READ_BUFFERS=0 to force the stream path (for comparison and as an escape hatch). */
export const reuseReadBuffersByDefault = process.env.PGAIRLOCK_REUSE_READ_BUFFERS !== '0';

interface Slots {
  readonly buffer: symbol;
  readonly callback: symbol;
  readonly generator: symbol;
}

let slots: Slots | null | undefined;

function findSlots(socket: net.Socket): Slots | null {
  if (slots !== undefined) return slots;
  const byName = new Map<string | undefined, symbol>();
  for (const s of Object.getOwnPropertySymbols(socket)) byName.set(s.description, s);
  const buffer = byName.get('kBuffer');
  const callback = byName.get('kBufferCb');
  const generator = byName.get('kBufferGen');
  slots = buffer && callback && generator ? { buffer, callback, generator } : null;
  return slots;
}

interface InternalHandle {
  useUserBuffer?(buf: Uint8Array): void;
  reading?: boolean;
}

/**
 * Makes `socket` read into a reused buffer of `size` bytes and call `onChunk(buf, length)` for each
 * read; returns undefined (nothing changed) when that cannot be done safely. Call it while the
 * socket is paused; it stays paused (readStop) until `resume()`.
 */
export function useReadBuffer(socket: net.Socket, size: number, onChunk: (buf: Buffer, length: number) => void): ReadBuffer | undefined {
  if (socket instanceof tls.TLSSocket || !(socket instanceof net.Socket)) return undefined;
  const handle = (socket as unknown as { _handle?: InternalHandle | null })._handle;
  if (!handle || typeof handle.useUserBuffer !== 'function') return undefined;
  // Chunks already read in stream mode would be delivered after ours: refuse rather than reorder.
  if (socket.readableLength > 0 || socket.destroyed || socket.connecting) return undefined;
  const s = findSlots(socket);
  if (!s) return undefined;
  const own = socket as unknown as Record<symbol, unknown>;
  if (own[s.buffer] !== null || own[s.callback] !== null) return undefined; // already in onread mode
  let current = Buffer.allocUnsafeSlow(size);
  let inCallback = false;
  own[s.buffer] = current;
  own[s.callback] = (length: number, buf: Buffer): void => {
    inCallback = true;
    try {
      onChunk(buf, length);
    } finally {
      inCallback = false;
    }
  };
  // Called by Node after every read: the buffer for the next one (the same unless released).
  own[s.generator] = () => current;
  handle.useUserBuffer(current);
  // A paused stream-mode socket may still be reading (Readable only stops at its high-water mark);
  // in onread mode pause() really stops the handle, which is what the caller asked for.
  socket.pause();
  return {
    release() {
      current = Buffer.allocUnsafeSlow(size);
      // Inside the read callback Node asks the generator for the next buffer when it returns. Outside
      // it (a relay resumed after an asynchronous gate verdict) the handle already holds the old
      // buffer for its next read: hand it the new one now, and to the slot Node passes to the
      // callback as "the buffer read into". Each call stacks a small listener on the handle until it
      // closes, which is fine for this rare path.
      if (!inCallback) {
        handle.useUserBuffer!(current);
        own[s.buffer] = current;
      }
    },
  };
}
