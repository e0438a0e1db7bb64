import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { PgError, ProtocolViolation, SqlState, type PgErrorFields } from './errors.js';
import type { CancelRegistry } from './cancel-registry.js';
import { connectUpstream, sendUpstreamCancel, type UpstreamSocket, type UpstreamTarget } from './upstream.js';
import { WriteBatcher } from './wire/batcher.js';
import {
  backendKeyData,
  errorResponse,
  frontendParse,
  frontendQuery,
  frontendTerminate,
  startupMessage,
} from './wire/encode.js';
import { Framer, readCString } from './wire/framer.js';
import { useReadBuffer, type ReadBuffer } from './wire/readbuf.js';
import { AuthCode, Backend, Frontend, StartupCode, TxStatus } from './wire/protocol.js';
import { readStartupPacket, type StartupPacket } from './wire/startup.js';

/** What a session needs from the server that owns it. */
export interface SessionEnv {
  readonly log: Logger;
  readonly cancels: CancelRegistry;
  readonly tlsContext?: tls.SecureContext;
  readonly maxMessageBytes: number;
  readonly maxStartupBytes: number;
  readonly startupTimeoutMs: number;
  /** Read plain (non-TLS) sockets into one reused buffer each (proxy/wire/readbuf.ts); default true. */
  readonly reuseReadBuffers?: boolean;
  /** Admits a session at its startup packet; false when limits.max_client_connections is reached. */
  admit(session: Session): boolean;
  /** Maps the client's database and user to the upstream (pgbouncer's [databases]). */
  route(database: string, user: string): Route;
  /** Gives the session its governance gate once the client is known (undefined: pass-through). */
  gateFor?(session: Session, info: SessionInfo): SessionGate | undefined;
  /** Serves virtual databases (the admin console) instead of relaying; undefined when not virtual. */
  virtualDatabase?(session: Session, info: SessionInfo): VirtualHandler | undefined;
  onClose(session: Session): void;
}

export interface Route {
  readonly target: UpstreamTarget;
  readonly database: string;
  readonly user: string;
}

/** Who the client said it is, from the startup packet. */
export interface SessionInfo {
  readonly sessionId: string;
  readonly user: string;
  readonly database: string;
  readonly applicationName: string;
  readonly clientAddress: string;
  readonly params: ReadonlyMap<string, string>;
  readonly tls: boolean;
}

/**
 * A gate decides frontend messages of the ready phase. Returning undefined forwards the message
 * unchanged (the fast path). A refusal is delivered exactly where Postgres would deliver its own
 * error (see refuse()).
 */
export type GateVerdict =
  | { readonly action: 'forward' }
  | { readonly action: 'refuse'; readonly error: PgErrorFields };

/**
 * The message bytes passed to a gate (buf[start, end)) are valid only during the call: they may lie
 * in a read buffer that is reused for the next read. Copy what must outlive the call.
 */
export interface SessionGate {
  onClientMessage(type: number, buf: Buffer, start: number, end: number): GateVerdict | Promise<GateVerdict> | undefined;
  /** Backend messages the gate follows to learn outcomes: CommandComplete, ErrorResponse, ReadyForQuery. */
  onServerMessage?(type: number, buf: Buffer, start: number, end: number): void;
  /** The client sent a valid CancelRequest for this session. */
  onCancel?(): void;
  onClose?(): void;
}

/** A virtual database served by pgairlock itself (after the client authenticated upstream). */
export interface VirtualHandler {
  /** Called with each client message once the session is ready; answers through session.sendToClient. */
  onClientMessage(type: number, buf: Buffer, start: number, end: number): void | Promise<void>;
}

type Phase = 'startup' | 'connecting' | 'auth' | 'ready' | 'closed';

/** A refusal waiting for its stand-in error to come back from the server. */
interface PendingRefusal {
  readonly marker: Buffer;
  readonly error: PgErrorFields;
  /** The number of ReadyForQuery messages after which it can no longer arrive. */
  readonly resolvedByZ: number;
}

const SCRAM_PLUS = 'SCRAM-SHA-256-PLUS';

/**
 * Size of each reused read buffer (one per direction per session). A read never returns more than
 * this, so larger messages arrive in several reads (the framer assembles them); pgbouncer's own
 * pkt_buf is 4 KiB.
 */
const READ_BUFFER_BYTES = 16 * 1024;
/**
 * How long messages queued ahead of a message with an asynchronous verdict may wait to share its write
 * (drainClient). Short enough that no earlier statement is noticeably held back by a later one's verdict.
 */
const HOLD_QUEUED_MS = 5;
/** Client bytes kept while an asynchronous verdict is pending before the client is paused (session.stashClientBytes). */
const STASH_LIMIT = 1024 * 1024;

/**
 * One client connection and its upstream connection (session mode). Frames every message in both
 * directions and forwards whole messages in batches; intercepts only what it must: the cancel key,
 * the SASL mechanism list over upstream TLS, and what the gate decides.
 */
export class Session {
  readonly id = randomBytes(6).toString('hex');
  readonly log: Logger;
  readonly clientAddress: string;
  info?: SessionInfo;
  phase: Phase = 'startup';
  /** Transaction status from the last ReadyForQuery: 'I', 'T' or 'E'. */
  txStatus: number = TxStatus.Idle;
  /** Upstream server's version from ParameterStatus server_version, e.g. 150019 (0 until known). */
  serverVersionNum = 0;
  readonly startedAt = Date.now();

  private client: net.Socket | tls.TLSSocket;
  private upstream?: UpstreamSocket;
  private route?: Route;
  private gate?: SessionGate;
  private virtual?: VirtualHandler;
  private startupBuf: Buffer = Buffer.alloc(0);
  private readonly clientFramer: Framer;
  private readonly serverFramer: Framer;
  private toUpstream?: WriteBatcher;
  private toClient: WriteBatcher;
  /** Reused read buffers, when the sockets allow them (else 'data' events). */
  private clientReader?: ReadBuffer;
  private serverReader?: ReadBuffer;
  private upstreamKey?: { pid: number; secret: Buffer };
  private releaseKey?: () => void;
  private requestedMinor = 0;
  /** SCRAM-SHA-256-PLUS was withheld from this client (upstream TLS): a 'y' binding flag cannot succeed. */
  private withheldPlus = false;
  private negotiatedMinor?: number;
  /** Query/Sync/FunctionCall messages sent upstream, and ReadyForQuery messages seen: their difference is work in flight. */
  private sent = 0;
  private answered = 0;
  /** Something was sent upstream since the last ReadyForQuery (an Execute + Flush keeps a backend busy without a Sync). */
  private sentSinceReady = false;
  private refusals: PendingRefusal[] = [];
  private sawFatal = false;
  private closing = false;
  private draining = false;
  /** Client bytes read while draining (see stashClientBytes). */
  private stash: Buffer[] = [];
  private stashBytes = 0;
  private shutdownRequested = false;
  private startupTimer?: NodeJS.Timeout;

  constructor(
    socket: net.Socket,
    private readonly env: SessionEnv,
  ) {
    this.client = socket;
    this.clientAddress = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.log = env.log.child({ session: this.id });
    this.clientFramer = new Framer(env.maxMessageBytes, 'client');
    this.serverFramer = new Framer(Number.MAX_SAFE_INTEGER, 'server');
    this.toClient = new WriteBatcher(socket);
    socket.setNoDelay(true);
    this.attachClient(socket);
    this.startupTimer = setTimeout(() => {
      this.fatal({ code: SqlState.CannotConnectNow, message: 'startup did not complete in time', hint: 'limits.startup_timeout_ms' });
    }, env.startupTimeoutMs);
    this.startupTimer.unref();
  }

  get inFlight(): number {
    return this.sent - this.answered;
  }

  get upstreamBackendPid(): number | undefined {
    return this.upstreamKey?.pid;
  }

  /** Which sides read into a reused buffer (proxy/wire/readbuf.ts) rather than through 'data' events. */
  get readBuffers(): { client: boolean; server: boolean } {
    return { client: this.clientReader !== undefined, server: this.serverReader !== undefined };
  }

  get isTls(): boolean {
    return this.client instanceof tls.TLSSocket;
  }

  // ---- client side --------------------------------------------------------------------------

  private readonly onClientData = (chunk: Buffer): void => {
    if (this.phase === 'startup') {
      this.onStartupData(chunk);
      return;
    }
    if (this.draining) {
      this.stashClientBytes(chunk);
      return;
    }
    this.clientFramer.push(chunk);
    this.drainClient();
  };

  private readonly onClientChunk = (buf: Buffer, length: number): void => {
    if (this.draining) {
      // The reused buffer is read into again: keep a copy.
      this.stashClientBytes(Buffer.from(buf.subarray(0, length)));
      return;
    }
    this.clientFramer.push(buf, length);
    this.drainClient();
  };

  /**
   * Bytes that arrive while an asynchronous verdict is pending wait here, in order. The client
   * keeps being read meanwhile so that a client that hangs up while its statement waits (for an
   * approval, say) is noticed at once: a paused socket would not see the FIN until it resumed.
   * Past STASH_LIMIT bytes the client is paused for real (backpressure beats memory).
   */
  private stashClientBytes(chunk: Buffer): void {
    this.stash.push(chunk);
    this.stashBytes += chunk.length;
    if (this.stashBytes > STASH_LIMIT) this.client.pause();
  }

  private attachClient(socket: net.Socket | tls.TLSSocket): void {
    socket.on('data', this.onClientData);
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'client socket error'));
    socket.on('close', () => this.onClientClose());
  }

  private onStartupData(chunk: Buffer): void {
    this.startupBuf = this.startupBuf.length ? Buffer.concat([this.startupBuf, chunk]) : chunk;
    let read: { packet: StartupPacket; length: number } | undefined;
    try {
      read = readStartupPacket(this.startupBuf, this.env.maxStartupBytes);
    } catch (err) {
      this.fail(err);
      return;
    }
    if (!read) return;
    const rest = this.startupBuf.subarray(read.length);
    this.startupBuf = Buffer.alloc(0);
    const p = read.packet;
    switch (p.kind) {
      case 'ssl':
        if (rest.length > 0) {
          this.fail(new ProtocolViolation('received unencrypted data after SSL request'));
          return;
        }
        if (this.env.tlsContext && !this.isTls) this.upgradeToTls();
        else this.client.write('N');
        return;
      case 'gssenc':
        if (rest.length > 0) {
          this.fail(new ProtocolViolation('received unencrypted data after GSSAPI encryption request'));
          return;
        }
        this.client.write('N');
        return;
      case 'cancel': {
        const known = this.env.cancels.cancel(p.pid, p.secret);
        this.log.debug({ known }, 'cancel request');
        this.client.end();
        return;
      }
      case 'startup':
        void this.begin(p.protocol, p.params, rest);
        return;
    }
  }

  private upgradeToTls(): void {
    const raw = this.client;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    raw.write('S');
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: this.env.tlsContext });
    this.client = secure;
    this.toClient = new WriteBatcher(secure);
    this.attachClient(secure);
  }

  private async begin(protocol: number, params: Map<string, string>, early: Buffer): Promise<void> {
    if (!this.env.admit(this)) {
      this.fatal({ code: SqlState.TooManyConnections, message: 'sorry, too many clients already', hint: 'Raise limits.max_client_connections in pgairlock.yaml, or close idle connections.' });
      return;
    }
    this.phase = 'connecting';
    this.client.pause();
    const user = params.get('user')!;
    const database = params.get('database') || user;
    this.requestedMinor = protocol & 0xffff;
    this.info = {
      sessionId: this.id,
      user,
      database,
      applicationName: params.get('application_name') ?? '',
      clientAddress: this.clientAddress,
      params,
      tls: this.isTls,
    };
    let route: Route;
    try {
      route = this.env.route(database, user);
    } catch (err) {
      this.fail(err);
      return;
    }
    this.route = route;
    let upstream: UpstreamSocket;
    try {
      upstream = await connectUpstream(route.target);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'upstream connect failed');
      this.fail(err);
      return;
    }
    if ((this.phase as Phase) === 'closed') {
      upstream.destroy();
      return;
    }
    this.upstream = upstream;
    this.toUpstream = new WriteBatcher(upstream);
    this.useReadBuffers(upstream);
    if (!this.serverReader) upstream.on('data', (chunk: Buffer) => this.onServerData(chunk, chunk.length));
    upstream.on('error', (err) => this.log.debug({ err: err.message }, 'upstream socket error'));
    upstream.on('close', () => this.onServerClose());
    const forwarded = new Map(params);
    forwarded.set('user', route.user);
    forwarded.set('database', route.database);
    upstream.write(startupMessage(protocol, forwarded));
    upstream.resume();
    this.phase = 'auth';
    this.log.debug({ user, database, application: this.info.applicationName, upstreamDatabase: route.database }, 'session starting');
    if (early.length) {
      this.clientFramer.push(early);
      this.drainClient();
    }
    this.client.resume();
  }

  /**
   * Both sockets plain: read each into a reused buffer. Views of it go straight into writes to the
   * other socket, so a batcher releases its source's buffer when a write stays queued. TLS on
   * either side keeps the stream path (a TLS write may hold the cleartext until the handshake).
   * Called with the client paused and before the first byte of the upstream's answer.
   */
  private useReadBuffers(upstream: UpstreamSocket): void {
    if (this.env.reuseReadBuffers === false || this.isTls || upstream instanceof tls.TLSSocket) return;
    this.serverReader = useReadBuffer(upstream, READ_BUFFER_BYTES, this.onServerChunk);
    if (!this.serverReader) return;
    this.clientReader = useReadBuffer(this.client, READ_BUFFER_BYTES, this.onClientChunk);
    this.toClient.source = this.serverReader;
    this.toUpstream!.source = this.clientReader;
  }

  /**
   * Processes framed client messages. Synchronous verdicts keep the fast path (contiguous messages
   * go out in one write); an asynchronous verdict pauses the client until it settles.
   */
  private drainClient(): void {
    if (this.draining) return;
    const f = this.clientFramer;
    const out = this.toUpstream;
    if (!out) return;
    try {
      while (f.next()) {
        const type = f.type;
        if (this.phase !== 'ready') {
          if (type === Frontend.Password && this.withheldPlus && this.refuseChannelBindingFlag(f.buf, f.start, f.end)) return;
          out.add(f.buf, f.start, f.end);
          continue;
        }
        if (this.virtual) {
          const r = this.virtual.onClientMessage(type, f.buf, f.start, f.end);
          if (r instanceof Promise) {
            this.awaitThen(r.then(() => undefined));
            return;
          }
          continue;
        }
        if (type === Frontend.Query || type === Frontend.Sync || type === Frontend.FunctionCall) this.sent++;
        else if (type === Frontend.Terminate) this.closing = true;
        this.sentSinceReady = true;
        const verdict = this.gate?.onClientMessage(type, f.buf, f.start, f.end);
        if (verdict === undefined || (!(verdict instanceof Promise) && verdict.action === 'forward')) {
          out.add(f.buf, f.start, f.end);
          continue;
        }
        if (verdict instanceof Promise) {
          // What is queued before it (the Bind of the same round trip, say) goes out with it after the
          // verdict, in one write instead of two, when the verdict comes within HOLD_QUEUED_MS (an audit
          // barrier); a longer wait (an approval) must not hold earlier statements back, so they go then.
          // awaitThen releases the read buffer, so queued views into it stay valid; the message itself
          // must outlive this chunk: copy it.
          const msg = Buffer.from(f.buf.subarray(f.start, f.end));
          const early = out.empty ? undefined : setTimeout(() => this.flushUpstream(), HOLD_QUEUED_MS);
          this.awaitThen(verdict.finally(() => clearTimeout(early)).then((v) => this.apply(v, msg, 0, msg.length)));
          return;
        }
        this.apply(verdict, f.buf, f.start, f.end);
      }
    } catch (err) {
      this.fail(err);
      return;
    }
    this.flushUpstream();
  }

  private awaitThen(p: Promise<void>): void {
    this.draining = true;
    // The framer still points into the current read buffer (unprocessed messages after this one):
    // later reads go to a new buffer and into the stash (stashClientBytes) until the verdict settles.
    this.clientReader?.release();
    p.then(
      () => {
        this.draining = false;
        if (this.phase === 'closed') return;
        this.drainClient();
        // Then what arrived meanwhile, in order, unless a message meets the next asynchronous
        // verdict: the rest of the stash waits for that one.
        while (!this.draining && this.stash.length > 0) {
          const chunk = this.stash.shift()!;
          this.stashBytes -= chunk.length;
          this.clientFramer.push(chunk);
          this.drainClient();
        }
        if (this.stashBytes <= STASH_LIMIT && (this.phase as Phase) !== 'closed') this.client.resume();
      },
      (err: unknown) => {
        this.draining = false;
        this.fail(err);
      },
    );
  }

  private apply(v: GateVerdict, buf: Buffer, start: number, end: number): void {
    if (v.action === 'forward') this.toUpstream!.add(buf, start, end);
    else this.refuse(buf[start]!, buf, start, end, v.error);
  }

  /**
   * Refuses one frontend message so that the client sees exactly what it would see had Postgres
   * refused it: the message is replaced by a stand-in that fails on the server at the same point of
   * the stream (a syntax error carrying a unique marker). The server therefore aborts the
   * transaction, skips to Sync in the extended protocol and sends ReadyForQuery with the right
   * status; pgairlock only swaps the stand-in's ErrorResponse for its own.
   */
  refuse(type: number, buf: Buffer, start: number, end: number, error: PgErrorFields): void {
    const out = this.toUpstream!;
    const marker = `pgairlock_refused_${randomBytes(8).toString('hex')}`;
    if (type === Frontend.Query) {
      out.addBuffer(frontendQuery(marker));
      this.refusals.push({ marker: Buffer.from(marker), error, resolvedByZ: this.sent });
    } else if (type === Frontend.Parse) {
      const [name] = readCString(buf, start + 5, end);
      out.addBuffer(frontendParse(name, marker));
      this.refusals.push({ marker: Buffer.from(marker), error, resolvedByZ: this.sent + 1 });
    } else if (type === Frontend.FunctionCall) {
      // FunctionCall has no statement text; stand in with a Query and count its ReadyForQuery as the call's.
      out.addBuffer(frontendQuery(marker));
      this.refusals.push({ marker: Buffer.from(marker), error, resolvedByZ: this.sent });
    } else {
      // Other messages (Bind, Execute of a refused portal...) fail as a Parse of nothing would.
      out.addBuffer(frontendParse('', marker));
      this.refusals.push({ marker: Buffer.from(marker), error, resolvedByZ: this.sent + 1 });
    }
  }

  private flushUpstream(): void {
    const up = this.upstream;
    if (!up || !this.toUpstream) return;
    if (!this.toUpstream.flush()) {
      this.client.pause();
      up.once('drain', () => {
        if (!this.draining) this.client.resume();
      });
    }
    if (this.closing) this.shutdownBoth();
  }

  private onClientClose(): void {
    if (this.phase === 'closed') return;
    const up = this.upstream;
    if (up && this.phase === 'ready' && (this.inFlight > 0 || this.sentSinceReady) && this.upstreamKey && this.route) {
      // The server would run the query to its end: cancel it, then close.
      this.log.info({ inFlight: this.inFlight }, 'client disconnected mid-query; cancelling upstream');
      const { pid, secret } = this.upstreamKey;
      sendUpstreamCancel(this.route.target, pid, secret).catch((err: Error) =>
        this.log.warn({ err: err.message }, 'could not cancel upstream query'),
      );
    }
    this.shutdownBoth();
  }

  // ---- server side --------------------------------------------------------------------------

  private readonly onServerChunk = (buf: Buffer, length: number): void => {
    this.onServerData(buf, length);
  };

  private onServerData(chunk: Buffer, length: number): void {
    // Bytes still arriving after the session ended (the client left first) have nobody to go to.
    if (this.phase === 'closed') return;
    const f = this.serverFramer;
    f.push(chunk, length);
    const out = this.toClient;
    const gate = this.gate;
    while (f.next()) {
      const type = f.type;
      switch (type) {
        case Backend.ReadyForQuery:
          this.txStatus = f.buf[f.start + 5]!;
          if (this.phase === 'ready') {
            this.answered++;
            if (this.answered === this.sent) this.sentSinceReady = false;
            if (this.refusals.length) this.dropResolvedRefusals();
          } else {
            this.onSessionReady();
          }
          break;
        case Backend.ErrorResponse:
          if (this.refusals.length && this.substituteRefusal(f.buf, f.start, f.end, out)) {
            gate?.onServerMessage?.(type, f.buf, f.start, f.end);
            continue;
          }
          if (this.phase !== 'ready' || isFatal(f.buf, f.start, f.end)) this.sawFatal = true;
          break;
        case Backend.BackendKeyData:
          this.onBackendKeyData(f.buf, f.start, f.end, out);
          continue;
        case Backend.Authentication:
          if (this.phase === 'auth' && this.rewriteSaslMechanisms(f.buf, f.start, f.end, out)) continue;
          break;
        case Backend.ParameterStatus:
          this.onParameterStatus(f.buf, f.start, f.end);
          break;
        case Backend.NegotiateProtocolVersion:
          // The message carries the newest version the server supports (major << 16 | minor): keep the minor.
          this.negotiatedMinor = f.buf.readInt32BE(f.start + 5) & 0xffff;
          break;
      }
      if (gate?.onServerMessage && this.phase === 'ready') gate.onServerMessage(type, f.buf, f.start, f.end);
      out.add(f.buf, f.start, f.end);
    }
    if (!out.flush()) {
      this.upstream?.pause();
      this.client.once('drain', () => this.upstream?.resume());
    }
    if (this.shutdownRequested && this.isIdle()) this.terminateForShutdown();
  }

  private onSessionReady(): void {
    this.phase = 'ready';
    if (this.startupTimer) clearTimeout(this.startupTimer);
    const info = this.info!;
    this.virtual = this.env.virtualDatabase?.(this, info);
    if (!this.virtual) this.gate = this.env.gateFor?.(this, info);
    this.log.info(
      { user: info.user, database: info.database, application: info.applicationName, client: this.clientAddress, tls: info.tls },
      'session ready',
    );
  }

  private onBackendKeyData(buf: Buffer, start: number, end: number, out: WriteBatcher): void {
    this.upstreamKey = { pid: buf.readInt32BE(start + 5), secret: Buffer.from(buf.subarray(start + 9, end)) };
    // Protocol 3.2 allows long keys; 3.0 clients expect exactly 4 bytes.
    const minor = this.negotiatedMinor ?? this.requestedMinor;
    const ours = this.env.cancels.issue(
      {
        cancel: () => {
          this.gate?.onCancel?.();
          this.cancelUpstream();
        },
      },
      minor >= 2 ? 32 : 4,
    );
    this.releaseKey = ours.release;
    out.addBuffer(backendKeyData(ours.pid, ours.secret));
  }

  /** Forwards a client's (validated) cancel to this session's upstream backend. */
  cancelUpstream(): void {
    const key = this.upstreamKey;
    const route = this.route;
    if (!key || !route) return;
    sendUpstreamCancel(route.target, key.pid, key.secret).catch((err: Error) =>
      this.log.warn({ err: err.message }, 'cancel could not reach upstream'),
    );
  }

  /**
   * Over TLS to the upstream, the server offers SCRAM-SHA-256-PLUS; a client that binds to the
   * channel would bind to pgairlock's certificate and fail, so that mechanism is withheld.
   */
  private rewriteSaslMechanisms(buf: Buffer, start: number, end: number, out: WriteBatcher): boolean {
    if (buf.readInt32BE(start + 5) !== AuthCode.SASL || !(this.upstream instanceof tls.TLSSocket)) return false;
    const mechanisms: string[] = [];
    let off = start + 9;
    while (off < end - 1) {
      const [m, next] = readCString(buf, off, end);
      if (m === '') break;
      mechanisms.push(m);
      off = next;
    }
    const kept = mechanisms.filter((m) => m !== SCRAM_PLUS);
    if (kept.length === mechanisms.length) return false;
    this.withheldPlus = true;
    const body = Buffer.concat([...kept.map((m) => Buffer.from(`${m}\0`)), Buffer.of(0)]);
    const msg = Buffer.allocUnsafe(9 + body.length);
    msg[0] = Backend.Authentication;
    msg.writeInt32BE(8 + body.length, 1);
    msg.writeInt32BE(AuthCode.SASL, 5);
    body.copy(msg, 9);
    out.addBuffer(msg);
    return true;
  }

  /**
   * A client on TLS that sees no -PLUS mechanism sends the SCRAM flag 'y' ("I could bind, the
   * server cannot"); an upstream that can bind rejects that as a downgrade, and the flag is covered
   * by the SCRAM proof, so it cannot be rewritten. Say what to do instead of relaying a puzzle.
   */
  private refuseChannelBindingFlag(buf: Buffer, start: number, end: number): boolean {
    this.withheldPlus = false; // only the SASLInitialResponse (the first 'p') carries the flag
    let mechanism: string;
    let off: number;
    try {
      [mechanism, off] = readCString(buf, start + 5, end);
    } catch {
      return false;
    }
    if (mechanism !== 'SCRAM-SHA-256' || off + 4 >= end || buf[off + 4] !== 0x79 /* y */) return false;
    this.fatal({
      code: SqlState.InvalidAuthorizationSpecification,
      message: 'SCRAM channel binding cannot work through pgairlock: TLS ends at pgairlock, so the client would bind to the wrong certificate',
      detail: 'The client (libpq channel_binding=prefer over TLS) offered channel binding; the upstream server supports it and would reject the login as a downgrade.',
      hint: 'Add channel_binding=disable to the connection string, or connect to pgairlock without TLS, or set upstream.sslmode: disable. See docs/proxy.md "SCRAM channel binding".',
    });
    return true;
  }

  private onParameterStatus(buf: Buffer, start: number, end: number): void {
    const [name, next] = readCString(buf, start + 5, end);
    if (name !== 'server_version') return;
    const [value] = readCString(buf, next, end);
    this.serverVersionNum = parseServerVersion(value);
  }

  private substituteRefusal(buf: Buffer, start: number, end: number, out: WriteBatcher): boolean {
    const i = this.refusals.findIndex((r) => {
      const at = buf.indexOf(r.marker, start);
      return at >= 0 && at < end;
    });
    if (i < 0) return false;
    const [r] = this.refusals.splice(i, 1);
    out.addBuffer(errorResponse(r!.error));
    return true;
  }

  private dropResolvedRefusals(): void {
    // A stand-in that never failed (the server was already skipping to Sync, or the transaction
    // was aborted and it answered 25P02 itself) is resolved by its ReadyForQuery.
    this.refusals = this.refusals.filter((r) => r.resolvedByZ > this.answered);
  }

  private onServerClose(): void {
    if (this.phase === 'closed') return;
    if (!this.sawFatal && !this.closing) {
      this.log.warn('upstream connection closed unexpectedly');
      this.toClient.addBuffer(
        errorResponse({
          severity: 'FATAL',
          code: SqlState.ConnectionFailure,
          message: 'server closed the connection unexpectedly',
          detail: 'The upstream PostgreSQL server ended this session (it may have been restarted or crashed).',
          hint: 'Reconnect: new sessions work again as soon as the server accepts connections.',
        }),
      );
      this.toClient.flush();
    }
    this.shutdownBoth();
  }

  // ---- sending on pgairlock's own account ---------------------------------------------------

  /** Sends bytes to the client (virtual databases, notices). */
  sendToClient(...messages: Buffer[]): void {
    for (const m of messages) this.toClient.addBuffer(m);
    this.toClient.flush();
  }

  /** Ends the session quietly (the client said Terminate). */
  end(): void {
    this.closing = true;
    this.shutdownBoth();
  }

  /** Ends the session with a FATAL error (client side) and closes the upstream. */
  fatal(fields: PgErrorFields): void {
    if (this.phase === 'closed') return;
    // `fields` is often a PgError, whose `message` (an Error property) is not enumerable and
    // would be lost by a spread: copy the fields by name.
    const { code, message, detail, hint, position } = fields;
    this.sendToClient(errorResponse({ severity: 'FATAL', code, message, detail, hint, position }));
    this.shutdownBoth();
  }

  private fail(err: unknown): void {
    if (err instanceof PgError) {
      if (err instanceof ProtocolViolation) this.log.warn({ err: err.message }, 'protocol violation from client');
      this.fatal(err);
      return;
    }
    this.log.error({ err }, 'session failed');
    this.fatal({ code: SqlState.InternalError, message: `pgairlock internal error: ${(err as Error)?.message ?? String(err)}` });
  }

  // ---- shutdown -----------------------------------------------------------------------------

  isIdle(): boolean {
    return this.phase !== 'ready' || (this.inFlight === 0 && this.txStatus === TxStatus.Idle);
  }

  /** Graceful shutdown: idle sessions end now, busy ones when their transaction ends. */
  requestShutdown(): void {
    this.shutdownRequested = true;
    if (this.isIdle()) this.terminateForShutdown();
  }

  terminateForShutdown(): void {
    this.fatal({ code: SqlState.AdminShutdown, message: 'terminating connection because pgairlock is shutting down' });
  }

  private shutdownBoth(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    if (this.startupTimer) clearTimeout(this.startupTimer);
    this.releaseKey?.();
    this.gate?.onClose?.();
    const up = this.upstream;
    if (up && !up.destroyed) {
      if (up.writable && !this.closing) up.write(frontendTerminate());
      up.end();
      setTimeout(() => up.destroy(), 1000).unref();
    }
    const c = this.client;
    if (!c.destroyed) {
      c.end();
      setTimeout(() => c.destroy(), 1000).unref();
    }
    this.log.debug({ durationMs: Date.now() - this.startedAt }, 'session closed');
    this.env.onClose(this);
  }
}

/** Reads the severity (V, else S) of an ErrorResponse and tells whether it ends the session. */
function isFatal(buf: Buffer, start: number, end: number): boolean {
  let off = start + 5;
  while (off < end && buf[off] !== 0) {
    const field = buf[off]!;
    const [value, next] = readCString(buf, off + 1, end);
    if (field === 0x56 /* V */ || field === 0x53 /* S */) return value === 'FATAL' || value === 'PANIC';
    off = next;
  }
  return false;
}

/** "15.19 (Debian 15.19-0+deb12u1)" -> 150019; "9.6.24" -> 90624. */
export function parseServerVersion(v: string): number {
  const nums: number[] = [];
  let cur = '';
  for (const ch of v) {
    if (ch >= '0' && ch <= '9') cur += ch;
    else if (ch === '.' && cur) {
      nums.push(Number(cur));
      cur = '';
    } else break;
  }
  if (cur) nums.push(Number(cur));
  const [major = 0, minor = 0, patch = 0] = nums;
  return major >= 10 ? major * 10000 + minor : major * 10000 + minor * 100 + patch;
}

export { StartupCode };
