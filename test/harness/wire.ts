import net from 'node:net';

/**
 * A minimal raw PostgreSQL client for tests that must send bytes no driver would (malformed or
 * oversized messages, forged cancel keys). It frames what the server sends so tests can assert on
 * message types and ErrorResponse fields. Independent of proxy/wire on purpose: the tests must not
 * share the code they check.
 */

export const PROTOCOL_3_0 = 196608;

export function startupPacket(params: Record<string, string>, protocol = PROTOCOL_3_0): Buffer {
  const body = Buffer.concat([
    ...Object.entries(params).flatMap(([k, v]) => [Buffer.from(`${k}\0`), Buffer.from(`${v}\0`)]),
    Buffer.of(0),
  ]);
  const b = Buffer.alloc(8 + body.length);
  b.writeInt32BE(b.length, 0);
  b.writeInt32BE(protocol, 4);
  body.copy(b, 8);
  return b;
}

export function cancelPacket(pid: number, secret: Buffer | number): Buffer {
  const key = typeof secret === 'number' ? int32(secret) : secret;
  const b = Buffer.alloc(12 + key.length);
  b.writeInt32BE(b.length, 0);
  b.writeInt32BE(80877102, 4);
  b.writeInt32BE(pid, 8);
  key.copy(b, 12);
  return b;
}

export function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n | 0, 0);
  return b;
}

/** A typed frontend message: type byte, int32 length, body. */
export function typedMessage(type: string, body: Buffer): Buffer {
  const b = Buffer.alloc(5 + body.length);
  b.write(type, 0, 'latin1');
  b.writeInt32BE(4 + body.length, 1);
  body.copy(b, 5);
  return b;
}

export const queryMessage = (sql: string): Buffer => typedMessage('Q', Buffer.from(`${sql}\0`));

/** A NUL-terminated string, as protocol messages carry names and text. */
export const cstr = (s: string): Buffer => Buffer.from(`${s}\0`);
export function int16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n, 0);
  return b;
}

// The extended protocol's frontend messages, for tests that must control exactly what one write carries.
/** Parse with no parameter types declared. */
export const parseMessage = (name: string, sql: string): Buffer => typedMessage('P', Buffer.concat([cstr(name), cstr(sql), int16(0)]));
/** Bind with text parameters and text results. */
export const bindMessage = (portal: string, stmt: string, params: readonly string[] = []): Buffer =>
  typedMessage('B', Buffer.concat([cstr(portal), cstr(stmt), int16(0), int16(params.length), ...params.flatMap((p) => [int32(Buffer.byteLength(p)), Buffer.from(p)]), int16(0)]));
export const executeMessage = (portal = '', maxRows = 0): Buffer => typedMessage('E', Buffer.concat([cstr(portal), int32(maxRows)]));
export const syncMessage = (): Buffer => typedMessage('S', Buffer.alloc(0));

export interface BackendMessage {
  readonly type: string;
  readonly body: Buffer;
}

/** ErrorResponse / NoticeResponse fields by their one-letter code (S, V, C, M, D, H, P...). */
export function errorFields(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < body.length && body[off] !== 0) {
    const code = String.fromCharCode(body[off]!);
    const nul = body.indexOf(0, off + 1);
    if (nul < 0) break;
    out[code] = body.toString('utf8', off + 1, nul);
    off = nul + 1;
  }
  return out;
}

/** A raw socket that frames backend messages as they arrive and lets a test await them. */
export class RawConnection {
  readonly messages: BackendMessage[] = [];
  /** Bytes received that were not framed (e.g. a single 'N' answer to SSLRequest). */
  raw = Buffer.alloc(0);
  closed = false;
  private waiters: Array<() => void> = [];
  private framing = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.raw = Buffer.concat([this.raw, d]);
      if (this.framing) this.frame();
      this.wake();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host });
      s.once('connect', () => resolve(new RawConnection(s)));
      s.once('error', reject);
    });
  }

  /** Connects and completes startup (trust auth); the startup messages are cleared, so `messages` holds only what follows. */
  static async session(port: number, params: Record<string, string>): Promise<RawConnection> {
    const c = await RawConnection.connect(port);
    try {
      await c.startup(params);
    } catch (err) {
      c.destroy();
      throw err;
    }
    c.messages.length = 0;
    return c;
  }

  /** Starts framing typed backend messages (after a one-byte SSL answer has been consumed, if any). */
  startFraming(): void {
    this.framing = true;
    this.frame();
  }

  /** Consumes `n` unframed bytes (e.g. the 'N' answer to SSLRequest). */
  async takeRaw(n: number, timeoutMs = 5000): Promise<Buffer> {
    await this.until(() => this.raw.length >= n || this.closed, timeoutMs);
    const b = this.raw.subarray(0, n);
    this.raw = this.raw.subarray(n);
    return b;
  }

  write(b: Buffer | string): void {
    this.socket.write(b);
  }

  /** Sends a startup packet and waits for ReadyForQuery (trust auth only) or an error. */
  async startup(params: Record<string, string>, timeoutMs = 10_000): Promise<void> {
    this.startFraming();
    this.write(startupPacket(params));
    const m = await this.waitForMessage((x) => x.type === 'Z' || x.type === 'E', timeoutMs);
    if (m.type === 'E') throw new Error(`startup failed: ${JSON.stringify(errorFields(m.body))}`);
  }

  /** BackendKeyData received during startup. */
  backendKey(): { pid: number; secret: Buffer } | undefined {
    const k = this.messages.find((m) => m.type === 'K');
    return k ? { pid: k.body.readInt32BE(0), secret: Buffer.from(k.body.subarray(4)) } : undefined;
  }

  /** Waits for the first message (from the start of the stream) matching `pred`, not yet consumed. */
  async waitForMessage(pred: (m: BackendMessage) => boolean, timeoutMs = 10_000): Promise<BackendMessage> {
    let found: BackendMessage | undefined;
    await this.until(() => {
      found = this.messages.find(pred);
      return !!found || this.closed;
    }, timeoutMs);
    if (!found) throw new Error(`no matching message (closed=${this.closed}); got ${this.messages.map((m) => m.type).join('')}`);
    return found;
  }

  /** Resolves when the peer has closed the connection; rejects after timeoutMs. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    await this.until(() => this.closed, timeoutMs);
    if (!this.closed) throw new Error(`connection still open after ${timeoutMs} ms`);
  }

  /** All ErrorResponses received so far, as field maps. */
  errors(): Array<Record<string, string>> {
    return this.messages.filter((m) => m.type === 'E').map((m) => errorFields(m.body));
  }

  destroy(): void {
    this.socket.destroy();
  }

  private frame(): void {
    while (this.raw.length >= 5) {
      const len = this.raw.readInt32BE(1);
      if (this.raw.length < 1 + len) return;
      this.messages.push({ type: String.fromCharCode(this.raw[0]!), body: Buffer.from(this.raw.subarray(5, 1 + len)) });
      this.raw = this.raw.subarray(1 + len);
    }
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private until(cond: () => boolean, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const deadline = Date.now() + timeoutMs;
      const timer = setTimeout(() => resolve(), timeoutMs);
      const check = () => {
        if (cond() || Date.now() >= deadline) {
          clearTimeout(timer);
          resolve();
          return;
        }
        this.waiters.push(check);
      };
      check();
    });
  }
}
