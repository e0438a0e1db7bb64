import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Command } from 'commander';
import pg from 'pg';
import { loadConfig } from '../../governance/config/load.js';
import { controlDatabaseUrl } from '../../governance/audit/control.js';
import { migrate } from '../../governance/audit/migrations.js';
import { AuditQuery, parseAnchor, type SearchFilters, type StoredEntry, type VerifyReport } from '../../governance/audit/query.js';

/**
 * `pgairlock audit verify|tail|show|search|export|why|migrate` over the control database (docs/audit.md).
 * Exit codes: 0 ok; 1 verify found a break, or show/why found no such record; 2 usage, config or connection errors.
 */

interface Common { config?: string; databaseUrl?: string; json?: boolean }
interface FilterOpts { since?: string; until?: string; principal?: string; object?: string; decision?: string; fingerprint?: string; kind?: string; session?: string; instance?: string }

class CliFailure extends Error {
  constructor(message: string, readonly exitCode: number) { super(message); }
}

function resolveUrl(opts: Common): string {
  if (opts.databaseUrl) return opts.databaseUrl;
  const { config } = loadConfig(opts.config ? { path: opts.config } : {});
  return controlDatabaseUrl(config);
}

function safeUrl(url: string): string {
  try { const u = new URL(url); if (u.password) u.password = '***'; return u.toString(); } catch { return '(invalid url)'; }
}

async function withQuery<T>(opts: Common, fn: (q: AuditQuery, url: string) => Promise<T>): Promise<T> {
  const url = resolveUrl(opts);
  const q = new AuditQuery(url);
  try {
    return await fn(q, url);
  } catch (err) {
    if (err instanceof CliFailure) throw err;
    const code = (err as { code?: string }).code;
    if (code === '42P01' || code === '3F000') {
      throw new CliFailure(`no audit log in ${safeUrl(url)}: pgairlock has not run against this control database yet (or run \`pgairlock audit migrate\`)`, 2);
    }
    throw new CliFailure(`cannot read the audit log at ${safeUrl(url)}: ${err instanceof Error ? err.message : String(err)}`, 2);
  } finally {
    await q.close().catch(() => undefined);
  }
}

function filtersOf(o: FilterOpts): SearchFilters {
  return {
    ...(o.since ? { since: o.since } : {}), ...(o.until ? { until: o.until } : {}), ...(o.principal ? { principal: o.principal } : {}),
    ...(o.object ? { object: o.object } : {}), ...(o.decision ? { decision: o.decision } : {}), ...(o.fingerprint ? { fingerprint: o.fingerprint } : {}),
    ...(o.kind ? { kind: o.kind } : {}), ...(o.session ? { sessionId: o.session } : {}), ...(o.instance ? { instance: o.instance } : {}),
  };
}

/** One line per record for people: time, kind, verdict, principal, chain position, id, what. */
export function formatLine(e: StoredEntry): string {
  const b = e.body;
  const s = (v: unknown) => (typeof v === 'string' ? v : '');
  const decision = b.decision && typeof b.decision === 'object' && !Array.isArray(b.decision) ? s((b.decision as Record<string, unknown>).effect) : '';
  const outcome = b.outcome && typeof b.outcome === 'object' && !Array.isArray(b.outcome) ? (b.outcome as Record<string, unknown>) : undefined;
  let what: string;
  switch (e.kind) {
    case 'decision': what = s(b.sql); break;
    case 'outcome': what = `${s(outcome?.status)} ${s(outcome?.command_tag) || s(outcome?.sqlstate)} (decision ${s(b.decision_id)})`; break;
    case 'read_aggregate': what = `${typeof b.count === 'number' ? b.count : '?'}x ${s(b.sample_sql)}`; break;
    case 'approval': what = `${s(b.event)} change ${s(b.change_id)}${b.comment ? `: ${s(b.comment)}` : ''}`; break;
    case 'drift': what = `${s(b.object)}: ${s(b.detail)}`; break;
    default: what = `${s(b.database_user)}@${s(b.database)} ${s(b.application_name)}`;
  }
  const oneLine = what.replaceAll('\n', ' ');
  return [e.time, e.kind.padEnd(14), (decision || '-').padEnd(5), (s(b.principal) || '-').padEnd(20), `${e.instance}#${e.seq}`, e.id, oneLine.length > 160 ? `${oneLine.slice(0, 157)}...` : oneLine].join('  ');
}

function printVerify(r: VerifyReport, json: boolean): void {
  if (json) { console.log(JSON.stringify(r, null, 2)); return; }
  if (r.chains.length === 0) console.log('no audit records yet');
  for (const c of r.chains) {
    if (c.break) console.log(`BROKEN  ${c.instance}: ${c.break.message}\n        first bad record: id ${c.break.id ?? '(none)'} seq ${c.break.seq} (${c.break.kind})`);
    else console.log(`ok      ${c.instance}: ${c.records} records, head seq ${c.head?.seq ?? 0} hash ${c.head?.hash ?? '-'}`);
  }
  console.log(r.ok ? 'audit log verified: every chain is whole' : 'audit log verification FAILED');
}

function addFilters(cmd: Command): Command {
  return cmd
    .option('--since <time>', 'records at or after this time (ISO 8601 or anything PostgreSQL reads as timestamptz)')
    .option('--until <time>', 'records before this time')
    .option('--principal <name>', 'principal name')
    .option('--object <name>', 'relation named by the statement (schema.name or name)')
    .option('--decision <effect>', 'allow, deny or hold')
    .option('--fingerprint <hex>', 'statement fingerprint')
    .option('--kind <kind>', 'record kind (decision, outcome, read_aggregate, approval, session_start, session_end, drift) or statement kind (read, write, ddl, dcl, ...)')
    .option('--session <id>', 'session id')
    .option('--instance <name>', 'proxy instance (chain)');
}

function common(cmd: Command): Command {
  return cmd
    .option('-c, --config <path>', 'config file (default: $PGAIRLOCK_CONFIG or ./pgairlock.yaml)')
    .option('--database-url <url>', 'control database (default: $PGAIRLOCK_AUDIT_DATABASE_URL, audit.database_url, or the upstream server\'s postgres database)');
}

async function run(action: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await action();
  } catch (err) {
    if (err instanceof CliFailure) { console.error(`pgairlock audit: ${err.message}`); process.exitCode = err.exitCode; return; }
    throw err;
  }
}

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('query and verify the audit trail (docs/audit.md)');

  common(audit.command('verify').description('walk every hash chain; exit 1 at the first broken or missing link'))
    .option('--instance <name>', 'only this chain').option('--json', 'machine-readable report')
    .option('--anchor <instance:seq:hash>', 'a head recorded earlier; fails if the chain was rewritten or truncated since (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .action((o: Common & { instance?: string; anchor: string[] }) => run(() => withQuery(o, async (q) => {
      let anchors;
      try { anchors = o.anchor.map(parseAnchor); } catch (err) { throw new CliFailure((err as Error).message, 2); }
      const r = await q.verify({ ...(o.instance ? { instance: o.instance } : {}), anchors });
      printVerify(r, o.json === true);
      return r.ok ? 0 : 1;
    })));

  addFilters(common(audit.command('tail').description('the latest records; --follow keeps printing new ones')))
    .option('-n, --lines <n>', 'how many of the latest records', '20').option('-f, --follow', 'keep printing new records until interrupted')
    .option('--interval <ms>', 'poll interval with --follow', '500').option('--json', 'one JSON object per line')
    .action((o: Common & FilterOpts & { lines: string; follow?: boolean; interval: string }) => run(() => withQuery(o, async (q) => {
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        for await (const e of q.tail({ last: Number(o.lines), follow: o.follow === true, intervalMs: Number(o.interval), signal: ac.signal, filters: filtersOf(o) })) {
          console.log(o.json ? JSON.stringify(e) : formatLine(e));
        }
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
      return 0;
    })));

  common(audit.command('show <id>').description('one record (as stored) and the records linked to it')).option('--json', 'JSON output')
    .action((id: string, o: Common) => run(() => withQuery(o, async (q) => {
      const s = await q.show(id);
      if (!s) { console.error(`pgairlock audit: no record with id ${id}`); return 1; }
      if (o.json) { console.log(JSON.stringify(s, null, 2)); return 0; }
      console.log(JSON.stringify(s.entry, null, 2));
      for (const r of s.related) console.log(`related: ${formatLine(r)}`);
      return 0;
    })));

  addFilters(common(audit.command('search').description('records matching filters, newest first')))
    .option('--limit <n>', 'at most this many', '100').option('--json', 'one JSON object per line')
    .action((o: Common & FilterOpts & { limit: string }) => run(() => withQuery(o, async (q) => {
      const rows = await q.search(filtersOf(o), { limit: Number(o.limit) });
      for (const e of rows) console.log(o.json ? JSON.stringify(e) : formatLine(e));
      return 0;
    })));

  addFilters(common(audit.command('export').description('records as JSON lines for a SIEM (oldest first)')))
    .requiredOption('--format <format>', 'jsonl (the only format)').option('-o, --out <file>', 'write to a file instead of stdout')
    .action((o: Common & FilterOpts & { format: string; out?: string }) => run(async () => {
      if (o.format !== 'jsonl') throw new CliFailure(`unknown export format ${JSON.stringify(o.format)}: use --format jsonl`, 2);
      return withQuery(o, async (q) => {
        const out = o.out ? createWriteStream(o.out) : process.stdout;
        const n = await q.exportJsonl(filtersOf(o), async (line) => { if (!out.write(line)) await once(out, 'drain'); });
        if (o.out) { await new Promise<void>((resolve, reject) => (out as ReturnType<typeof createWriteStream>).end((e?: Error | null) => (e ? reject(e) : resolve()))); console.error(`exported ${n} records to ${o.out}`); }
        return 0;
      });
    }));

  common(audit.command('why <id>').description('why a statement was allowed, refused or held, from its record'))
    .action((id: string, o: Common) => run(() => withQuery(o, async (q) => {
      const text = await q.why(id);
      if (text === null) { console.error(`pgairlock audit: no record with id ${id}`); return 1; }
      console.log(text);
      return 0;
    })));

  common(audit.command('migrate').description('create or upgrade schema pgairlock in the control database (run as its owner)'))
    .action((o: Common) => run(async () => {
      const url = resolveUrl(o);
      const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
      try {
        await c.connect();
        const r = await migrate(c);
        console.log(r.applied.length ? `audit schema migrated from version ${r.from} to ${r.to}` : `audit schema already at version ${r.to}`);
        return 0;
      } catch (err) {
        throw new CliFailure(`migration failed on ${safeUrl(url)}: ${err instanceof Error ? err.message : String(err)}`, 2);
      } finally {
        await c.end().catch(() => undefined);
      }
    }));
}
