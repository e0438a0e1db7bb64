import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Request, Response } from 'express';
import type { Config } from '../governance/config/schema.js';
import { parseHostPort } from '../proxy/server.js';
import type { McpGovernance, McpIdentity } from './core.js';
import { buildMcpServer } from './server.js';

/** Token -> identity. Tokens are configured as sha256 hashes and compared in constant time. */
export function tokenVerifier(config: Config, env: NodeJS.ProcessEnv = process.env): (token: string) => McpIdentity | undefined {
  const entries = config.mcp.tokens.map((t) => ({ hash: Buffer.from(t.sha256, 'hex'), t }));
  return (token) => {
    const h = createHash('sha256').update(token).digest();
    const hit = entries.find((e) => e.hash.length === h.length && timingSafeEqual(e.hash, h));
    if (!hit) return undefined;
    const url = hit.t.database_url_env ? env[hit.t.database_url_env] : undefined;
    return { principal: { name: hit.t.principal, roles: hit.t.roles }, ...(url ? { databaseUrl: url } : {}) };
  };
}

export interface McpHttpServer {
  readonly address: { host: string; port: number };
  readonly url: string;
  close(): Promise<void>;
}

interface Live {
  readonly transport: StreamableHTTPServerTransport;
  readonly principal: string;
}

/**
 * Streamable HTTP on its own port (default 127.0.0.1:6433, path /mcp). Every request needs a
 * bearer token (401 with WWW-Authenticate otherwise); each MCP session is bound to the principal
 * of the token that opened it and gets a server with that principal's tools only.
 */
export async function startMcpHttp(gov: McpGovernance, config: Config): Promise<McpHttpServer> {
  const { host, port } = parseHostPort(config.mcp.listen);
  const app = createMcpExpressApp({ host });
  const verify = tokenVerifier(config);
  const identities = new Map<string, McpIdentity>();
  const bearer = requireBearerAuth({
    verifier: {
      verifyAccessToken(token: string): Promise<AuthInfo> {
        const id = verify(token);
        if (!id) return Promise.reject(new InvalidTokenError('unknown token'));
        identities.set(token, id);
        // The SDK requires an expiry; configured tokens do not expire, so one hour past every request.
        return Promise.resolve({ token, clientId: id.principal.name, scopes: [], expiresAt: Math.floor(Date.now() / 1000) + 3600 });
      },
    },
  });
  const sessions = new Map<string, Live>();
  const path = config.mcp.path;

  const identityOf = (req: Request): McpIdentity | undefined => (req.auth ? identities.get(req.auth.token) : undefined);

  app.post(path, bearer, async (req: Request, res: Response) => {
    const id = identityOf(req);
    if (!id) {
      res.status(401).json({ error: 'invalid_token' });
      return;
    }
    const sid = req.headers['mcp-session-id'];
    if (typeof sid === 'string') {
      const live = sessions.get(sid);
      if (!live) {
        res.status(404).json({ jsonrpc: '2.0', error: { code: -32001, message: 'unknown MCP session: initialize again' }, id: null });
        return;
      }
      if (live.principal !== id.principal.name) {
        res.status(403).json({ jsonrpc: '2.0', error: { code: -32003, message: 'this MCP session belongs to another principal' }, id: null });
        return;
      }
      await live.transport.handleRequest(req, res, req.body);
      return;
    }
    if (!isInitializeRequest(req.body)) {
      res.status(400).json({ jsonrpc: '2.0', error: { code: -32000, message: 'no mcp-session-id: send initialize first' }, id: null });
      return;
    }
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (newId) => {
        sessions.set(newId, { transport, principal: id.principal.name });
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    const server = buildMcpServer(gov, id);
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });

  const existing = async (req: Request, res: Response) => {
    const id = identityOf(req);
    const sid = req.headers['mcp-session-id'];
    const live = typeof sid === 'string' ? sessions.get(sid) : undefined;
    if (!id || !live || live.principal !== id.principal.name) {
      res.status(404).send('unknown MCP session');
      return;
    }
    await live.transport.handleRequest(req, res);
  };
  app.get(path, bearer, existing);
  app.delete(path, bearer, existing);

  const server: Server = await new Promise((resolve, reject) => {
    // Express 5 hands a listen error to the callback.
    const s = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(s)));
    s.once('error', reject);
  });
  const addr = server.address() as AddressInfo;
  gov.log.info({ listen: `${addr.address}:${addr.port}`, path }, 'MCP (Streamable HTTP) listening');
  return {
    address: { host: addr.address, port: addr.port },
    url: `http://${addr.address}:${addr.port}${path}`,
    async close() {
      for (const live of sessions.values()) await live.transport.close().catch(() => undefined);
      sessions.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
