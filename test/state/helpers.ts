import pg from 'pg';
import type { LockFact, LockMode, RelationUse, StatementFacts, StatementKind } from '../../analyzer/types.js';

/** The schema most state tests read: two tables with rows, FK, check, index, views over views, matview, trigger, sequences. */
export const FIXTURE_SQL = `
CREATE TABLE customers (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, name text DEFAULT 'anon');
CREATE TABLE orders (
  id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES customers (id),
  total numeric(10,2) NOT NULL DEFAULT 0,
  status text CHECK (status IN ('new', 'paid'))
);
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE VIEW paid_orders AS SELECT id, customer_id, total FROM orders WHERE status = 'paid';
CREATE VIEW big_paid AS SELECT id, total FROM paid_orders WHERE total > 50;
CREATE MATERIALIZED VIEW order_totals AS SELECT customer_id, sum(total) AS total FROM orders GROUP BY 1;
CREATE FUNCTION set_total() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.total := coalesce(NEW.total, 0); RETURN NEW; END $$;
CREATE TRIGGER orders_total BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION set_total();
CREATE FUNCTION add_one(a integer) RETURNS integer LANGUAGE sql IMMUTABLE RETURN a + 1;
CREATE SEQUENCE invoice_no START 1000;
CREATE TABLE events (id bigint NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE INDEX events_at ON events (at);
CREATE SCHEMA pgairlock;
CREATE TABLE pgairlock.hidden (id int);
`;

export const FIXTURE_ROWS_SQL = `
INSERT INTO customers (email) SELECT 'c' || g || '@example.com' FROM generate_series(1, 20000) g;
INSERT INTO orders (customer_id, total, status) SELECT 1 + g % 20000, g % 100, CASE WHEN g % 2 = 0 THEN 'paid' ELSE 'new' END FROM generate_series(1, 50000) g;
INSERT INTO events SELECT g, date '2025-06-01' + (g % 400) FROM generate_series(1, 30000) g;
REFRESH MATERIALIZED VIEW order_totals;
ANALYZE customers; ANALYZE orders; ANALYZE events; ANALYZE order_totals;
`;

export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Statement facts as the analyzer would give them (only the fields impact and usage read matter). */
export function facts(f: {
  node: string;
  kind?: StatementKind;
  relations?: RelationUse[];
  locks?: { relation: { schema?: string; name: string }; mode: LockMode; rewrite?: boolean; scan?: boolean }[];
  functions?: { schema?: string; name: string }[];
  nested?: StatementFacts[];
}): StatementFacts {
  const locks: LockFact[] = (f.locks ?? []).map((l) => ({ relation: l.relation, mode: l.mode, rewrite: l.rewrite ?? false, scan: l.scan ?? false, reason: 'test' }));
  return {
    index: 0, byteStart: 0, byteEnd: 0, text: '', location: { byte: 0, char: 0 }, node: f.node, kind: f.kind ?? 'ddl', commandTag: '',
    relations: f.relations ?? [], functions: f.functions ?? [], types: [], schemas: [], databases: [], roles: [], locks,
    destructive: [], opaque: [], privileged: [], nested: f.nested ?? [], findings: [], fingerprint: '', normalized: '',
  };
}
