import type { Command } from 'commander';
import { ApprovalError, CHANGE_STATUSES, describeMissing, formatChange, formatChangeList, isApprovalError, type ChangeRequest, type ChangeStatus } from '../../governance/approvals/index.js';
import { createApprovalService, redisUrlFrom } from '../../governance/approvals/factory.js';
import type { ApprovalService } from '../../governance/approvals/service.js';
import { loadConfig } from '../../governance/config/load.js';
import type { Config } from '../../governance/config/schema.js';
import type { Principal } from '../../governance/principal.js';
import { compilePrincipals } from '../../governance/principals.js';

/**
 * `pgairlock changes list|show|approve|reject|cancel` over the shared approval store (docs/approvals.md).
 * The CLI needs Redis (REDIS_URL or redis.url): a proxy's in-process store lives in that proxy's memory.
 * The acting principal (--as, or PGAIRLOCK_PRINCIPAL) is looked up by name in the configured principals.
 * Exit codes: 0 done; 1 refused (separation of duties, not pending, not found, ...); 2 usage, config or store errors.
 */

interface Common {
  config?: string;
  redisUrl?: string;
  json?: boolean;
}

class CliFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

const EXIT_2_CODES = new Set(['store_unavailable', 'in_process_store', 'invalid_id', 'reason_required', 'invalid_request']);

function describeError(err: ApprovalError): string {
  return `ERROR ${err.sqlstate} (${err.code}): ${err.message}${err.hint ? `\nHINT: ${err.hint}` : ''}`;
}

async function run(action: () => Promise<void>): Promise<void> {
  try {
    await action();
    process.exitCode = 0;
  } catch (err) {
    if (err instanceof CliFailure) {
      console.error(`pgairlock changes: ${err.message}`);
      process.exitCode = err.exitCode;
    } else if (isApprovalError(err)) {
      console.error(`pgairlock changes: ${describeError(err)}`);
      process.exitCode = EXIT_2_CODES.has(err.code) ? 2 : 1;
    } else {
      console.error(`pgairlock changes: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 2;
    }
  }
}

function configOf(o: Common): Config {
  return loadConfig(o.config ? { path: o.config } : {}).config;
}

async function withService<T>(o: Common, fn: (svc: ApprovalService, config: Config) => Promise<T>): Promise<T> {
  const config = configOf(o);
  const env = { ...process.env, ...(o.redisUrl ? { REDIS_URL: o.redisUrl } : {}) };
  if (!redisUrlFrom(config, env)) {
    throw new ApprovalError(
      'in_process_store',
      'no shared approval store: REDIS_URL (or redis.url in the config) is not set, so a running proxy keeps its change requests in its own memory, which this command cannot reach',
      'set REDIS_URL to the Redis the proxy uses, or approve through the proxy itself: psql -h <proxy> -p 6432 -U <user> pgairlock, then SHOW PENDING; and APPROVE <id>; (or the MCP tools)',
    );
  }
  const svc = createApprovalService(config, { env, connectionName: 'pgairlock-cli' });
  try {
    await svc.store.ready(config.redis.connect_timeout_ms);
    return await fn(svc, config);
  } finally {
    await svc.store.close();
  }
}

/** The acting principal: a name from principals.map (or default_principal), with the roles configured for it. */
function actingPrincipal(config: Config, as: string | undefined): Principal {
  const name = as ?? process.env.PGAIRLOCK_PRINCIPAL;
  if (!name) throw new CliFailure('say who is acting: --as <principal> (or PGAIRLOCK_PRINCIPAL), a name from principals.map in the config', 2);
  const p = compilePrincipals(config.principals).byName(name);
  if (!p) {
    const known = config.principals.map.map((e) => e.name);
    throw new CliFailure(`unknown principal "${name}": not in principals.map of the config${known.length ? ` (known: ${known.join(', ')})` : ' (the config names no principals)'}`, 2);
  }
  return p;
}

function print(o: Common, value: ChangeRequest | ChangeRequest[], text: string): void {
  console.log(o.json ? JSON.stringify(value, null, 2) : text);
}

function parseStatuses(s: string | undefined, all: boolean | undefined): ChangeStatus[] | undefined {
  if (all) return undefined;
  if (!s) return ['pending', 'approved'];
  const out = s.split(',').map((x) => x.trim()).filter(Boolean);
  for (const x of out) {
    if (!(CHANGE_STATUSES as readonly string[]).includes(x)) throw new CliFailure(`unknown status "${x}": use ${CHANGE_STATUSES.join(', ')}`, 2);
  }
  return out as ChangeStatus[];
}

const common = (c: Command): Command =>
  c
    .option('-c, --config <path>', 'config file (default: $PGAIRLOCK_CONFIG or ./pgairlock.yaml)')
    .option('--redis-url <url>', 'Redis of the proxies (default: $REDIS_URL, then redis.url)')
    .option('--json', 'print JSON');

export function registerChanges(program: Command): void {
  const changes = program.command('changes').description('change requests held for approval: list, show, approve, reject, cancel');

  common(changes.command('list'))
    .description('list change requests, newest first (default: open ones, i.e. pending and approved-not-yet-run)')
    .option('--status <list>', `comma-separated statuses (${CHANGE_STATUSES.join(', ')})`)
    .option('--all', 'every status')
    .option('--requester <principal>', 'only this requester')
    .option('--database <name>', 'only this database')
    .option('-n, --limit <n>', 'at most this many (max 1000)', '100')
    .action((o: Common & { status?: string; all?: boolean; requester?: string; database?: string; limit: string }) =>
      run(() =>
        withService(o, async (svc) => {
          const limit = Number(o.limit);
          if (!Number.isInteger(limit) || limit < 1) throw new CliFailure(`--limit must be a positive integer, got ${o.limit}`, 2);
          const status = parseStatuses(o.status, o.all);
          const rows = await svc.list({ ...(status ? { status } : {}), ...(o.requester ? { requester: o.requester } : {}), ...(o.database ? { database: o.database } : {}), limit });
          print(o, rows, formatChangeList(rows));
        }),
      ),
    );

  common(changes.command('show <id>'))
    .description('everything about one change request: SQL, facts, rules, approvals, events')
    .action((id: string, o: Common) =>
      run(() =>
        withService(o, async (svc) => {
          const r = await svc.show(id);
          print(o, r, formatChange(r));
        }),
      ),
    );

  common(changes.command('approve <id>'))
    .description('approve a change request as --as <principal> (never your own; needs one of its required roles)')
    .option('--as <principal>', 'who approves: a name from principals.map (default $PGAIRLOCK_PRINCIPAL)')
    .option('-m, --comment <text>', 'a comment kept with the approval')
    .action((id: string, o: Common & { as?: string; comment?: string }) =>
      run(() =>
        withService(o, async (svc, config) => {
          const r = await svc.approve(id, actingPrincipal(config, o.as), o.comment);
          print(o, r, r.status === 'approved' ? `approved ${r.id}: ${r.requester.name} may now run it once, before ${r.expiresAt}` : `approval of ${r.id} recorded; it still needs ${describeMissing(r)}`);
        }),
      ),
    );

  common(changes.command('reject <id>'))
    .description('reject a change request as --as <principal>, with a reason')
    .option('--as <principal>', 'who rejects: a name from principals.map (default $PGAIRLOCK_PRINCIPAL)')
    .option('-r, --reason <text>', 'why (required)')
    .action((id: string, o: Common & { as?: string; reason?: string }) =>
      run(() =>
        withService(o, async (svc, config) => {
          if (!o.reason?.trim()) throw new CliFailure('rejecting needs --reason <text>', 2);
          const r = await svc.reject(id, actingPrincipal(config, o.as), o.reason);
          print(o, r, `rejected ${r.id}`);
        }),
      ),
    );

  common(changes.command('cancel <id>'))
    .description('cancel an open change request (its requester, or a principal holding a required role)')
    .option('--as <principal>', 'who cancels: a name from principals.map (default $PGAIRLOCK_PRINCIPAL)')
    .option('-r, --reason <text>', 'why (required)')
    .action((id: string, o: Common & { as?: string; reason?: string }) =>
      run(() =>
        withService(o, async (svc, config) => {
          if (!o.reason?.trim()) throw new CliFailure('cancelling needs --reason <text>', 2);
          const r = await svc.cancel(id, actingPrincipal(config, o.as), o.reason);
          print(o, r, `cancelled ${r.id}`);
        }),
      ),
    );
}
