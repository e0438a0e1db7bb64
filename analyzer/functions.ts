/**
 * What the analyzer knows about functions by name. Three lists, one job each:
 * - KNOWN_SAFE: built-in (pg_catalog) functions that only compute a value or read, with no effect
 *   outside the statement. A call of any function NOT on this list makes a statement `opaque`,
 *   because a user-defined or extension function can do anything.
 * - PRIVILEGED: built-ins that reach outside the database or act on the server (files, other
 *   backends, other servers). A call makes the statement `privileged`.
 * - SEQUENCE_FUNCTIONS: known effect on a named sequence (recorded as a relation use instead).
 * Names match only when unqualified or qualified with pg_catalog: `myschema.lower()` is a user function.
 * To extend: add lower-case names here; docs/analyzer.md explains the policy.
 */

const SAFE = [
  // aggregates
  'count', 'sum', 'avg', 'min', 'max', 'array_agg', 'string_agg', 'json_agg', 'jsonb_agg', 'json_object_agg',
  'jsonb_object_agg', 'bool_and', 'bool_or', 'every', 'bit_and', 'bit_or', 'bit_xor', 'stddev', 'stddev_pop',
  'stddev_samp', 'variance', 'var_pop', 'var_samp', 'corr', 'covar_pop', 'covar_samp', 'regr_slope',
  'regr_intercept', 'regr_count', 'regr_r2', 'percentile_cont', 'percentile_disc', 'mode', 'xmlagg', 'any_value',
  'range_agg', 'range_intersect_agg', 'grouping',
  // window functions
  'row_number', 'rank', 'dense_rank', 'percent_rank', 'cume_dist', 'ntile', 'lag', 'lead', 'first_value',
  'last_value', 'nth_value',
  // conditional / comparison helpers written as calls
  'coalesce', 'nullif', 'greatest', 'least', 'num_nulls', 'num_nonnulls',
  // strings
  'lower', 'upper', 'initcap', 'length', 'char_length', 'character_length', 'octet_length', 'bit_length',
  'substring', 'substr', 'trim', 'btrim', 'ltrim', 'rtrim', 'replace', 'concat', 'concat_ws', 'format',
  'left', 'right', 'lpad', 'rpad', 'repeat', 'reverse', 'position', 'strpos', 'split_part', 'starts_with',
  'overlay', 'translate', 'ascii', 'chr', 'md5', 'sha224', 'sha256', 'sha384', 'sha512', 'encode', 'decode',
  'quote_ident', 'quote_literal', 'quote_nullable', 'regexp_replace', 'regexp_matches', 'regexp_match',
  'regexp_split_to_array', 'regexp_split_to_table', 'regexp_count', 'regexp_instr', 'regexp_like', 'regexp_substr',
  'string_to_array', 'string_to_table', 'array_to_string', 'to_hex', 'to_ascii', 'normalize', 'is_normalized',
  'unistr', 'casefold', 'convert_from', 'convert_to', 'get_byte', 'set_byte', 'crc32', 'crc32c',
  // numbers
  'abs', 'round', 'floor', 'ceil', 'ceiling', 'trunc', 'mod', 'power', 'pow', 'sqrt', 'cbrt', 'exp', 'ln',
  'log', 'log10', 'sign', 'pi', 'degrees', 'radians', 'sin', 'cos', 'tan', 'asin', 'acos', 'atan', 'atan2',
  'width_bucket', 'div', 'gcd', 'lcm', 'factorial', 'scale', 'min_scale', 'trim_scale', 'random', 'random_normal',
  'setseed', 'numeric', 'int4', 'int8', 'float8', 'text',
  // dates and times
  'now', 'clock_timestamp', 'statement_timestamp', 'transaction_timestamp', 'timeofday', 'date_trunc',
  'date_part', 'extract', 'date_bin', 'age', 'make_date', 'make_time', 'make_timestamp', 'make_timestamptz',
  'make_interval', 'to_char', 'to_date', 'to_timestamp', 'to_number', 'isfinite', 'justify_days',
  'justify_hours', 'justify_interval', 'timezone', 'date_add', 'date_subtract',
  // arrays, ranges, json
  'array_length', 'array_lower', 'array_upper', 'array_ndims', 'array_dims', 'cardinality', 'array_position',
  'array_positions', 'array_append', 'array_prepend', 'array_cat', 'array_remove', 'array_replace',
  'array_fill', 'unnest', 'generate_series', 'generate_subscripts', 'lower_inc', 'upper_inc', 'isempty',
  'range_merge', 'to_json', 'to_jsonb', 'row_to_json', 'array_to_json', 'json_build_object',
  'jsonb_build_object', 'json_build_array', 'jsonb_build_array', 'json_object', 'jsonb_object',
  'json_array_length', 'jsonb_array_length', 'json_each', 'jsonb_each', 'json_each_text', 'jsonb_each_text',
  'json_extract_path', 'jsonb_extract_path', 'json_extract_path_text', 'jsonb_extract_path_text',
  'json_object_keys', 'jsonb_object_keys', 'json_array_elements', 'jsonb_array_elements',
  'json_array_elements_text', 'jsonb_array_elements_text', 'json_typeof', 'jsonb_typeof', 'jsonb_set',
  'jsonb_set_lax', 'jsonb_insert', 'jsonb_strip_nulls', 'json_strip_nulls', 'jsonb_pretty', 'jsonb_path_query',
  'jsonb_path_query_array', 'jsonb_path_query_first', 'jsonb_path_exists', 'jsonb_path_match',
  'json_populate_record', 'jsonb_populate_record', 'json_to_record', 'jsonb_to_record', 'json_to_recordset',
  'jsonb_to_recordset', 'json_scalar', 'json_serialize',
  // text search
  'to_tsvector', 'to_tsquery', 'plainto_tsquery', 'phraseto_tsquery', 'websearch_to_tsquery', 'ts_rank',
  'ts_rank_cd', 'ts_headline', 'setweight', 'strip', 'numnode', 'querytree', 'tsvector_to_array',
  'array_to_tsvector', 'similarity', 'word_similarity',
  // uuid, network, misc value functions
  'gen_random_uuid', 'uuidv4', 'uuidv7', 'uuid_extract_timestamp', 'uuid_extract_version', 'host', 'hostmask',
  'masklen', 'netmask', 'network', 'family', 'broadcast', 'inet_same_family', 'abbrev', 'set_masklen',
  // session and catalog information (read-only)
  'current_database', 'current_schema', 'current_schemas', 'current_user', 'session_user', 'current_role',
  'current_catalog', 'version', 'current_setting', 'pg_backend_pid', 'inet_client_addr', 'inet_client_port',
  'inet_server_addr', 'inet_server_port', 'pg_postmaster_start_time', 'pg_conf_load_time', 'pg_is_in_recovery',
  'pg_typeof', 'pg_column_size', 'pg_relation_size', 'pg_total_relation_size', 'pg_table_size',
  'pg_indexes_size', 'pg_database_size', 'pg_size_pretty', 'pg_size_bytes', 'pg_get_indexdef',
  'pg_get_viewdef', 'pg_get_constraintdef', 'pg_get_functiondef', 'pg_get_function_arguments',
  'pg_get_function_result', 'pg_get_triggerdef', 'pg_get_ruledef', 'pg_get_expr', 'pg_get_serial_sequence',
  'pg_get_userbyid', 'pg_get_keywords', 'pg_table_is_visible', 'pg_type_is_visible', 'pg_function_is_visible',
  'format_type', 'obj_description', 'col_description', 'shobj_description', 'has_table_privilege',
  'has_column_privilege', 'has_schema_privilege', 'has_database_privilege', 'has_function_privilege',
  'has_sequence_privilege', 'pg_has_role', 'to_regclass', 'to_regtype', 'to_regproc', 'to_regnamespace',
  'to_regrole', 'pg_current_wal_lsn', 'pg_last_wal_replay_lsn', 'pg_last_xact_replay_timestamp',
  'pg_wal_lsn_diff', 'txid_current', 'txid_current_if_assigned', 'txid_current_snapshot', 'pg_current_xact_id',
  'pg_current_xact_id_if_assigned', 'pg_current_snapshot', 'pg_xact_status', 'pg_blocking_pids',
  'pg_stat_get_activity', 'pg_jit_available', 'pg_trigger_depth', 'pg_listening_channels',
  'pg_notification_queue_usage', 'pg_tablespace_location', 'pg_encoding_to_char', 'pg_client_encoding',
  'row_security_active', 'pg_relation_filenode', 'pg_relation_filepath', 'pg_partition_tree',
  'pg_partition_root', 'pg_partition_ancestors', 'pg_input_is_valid', 'pg_input_error_info',
  // advisory locks: no effect on data (they can make others wait, which policy may judge)
  'pg_advisory_lock', 'pg_advisory_unlock', 'pg_advisory_xact_lock', 'pg_try_advisory_lock',
  'pg_try_advisory_xact_lock', 'pg_advisory_lock_shared', 'pg_advisory_unlock_shared',
  'pg_advisory_xact_lock_shared', 'pg_try_advisory_lock_shared', 'pg_try_advisory_xact_lock_shared',
  'pg_advisory_unlock_all', 'pg_sleep', 'pg_sleep_for', 'pg_sleep_until',
  // sequences: recorded as relation uses (see SEQUENCE_FUNCTIONS)
  'nextval', 'currval', 'setval', 'lastval',
  // functions the grammar itself emits for SQL syntax (SIMILAR TO, COLLATION FOR, SYSTEM_USER ...)
  'similar_to_escape', 'like_escape', 'pg_collation_for', 'system_user', 'xmlconcat', 'xmlexists',
  // type-named conversion functions and range constructors
  'date', 'time', 'timetz', 'timestamp', 'timestamptz', 'interval', 'bool', 'float4', 'int2', 'varchar',
  'bpchar', 'name', 'uuid', 'json', 'jsonb', 'bytea', 'inet', 'cidr', 'money', 'regclass', 'int4range',
  'int8range', 'numrange', 'tsrange', 'tstzrange', 'daterange', 'int4multirange', 'int8multirange',
  'nummultirange', 'tsmultirange', 'tstzmultirange', 'datemultirange', 'upper_inf', 'lower_inf',
  'has_any_column_privilege', 'has_type_privilege', 'has_tablespace_privilege', 'has_foreign_data_wrapper_privilege',
  'has_server_privilege', 'has_language_privilege', 'has_parameter_privilege', 'array_sample', 'array_shuffle',
  'array_reverse', 'array_sort', 'trim_array', 'json_array', 'json_agg_strict', 'jsonb_agg_strict',
  // common extension functions that only compute a value (uuid-ossp, pgcrypto, unaccent, pg_trgm)
  'uuid_generate_v1', 'uuid_generate_v1mc', 'uuid_generate_v3', 'uuid_generate_v4', 'uuid_generate_v5',
  'uuid_nil', 'digest', 'hmac', 'crypt', 'gen_salt', 'gen_random_bytes', 'unaccent', 'show_trgm',
  'strict_word_similarity',
  // built-in trigger functions
  'suppress_redundant_updates_trigger', 'tsvector_update_trigger', 'tsvector_update_trigger_column',
];

const PRIVILEGED = [
  'pg_read_file', 'pg_read_binary_file', 'pg_ls_dir', 'pg_stat_file', 'pg_ls_logdir', 'pg_ls_waldir',
  'pg_ls_tmpdir', 'pg_ls_archive_statusdir', 'pg_ls_logicalsnapdir', 'pg_ls_logicalmapdir',
  'pg_ls_replslotdir', 'pg_file_write', 'pg_file_rename', 'pg_file_unlink', 'pg_file_sync', 'pg_logdir_ls',
  'lo_import', 'lo_export', 'pg_terminate_backend', 'pg_cancel_backend', 'pg_signal_backend',
  'pg_reload_conf', 'pg_rotate_logfile', 'pg_promote', 'pg_switch_wal', 'pg_create_restore_point',
  'pg_backup_start', 'pg_backup_stop', 'pg_start_backup', 'pg_stop_backup', 'pg_create_physical_replication_slot',
  'pg_create_logical_replication_slot', 'pg_drop_replication_slot', 'pg_copy_physical_replication_slot',
  'pg_copy_logical_replication_slot', 'pg_replication_origin_create', 'pg_replication_origin_drop',
  'pg_log_backend_memory_contexts', 'pg_stat_reset', 'pg_stat_reset_shared', 'pg_import_system_collations',
  'pg_wal_replay_pause', 'pg_wal_replay_resume', 'pg_set_relation_stats', 'pg_restore_relation_stats',
  'pg_restore_attribute_stats', 'dblink', 'dblink_exec', 'dblink_connect', 'dblink_connect_u', 'dblink_open',
  'dblink_fetch', 'dblink_send_query', 'dblink_get_result',
];

/** Sequence functions: name -> role the named sequence plays. */
export const SEQUENCE_FUNCTIONS: ReadonlyMap<string, 'read' | 'write'> = new Map([
  ['nextval', 'write'], ['setval', 'write'], ['currval', 'read'],
]);

const safe = new Set(SAFE);
const privileged = new Set(PRIVILEGED);

/** Only unqualified names and pg_catalog names are built-ins. */
const builtinSchema = (schema: string | undefined): boolean => schema === undefined || schema === 'pg_catalog';

/** dblink lives in whatever schema the extension was installed to: match it in any schema. */
export function isPrivilegedFunction(schema: string | undefined, name: string): boolean {
  if (name.startsWith('dblink')) return privileged.has(name);
  return builtinSchema(schema) && privileged.has(name);
}

export function isKnownSafeFunction(schema: string | undefined, name: string): boolean {
  return builtinSchema(schema) && safe.has(name);
}

/** Languages whose functions run outside the database's sandbox (creating one needs a superuser). */
export const UNTRUSTED_LANGUAGES: ReadonlySet<string> = new Set([
  'c', 'internal', 'plpython3u', 'plpythonu', 'plpython2u', 'plperlu', 'pltclu', 'plv8u', 'plsh', 'pljavau',
]);

export const KNOWN_SAFE_FUNCTIONS: ReadonlySet<string> = safe;
export const PRIVILEGED_FUNCTIONS: ReadonlySet<string> = privileged;
