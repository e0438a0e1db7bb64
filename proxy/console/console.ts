import type { Logger } from 'pino';
import type { ApprovalService } from '../../governance/approvals/index.js';
import { changeDetailRows, changeListRows, LIST_COLUMNS } from '../../governance/approvals/format.js';
import type { Principal } from '../../governance/principal.js';
import { SqlState, type PgErrorFields } from '../errors.js';
import type { Session, VirtualHandler } from '../session.js';
import { commandComplete, dataRow, emptyQueryResponse, errorResponse, readyForQuery, rowDescription } from '../wire/encode.js';
import { Frontend, TxStatus } from '../wire/protocol.js';
import { ConsoleSyntaxError, HELP_ROWS, parseCommand, tokenize, type ConsoleCommand } from './command.js';

/** The virtual database name clients connect to for the admin console. */
export const CONSOLE_DATABASE = 'pgairlock';

export interface SessionRow {
  readonly id: string;
  readonly principal: string;
  readonly user: string;
  readonly database: string;
  readonly application: string;
  readonly client: string;
  readonly state: string;
  readonly since: string;
}

/** What the console can reach. Each part is optional: a command whose part is missing says so. */
export interface ConsoleDeps {
  readonly approvals?: ApprovalService;
  readonly auditRecent?: (limit: number) => Promise<{ columns: readonly string[]; rows: readonly (readonly (string | null)[])[] }>;
  readonly sessions: () => readonly SessionRow[];
  readonly log: Logger;
}

interface Result {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly (string | null)[])[];
  readonly tag: string;
}

/**
 * The admin console (pgbouncer's SHOW POOLS, for approvals): `psql -h <proxy> -p 6432 -U <user> pgairlock`.
 * The user has authenticated against the upstream as usual; the console answers simple-protocol
 * commands itself with ordinary result sets that psql prints as tables.
 */
export class AdminConsole implements VirtualHandler {
  private skippingToSync = false;

  constructor(
    private readonly session: Session,
    private readonly principal: Principal,
    private readonly deps: ConsoleDeps,
  ) {}

  async onClientMessage(type: number, buf: Buffer, start: number, end: number): Promise<void> {
    switch (type) {
      case Frontend.Query:
        await this.runText(buf.toString('utf8', start + 5, end - 1));
        return;
      case Frontend.Sync:
        if (this.skippingToSync) {
          this.skippingToSync = false;
          this.session.sendToClient(readyForQuery(TxStatus.Idle));
        }
        return;
      case Frontend.Terminate:
        this.session.end();
        return;
      default:
        if (!this.skippingToSync) {
          this.skippingToSync = true;
          this.session.sendToClient(
            errorResponse({
              code: SqlState.FeatureNotSupported,
              message: 'the pgairlock admin console speaks only the simple query protocol',
              hint: 'Use psql, or your driver with the simple protocol (node-postgres: no parameters; postgres.js: simple()).',
            }),
          );
        }
    }
  }

  private async runText(text: string): Promise<void> {
    const out: Buffer[] = [];
    let statements;
    try {
      statements = tokenize(text);
    } catch (err) {
      this.session.sendToClient(errorResponse(this.syntaxError(err)), readyForQuery(TxStatus.Idle));
      return;
    }
    if (statements.length === 0) out.push(emptyQueryResponse());
    for (const tokens of statements) {
      try {
        const cmd = parseCommand(tokens);
        if (cmd.kind === 'empty') continue;
        const r = await this.run(cmd);
        out.push(rowDescription(r.columns), ...r.rows.map((row) => dataRow(row)), commandComplete(r.tag));
      } catch (err) {
        out.push(errorResponse(err instanceof ConsoleSyntaxError ? this.syntaxError(err) : toPgError(err)));
        break; // like a multi-statement string on the server: stop at the first error
      }
    }
    out.push(readyForQuery(TxStatus.Idle));
    this.session.sendToClient(...out);
  }

  private syntaxError(err: unknown): PgErrorFields {
    return { code: SqlState.SyntaxError, message: `pgairlock console: ${(err as Error).message}`, hint: 'Run SHOW HELP; for the list of commands.' };
  }

  private async run(cmd: Exclude<ConsoleCommand, { kind: 'empty' }>): Promise<Result> {
    const approvals = () => {
      if (!this.deps.approvals) throw new ConsoleUnavailable('approvals are not configured on this pgairlock');
      return this.deps.approvals;
    };
    switch (cmd.kind) {
      case 'help':
        return { columns: ['command', 'description'], rows: HELP_ROWS, tag: 'SHOW' };
      case 'whoami':
        return { columns: ['principal', 'roles'], rows: [[this.principal.name, this.principal.roles.join(', ')]], tag: 'SHOW' };
      case 'pending':
        return { columns: LIST_COLUMNS, rows: changeListRows(await approvals().pending()), tag: 'SHOW' };
      case 'changes':
        return { columns: LIST_COLUMNS, rows: changeListRows(await approvals().list({ limit: 100 })), tag: 'SHOW' };
      case 'change':
        return { columns: ['field', 'value'], rows: changeDetailRows(await approvals().show(cmd.id)), tag: 'SHOW' };
      case 'approve': {
        const r = await approvals().approve(cmd.id, this.principal, cmd.comment);
        this.deps.log.info({ change: r.id, approver: this.principal.name, status: r.status }, 'change approved via console');
        return { columns: ['id', 'status'], rows: [[r.id, r.status]], tag: 'APPROVE' };
      }
      case 'reject': {
        const r = await approvals().reject(cmd.id, this.principal, cmd.reason);
        this.deps.log.info({ change: r.id, approver: this.principal.name }, 'change rejected via console');
        return { columns: ['id', 'status'], rows: [[r.id, r.status]], tag: 'REJECT' };
      }
      case 'audit': {
        if (!this.deps.auditRecent) throw new ConsoleUnavailable('the audit log is not configured on this pgairlock');
        const r = await this.deps.auditRecent(cmd.limit);
        return { ...r, tag: 'SHOW' };
      }
      case 'sessions': {
        const rows = this.deps.sessions().map((s) => [s.id, s.principal, s.user, s.database, s.application, s.client, s.state, s.since]);
        return { columns: ['id', 'principal', 'user', 'database', 'application', 'client', 'state', 'since'], rows, tag: 'SHOW' };
      }
    }
  }
}

class ConsoleUnavailable extends Error {}

/** Errors from governance carry a code and a hint; others become an internal error with their message. */
function toPgError(err: unknown): PgErrorFields {
  const e = err as { sqlstate?: string; code?: string; message?: string; hint?: string };
  if (err instanceof ConsoleUnavailable) return { code: SqlState.FeatureNotSupported, message: e.message ?? '', hint: 'See docs/approvals.md and docs/audit.md.' };
  const code = typeof e.sqlstate === 'string' ? e.sqlstate : typeof e.code === 'string' && e.code.length === 5 ? e.code : SqlState.InternalError;
  return { code, message: e.message ?? String(err), hint: e.hint };
}
