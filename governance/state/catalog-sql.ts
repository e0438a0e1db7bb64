/**
 * The catalog queries behind a snapshot: a fixed handful of set-based queries, never one per object.
 * They run inside one REPEATABLE READ READ ONLY transaction with search_path = pg_catalog, so every
 * pg_get_*def() output is schema-qualified and the same on two databases with the same schema.
 * $1 is the text[] of excluded schema names (besides every schema starting with pg_, which PostgreSQL
 * reserves for itself: pg_catalog, pg_toast, pg_temp_N ...).
 */

const nsFilter = (alias: string): string => `${alias}.nspname NOT LIKE 'pg\\_%' AND NOT (${alias}.nspname = ANY ($1::text[]))`;
const notExtensionMember = (catalog: string, oid: string): string =>
  `NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '${catalog}'::regclass AND e.objid = ${oid} AND e.deptype = 'e')`;

export const SQL_SERVER = `SELECT current_database() AS database, current_setting('server_version_num')::int AS version`;

export const SQL_SCHEMAS = `
SELECT n.nspname AS name
FROM pg_namespace n
WHERE ${nsFilter('n')} AND ${notExtensionMember('pg_namespace', 'n.oid')}`;

export const SQL_EXTENSIONS = `
SELECT x.extname AS name, x.extversion AS version, n.nspname AS schema
FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace
WHERE x.extname <> 'plpgsql'`;

/**
 * Tables, partitioned and foreign tables, views, materialised views, sequences (with size and statistics).
 * Sizes come from relpages (heap + TOAST + indexes) as of the last VACUUM/ANALYZE/CREATE INDEX, like the row
 * estimate: pg_total_relation_size() would open (and AccessShareLock) every relation and stat its files,
 * which on 5,000 tables cost seconds of server time and would wait behind any AccessExclusiveLock.
 */
export const relationsSql = (withDefinitions: boolean): string => `
SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS relkind,
       c.relpersistence::text AS persistence,
       CASE WHEN c.relkind = 'p' THEN parts.tuples ELSE c.reltuples END::float8 AS reltuples,
       CASE WHEN c.relkind IN ('r', 'm', 'S')
            THEN c.relpages::int8 + coalesce(tc.relpages, 0) + coalesce(ix.pages, 0)
            WHEN c.relkind = 'p' THEN parts.pages
            ELSE 0 END::int8 * current_setting('block_size')::int8 AS total_bytes,
       pg_stat_get_last_vacuum_time(c.oid) AS last_vacuum,
       pg_stat_get_last_autovacuum_time(c.oid) AS last_autovacuum,
       pg_stat_get_last_analyze_time(c.oid) AS last_analyze,
       pg_stat_get_last_autoanalyze_time(c.oid) AS last_autoanalyze,
       ${withDefinitions ? `CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) END` : 'NULL::text'} AS viewdef,
       ${withDefinitions ? `CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END` : 'NULL::text'} AS partkey,
       ${withDefinitions ? `CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END` : 'NULL::text'} AS partbound,
       ${withDefinitions ? 'inh.parents' : 'NULL::text'} AS parents,
       array_to_string(c.reloptions, ', ') AS options
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class tc ON tc.oid = c.reltoastrelid
LEFT JOIN (SELECT i.inhrelid, string_agg(pn.nspname || '.' || pc.relname, ', ' ORDER BY i.inhseqno) AS parents
             FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace
            GROUP BY i.inhrelid) inh ON inh.inhrelid = c.oid
LEFT JOIN (SELECT x.indrelid, sum(i.relpages)::int8 AS pages FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid GROUP BY x.indrelid) ix ON ix.indrelid = c.oid
-- Partitioned tables: rows and pages summed over their leaf partitions (computed once, joined; a correlated
-- subquery in the target list cost ~1 s of server CPU on 5,000 tables even though it ran for none of them).
LEFT JOIN (SELECT p.oid AS root, sum(greatest(pc.reltuples, 0)) AS tuples,
                  sum(pc.relpages::int8 + coalesce(ptc.relpages, 0) + coalesce(pix.pages, 0))::int8 AS pages
             FROM pg_class p
             CROSS JOIN LATERAL pg_partition_tree(p.oid) pt
             JOIN pg_class pc ON pc.oid = pt.relid
             LEFT JOIN pg_class ptc ON ptc.oid = pc.reltoastrelid
             LEFT JOIN (SELECT x.indrelid, sum(i.relpages)::int8 AS pages FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid GROUP BY x.indrelid) pix ON pix.indrelid = pc.oid
            WHERE p.relkind = 'p' AND pt.isleaf
            GROUP BY p.oid) parts ON parts.root = c.oid
WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S') AND ${nsFilter('n')} AND ${notExtensionMember('pg_class', 'c.oid')}`;

export const SQL_RELATIONS = relationsSql(true);
/** The same rows without definitions: statistics and sizes only (the refresh fast path). */
export const SQL_RELATION_STATS = relationsSql(false);

export const SQL_COLUMNS = `
SELECT a.attrelid::int8 AS relid, a.attnum AS attnum, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS not_null, pg_get_expr(d.adbin, d.adrelid) AS "default",
       a.attidentity::text AS identity, a.attgenerated::text AS generated,
       CASE WHEN a.attcollation <> t.typcollation THEN quote_ident(co.collname) END AS collation
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_collation co ON co.oid = a.attcollation
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'f', 'v', 'm') AND ${nsFilter('n')}
ORDER BY a.attrelid, a.attnum`;

export const SQL_INDEXES = `
SELECT x.indexrelid::int8 AS oid, x.indrelid::int8 AS relid, n.nspname AS schema, i.relname AS name,
       pg_get_indexdef(x.indexrelid) AS def, x.indisunique AS is_unique, x.indisprimary AS is_primary,
       x.indisvalid AS is_valid, i.relpages::int8 * current_setting('block_size')::int8 AS bytes
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
WHERE ${nsFilter('n')}`;

export const SQL_CONSTRAINTS = `
SELECT co.oid::int8 AS oid, co.conrelid::int8 AS relid, co.conname AS name, co.contype::text AS type,
       pg_get_constraintdef(co.oid) AS def, co.confrelid::int8 AS frelid
FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
WHERE co.conrelid <> 0 AND ${nsFilter('n')}`;

export const SQL_FUNCTIONS = `
SELECT p.oid::int8 AS oid, n.nspname AS schema, p.proname AS name,
       pg_get_function_identity_arguments(p.oid) AS args, l.lanname AS language, p.prokind::text AS prokind,
       CASE WHEN p.prokind = 'a'
            THEN 'AGGREGATE ' || p.oid::regprocedure::text || ' (SFUNC = ' || a.aggtransfn::regproc::text ||
                 ', STYPE = ' || format_type(a.aggtranstype, NULL) ||
                 CASE WHEN a.aggfinalfn <> 0 THEN ', FINALFUNC = ' || a.aggfinalfn::regproc::text ELSE '' END ||
                 CASE WHEN a.agginitval IS NOT NULL THEN ', INITCOND = ' || quote_literal(a.agginitval) ELSE '' END || ')'
            ELSE pg_get_functiondef(p.oid) END AS def
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN pg_language l ON l.oid = p.prolang
LEFT JOIN pg_aggregate a ON a.aggfnoid = p.oid
WHERE ${nsFilter('n')} AND ${notExtensionMember('pg_proc', 'p.oid')}`;

export const SQL_TRIGGERS = `
SELECT t.oid::int8 AS oid, t.tgrelid::int8 AS relid, t.tgname AS name, pg_get_triggerdef(t.oid) AS def,
       t.tgfoid::int8 AS foid, t.tgenabled::text AS enabled
FROM pg_trigger t
WHERE NOT t.tgisinternal`;

export const SQL_SEQUENCES = `
SELECT s.seqrelid::int8 AS relid, format_type(s.seqtypid, NULL) AS type, s.seqstart::text AS start,
       s.seqincrement::text AS increment, s.seqmin::text AS min, s.seqmax::text AS max,
       s.seqcache::text AS cache, s.seqcycle AS cycle
FROM pg_sequence s`;

/**
 * Dependencies between user objects (OID >= 16384, FirstNormalObjectId). Views depend through their
 * pg_rewrite rule, column defaults through pg_attrdef; both are mapped back to the view / column here.
 */
export const SQL_DEPENDENCIES = `
SELECT d.classid::regclass::text AS cls, d.objid::int8 AS objid, d.objsubid AS objsubid,
       d.refclassid::regclass::text AS refcls, d.refobjid::int8 AS refobjid, d.refobjsubid AS refobjsubid,
       d.deptype::text AS deptype, r.ev_class::int8 AS rule_rel, ad.adrelid::int8 AS def_rel, ad.adnum AS def_col
FROM pg_depend d
LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
LEFT JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND ad.oid = d.objid
WHERE d.refobjid >= 16384 AND d.objid >= 16384 AND d.deptype IN ('n', 'a', 'i')
  AND d.refclassid IN ('pg_class'::regclass, 'pg_proc'::regclass)
  AND d.classid IN ('pg_class'::regclass, 'pg_rewrite'::regclass, 'pg_constraint'::regclass,
                    'pg_trigger'::regclass, 'pg_attrdef'::regclass, 'pg_proc'::regclass)`;

/** Index sizes only (the refresh fast path). */
export const SQL_INDEX_SIZES = `
SELECT n.nspname AS schema, i.relname AS name, i.relpages::int8 * current_setting('block_size')::int8 AS bytes
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
WHERE ${nsFilter('n')}`;

/**
 * A cheap fingerprint of every catalog a snapshot reads: row count and sum of xmin per catalog. DDL inserts,
 * updates or deletes rows there (changing it); VACUUM and ANALYZE update relpages/reltuples in place (not
 * changing it). Equal fingerprints mean the definitions are unchanged, so a refresh only re-reads statistics.
 * Temporary tables of any session change it too (a full read then, which is only slower, never wrong).
 */
export const SQL_CATALOG_VERSION = `
SELECT md5(string_agg(v, ',' ORDER BY v)) AS version FROM (
  SELECT 'class:' || count(*) || ':' || coalesce(sum(xmin::text::int8), 0) AS v FROM pg_class
  UNION ALL SELECT 'attribute:' || count(*) || ':' || coalesce(sum(xmin::text::int8), 0) FROM pg_attribute
  UNION ALL SELECT 'attrdef:' || count(*) || ':' || coalesce(sum(xmin::text::int8), 0) FROM pg_attrdef
  UNION ALL SELECT 'constraint:' || count(*) || ':' || coalesce(sum(xmin::text::int8), 0) FROM pg_constraint
  UNION ALL SELECT 'index:' || count(*) || ':' || coalesce(sum(xmin::text::int8), 0) FROM pg_index
  UNION ALL SELECT 'trigger:' || count(*) || ':' || coalesce(sum(xmin::text::int8), 0) FROM pg_trigger
  UNION ALL SELECT 'proc:' || count(*) || ':' || coalesce(sum(xmin::text::int8), 0) FROM pg_proc
  UNION ALL SELECT 'rewrite:' || count(*) || ':' || coalesce(sum(xmin::text::int8), 0) FROM pg_rewrite
  UNION ALL SELECT 'namespace:' || count(*) || ':' || coalesce(sum(xmin::text::int8), 0) FROM pg_namespace
  UNION ALL SELECT 'depend:' || count(*) || ':' || coalesce(sum(objid::int8 + refobjid::int8), 0) FROM pg_depend
  UNION ALL SELECT 'sequence:' || count(*) || ':' || coalesce(sum(xmin::text::int8), 0) FROM pg_sequence
  UNION ALL SELECT 'extension:' || count(*) || ':' || coalesce(sum(xmin::text::int8), 0) FROM pg_extension
  UNION ALL SELECT 'inherits:' || count(*) || ':' || coalesce(sum(xmin::text::int8), 0) FROM pg_inherits
  UNION ALL SELECT 'collation:' || count(*) || ':' || coalesce(sum(xmin::text::int8), 0) FROM pg_collation
  UNION ALL SELECT 'type:' || count(*) || ':' || coalesce(sum(xmin::text::int8), 0) FROM pg_type
) t`;
