import { z } from 'zod';
import { LOCK_MODES } from '../../analyzer/types.js';
import { parseDuration } from './duration.js';
import { isValidTimeZone, parseClock, parseDate, WEEKDAYS } from './window.js';

/**
 * The policy language, validated with zod. Every key is documented in docs/policy.md; keep the two in step.
 * Rules are validated one by one so that an error names the rule by its `id` and the key inside it
 * (see `rulesSchema`); the config loader and the policy-file loader both print those messages.
 */

export const STATEMENT_KINDS = ['read', 'write', 'ddl', 'dcl', 'tcl', 'session', 'utility'] as const;
export const RELATION_ROLES = ['read', 'write', 'create', 'alter', 'drop', 'truncate', 'lock', 'reference'] as const;
export const SEVERITIES = ['info', 'warning', 'error'] as const;
export const EFFECTS = ['allow', 'deny', 'hold'] as const;
export type EffectName = (typeof EFFECTS)[number];

/** Ids the engine uses itself; a policy rule may not take them. */
export const BUILTIN_RULE_PREFIX = 'builtin-';
export const DEFAULT_EFFECT_RULE_ID = 'default-effect';

const name = z.string().min(1, 'must not be empty');
const names = z.array(name).min(1, 'give at least one name or pattern (omit the key to match any)');

/** A duration as text (90s, 15m, 2h, 1d, 1h30m) or a whole number of seconds; milliseconds after parsing. */
const duration = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const ms = typeof v === 'number' ? (Number.isInteger(v) && v > 0 ? v * 1000 : undefined) : parseDuration(v);
  if (ms === undefined || ms <= 0) {
    ctx.issues.push({ code: 'custom', input: v, message: `${JSON.stringify(v)} is not a duration: use e.g. 90s, 15m, 2h, 1d, 1h30m (or a whole number of seconds)` });
    return z.NEVER;
  }
  return ms;
});

const clock = z.string().refine((s) => parseClock(s) !== undefined, { message: 'expected a time of day HH:MM (00:00 to 24:00)' });
const date = z.string().refine((s) => parseDate(s) !== undefined, { message: 'expected a calendar date YYYY-MM-DD' });

export const windowSchema = z
  .strictObject({
    /** IANA zone name, e.g. Europe/Paris; required so DST follows the zone, not the server. */
    timezone: z.string().refine(isValidTimeZone, { message: 'unknown time zone: use an IANA name such as Europe/Paris or UTC' }),
    days: z.array(z.enum(WEEKDAYS)).min(1).optional(),
    from: clock.optional(),
    to: clock.optional(),
    dates: z.strictObject({ from: date, to: date }).optional(),
  })
  .superRefine((w, ctx) => {
    if (w.dates && (parseDate(w.dates.from) ?? 0) > (parseDate(w.dates.to) ?? 0)) {
      ctx.addIssue({ code: 'custom', path: ['dates'], message: 'dates.from is after dates.to' });
    }
  });

/** Real-state conditions (issue 7): evaluated against the optional `state` input; unknown without it. */
export const stateConditionSchema = z.strictObject({
  /** Some relation the statement touches has at least this many rows (planner estimate). */
  min_rows: z.number().int().min(0).optional(),
  /** Some relation the statement touches is at least this large (total bytes, with indexes and TOAST). */
  min_bytes: z.number().int().min(0).optional(),
  /** Some relation the statement touches has dependent objects (views, foreign keys, functions...) or not. */
  has_dependents: z.boolean().optional(),
  /** Some relation the statement touches was used by another principal within this duration. */
  used_by_others_within: duration.optional(),
  /** The planner estimates the statement (DML) changes or returns at least this many rows (EXPLAIN without ANALYZE). */
  min_estimated_rows: z.number().int().min(0).optional(),
  /** The session's expected schema differs from the live one (drift) or not. */
  drift: z.boolean().optional(),
});

export const matchSchema = z.strictObject({
  roles: names.optional(),
  principals: names.optional(),
  databases: names.optional(),
  environments: names.optional(),
  kinds: z.array(z.enum(STATEMENT_KINDS)).min(1).optional(),
  /** Command tags as the server reports them, e.g. "CREATE INDEX", "DROP TABLE" (case-insensitive). */
  commands: z.array(name.transform((s) => s.toUpperCase())).min(1).optional(),
  findings: z
    .strictObject({
      rules: names.optional(),
      min_severity: z.enum(SEVERITIES).optional(),
    })
    .optional(),
  destructive: z.boolean().optional(),
  opaque: z.boolean().optional(),
  privileged: z.boolean().optional(),
  lock_at_least: z.enum(LOCK_MODES).optional(),
  rewrite: z.boolean().optional(),
  objects: z
    .strictObject({
      /** `schema.table` globs; a pattern without a dot matches the table name in any schema. */
      relations: names.optional(),
      columns: names.optional(),
      /** How the relation is used (read, write, create, alter, drop, truncate, lock, reference). */
      access: z.array(z.enum(RELATION_ROLES)).min(1).optional(),
    })
    .refine((o) => o.relations !== undefined || o.columns !== undefined || o.access !== undefined, {
      message: 'objects needs at least one of relations, columns, access',
    })
    .optional(),
  unparseable: z.boolean().optional(),
  /** Now is inside at least one of these windows. */
  during: z.array(windowSchema).min(1).optional(),
  /** Now is inside none of these windows. */
  outside: z.array(windowSchema).min(1).optional(),
  state: stateConditionSchema.optional(),
});
export type MatchSpec = z.output<typeof matchSchema>;

export const holdSchema = z.strictObject({
  /** wait: the client's statement stays pending; defer: refused at once with a change id, re-sent after approval. */
  mode: z.enum(['wait', 'defer']).default('defer'),
  approvals: z.number().int().min(1).max(10).default(1),
  approver_roles: names.default(['dba']),
  /** How long the request may stay pending (wait) or the approval stays valid (defer). */
  timeout: duration.default(24 * 3_600_000),
});
export type HoldSpecInput = z.input<typeof holdSchema>;

const HOLD_DEFAULTS = { mode: 'defer', approvals: 1, approver_roles: ['dba'], timeout: 24 * 3_600_000 } as const;

export const ruleSchema = z
  .strictObject({
    id: z
      .string()
      .min(1, 'a rule needs an id')
      .refine((s) => !s.startsWith(BUILTIN_RULE_PREFIX) && s !== DEFAULT_EFFECT_RULE_ID, {
        message: `ids starting with "${BUILTIN_RULE_PREFIX}" and "${DEFAULT_EFFECT_RULE_ID}" are reserved for pgairlock`,
      }),
    description: z.string().min(1, 'say in one line what the rule is for'),
    match: matchSchema.default({}),
    effect: z.enum(EFFECTS),
    hold: holdSchema.optional(),
    /** Shown to the client as the error message (the rule id is always added). */
    message: z.string().min(1).optional(),
    /** Shown to the client as HINT: what would be allowed instead. */
    hint: z.string().min(1).optional(),
    /** SQLSTATE for refusals by this rule (default 42501 insufficient_privilege). */
    sqlstate: z
      .string()
      .length(5)
      .refine((s) => [...s].every((c) => (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')), { message: 'five digits or upper-case letters' })
      .optional(),
  })
  .superRefine((r, ctx) => {
    if (r.hold && r.effect !== 'hold') ctx.addIssue({ code: 'custom', path: ['hold'], message: `only valid with effect: hold (effect is ${r.effect})` });
    if (r.match.during && r.match.outside) {
      ctx.addIssue({ code: 'custom', path: ['match', 'outside'], message: 'use either during or outside in one rule, not both (write two rules)' });
    }
  })
  .transform((r) => ({ ...r, hold: r.effect === 'hold' ? (r.hold ?? { ...HOLD_DEFAULTS, approver_roles: [...HOLD_DEFAULTS.approver_roles] }) : undefined }));
export type RuleSpec = z.output<typeof ruleSchema>;

function ruleLabel(raw: unknown, index: number): string {
  const id = typeof raw === 'object' && raw !== null && 'id' in raw ? (raw).id : undefined;
  return typeof id === 'string' && id.length > 0 ? `rule "${id}"` : `rule #${index + 1} (no id)`;
}

/**
 * The list of rules, validated one by one so every message names the rule by id and the key inside it,
 * e.g. `policy.rules.3.match.lock_at_least: rule "agent-ddl", key match.lock_at_least: Invalid option...`.
 */
export const rulesSchema = z.array(z.unknown()).transform((raws, ctx) => {
  const out: RuleSpec[] = [];
  const seen = new Map<string, number>();
  raws.forEach((raw, i) => {
    const label = ruleLabel(raw, i);
    const res = ruleSchema.safeParse(raw);
    if (!res.success) {
      for (const issue of res.error.issues) {
        const key = issue.path.length ? issue.path.map(String).join('.') : '(the rule itself)';
        ctx.issues.push({ code: 'custom', input: raw, path: [i, ...issue.path], message: `${label}, key ${key}: ${issue.message}` });
      }
      return;
    }
    const first = seen.get(res.data.id);
    if (first !== undefined) {
      ctx.issues.push({ code: 'custom', input: raw, path: [i, 'id'], message: `${label}, key id: duplicate id (also rule #${first + 1})` });
      return;
    }
    seen.set(res.data.id, i);
    out.push(res.data);
  });
  return out;
});

const simpleEffect = z.enum(['allow', 'deny']);
/**
 * What a statement gets when no rule matches it: one effect for everyone, or per role.
 * A principal gets the strongest (deny over allow) of the defaults of its roles listed here;
 * if none of its roles is listed, `global`.
 */
export const defaultEffectSchema = z.union([
  simpleEffect.transform((e): { global: 'allow' | 'deny'; roles: Record<string, 'allow' | 'deny'> } => ({ global: e, roles: {} })),
  z.strictObject({
    global: simpleEffect.default('deny'),
    roles: z.record(name, simpleEffect).default({}),
  }),
]);
export type DefaultEffectSpec = z.output<typeof defaultEffectSchema>;

/**
 * The config default for default_effect: deny, except DBAs (allow). Reasoning: a DBA refused by
 * pgairlock will connect around it and the audit trail loses the change; agents and unknown roles get deny.
 */
export const DEFAULT_DEFAULT_EFFECT: DefaultEffectSpec = { global: 'deny', roles: { agent: 'deny', developer: 'deny', dba: 'allow' } };

/** A policy file (docs/default-policy.yaml is one): rules and the default effect. */
export const policyFileSchema = z.strictObject({
  rules: rulesSchema.default([]),
  default_effect: defaultEffectSchema.default(DEFAULT_DEFAULT_EFFECT),
});
export type PolicySpec = z.output<typeof policyFileSchema>;

/** The `policy` key of pgairlock.yaml: inline rules, or `file` naming a policy file; neither = the default policy. */
export const policyConfigSchema = z
  .strictObject({
    /** A policy file, relative to the config file. Exclusive with rules/default_effect. */
    file: z.string().min(1).optional(),
    rules: rulesSchema.optional(),
    default_effect: defaultEffectSchema.optional(),
  })
  .superRefine((p, ctx) => {
    if (p.file !== undefined && (p.rules !== undefined || p.default_effect !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['file'], message: 'give either file (a policy file) or rules/default_effect inline, not both' });
    }
  });
export type PolicyConfig = z.output<typeof policyConfigSchema>;

const principalMatchSchema = z
  .strictObject({
    users: names.optional(),
    databases: names.optional(),
    application_names: names.optional(),
  })
  .refine((m) => m.users !== undefined || m.databases !== undefined || m.application_names !== undefined, {
    message: 'match needs at least one of users, databases, application_names (use default_principal for everyone else)',
  });

export const principalEntrySchema = z.strictObject({
  /** May contain {user}, {database}, {application_name}, filled from the connection. */
  name,
  roles: names,
  match: principalMatchSchema,
});

export const DEFAULT_PRINCIPAL = { name: 'unknown', roles: ['agent'] } as const;

export const principalsConfigSchema = z.strictObject({
  /** Tried in order; the first entry whose every given key matches wins. */
  map: z.array(principalEntrySchema).default([]),
  /** Who a connection is when no entry matches: by default the most restricted role. */
  default_principal: z
    .strictObject({ name, roles: names })
    .default({ name: DEFAULT_PRINCIPAL.name, roles: [...DEFAULT_PRINCIPAL.roles] }),
});
export type PrincipalsConfig = z.output<typeof principalsConfigSchema>;
