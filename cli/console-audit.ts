import { AuditQuery } from '../governance/audit/query.js';

const COLUMNS = ['time', 'id', 'kind', 'principal', 'database', 'decision', 'statement'] as const;

export interface ConsoleAudit {
  recent(limit: number): Promise<{ columns: readonly string[]; rows: (string | null)[][] }>;
  close(): Promise<void>;
}

/** SHOW AUDIT [LIMIT n] on the admin console: the latest records, newest first, one line each. */
export function consoleAudit(controlUrl: string): ConsoleAudit {
  const query = new AuditQuery(controlUrl);
  return {
    async recent(limit) {
      const entries = await query.search({}, { limit, order: 'desc' });
      const rows = entries.map((e) => {
        const b = e.body as Record<string, unknown>;
        const decision =
          (b.decision as { effect?: string } | undefined)?.effect ??
          (b.outcome as { status?: string } | undefined)?.status ??
          (typeof b.event === 'string' ? b.event : null);
        const sql = typeof b.sql === 'string' ? b.sql.replaceAll('\n', ' ').slice(0, 120) : null;
        const principal = typeof b.principal === 'string' ? b.principal : null;
        const database = typeof b.database === 'string' ? b.database : null;
        return [e.time, e.id, e.kind, principal, database, decision, sql];
      });
      return { columns: COLUMNS, rows };
    },
    close: () => query.close(),
  };
}
