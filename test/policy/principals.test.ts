import { describe, expect, it } from 'vitest';
import { principalsConfigSchema } from '../../governance/policy/schema.js';
import { compilePrincipals, resolvePrincipal } from '../../governance/principals.js';

const config = principalsConfigSchema.parse({
  map: [
    { name: 'alice', roles: ['dba', 'release-manager'], match: { users: ['alice'] } },
    { name: 'agent:{user}', roles: ['agent'], match: { users: ['bot_*'], application_names: ['claude-?'] } },
    { name: 'reporting', roles: ['developer'], match: { users: ['report*'], databases: ['analytics'] } },
  ],
});
const r = compilePrincipals(config);

describe('principal resolution', () => {
  it('exact user name', () => {
    const p = r.resolve({ user: 'alice', database: 'app' });
    expect(p.principal).toEqual({ name: 'alice', roles: ['dba', 'release-manager'] });
    expect(p.isDefault).toBe(false);
    expect(p.matchedBy).toBe('principals.map[0] (users: alice)');
  });
  it('is case-sensitive like PostgreSQL role names', () => {
    expect(r.resolve({ user: 'Alice', database: 'app' }).isDefault).toBe(true);
  });
  it('glob patterns on user and application_name, every given key must match; the name template is filled', () => {
    expect(r.resolve({ user: 'bot_billing', database: 'app', applicationName: 'claude-1' }).principal).toEqual({ name: 'agent:bot_billing', roles: ['agent'] });
    expect(r.resolve({ user: 'bot_billing', database: 'app', applicationName: 'claude-12' }).isDefault).toBe(true);
    expect(r.resolve({ user: 'bot_billing', database: 'app' }).isDefault).toBe(true);
  });
  it('database patterns', () => {
    expect(r.resolve({ user: 'reporter', database: 'analytics' }).principal.name).toBe('reporting');
    expect(r.resolve({ user: 'reporter', database: 'app' }).principal.name).toBe('unknown');
  });
  it('the first matching entry wins', () => {
    const two = compilePrincipals(
      principalsConfigSchema.parse({
        map: [
          { name: 'first', roles: ['agent'], match: { users: ['a*'] } },
          { name: 'second', roles: ['dba'], match: { users: ['alice'] } },
        ],
      }),
    );
    expect(two.resolve({ user: 'alice', database: 'x' }).principal.name).toBe('first');
  });
  it('nobody else gets the default principal: "unknown" with role agent unless configured', () => {
    const p = resolvePrincipal({ user: 'mallory', database: 'app' }, config);
    expect(p).toEqual({ principal: { name: 'unknown', roles: ['agent'] }, matchedBy: 'principals.default_principal (no entry matched)', isDefault: true });
    const custom = compilePrincipals(principalsConfigSchema.parse({ default_principal: { name: 'guest', roles: ['readonly'] } }));
    expect(custom.resolve({ user: 'x', database: 'y' }).principal).toEqual({ name: 'guest', roles: ['readonly'] });
    expect(resolvePrincipal({ user: 'x', database: 'y' }, undefined).principal.roles).toEqual(['agent']);
  });
  it('byName finds configured principals and the default', () => {
    expect(r.byName('alice')?.roles).toEqual(['dba', 'release-manager']);
    expect(r.byName('unknown')?.roles).toEqual(['agent']);
    expect(r.byName('nobody')).toBeUndefined();
  });
  it('rejects an entry without match keys or roles', () => {
    expect(principalsConfigSchema.safeParse({ map: [{ name: 'x', roles: ['agent'], match: {} }] }).success).toBe(false);
    expect(principalsConfigSchema.safeParse({ map: [{ name: 'x', roles: [], match: { users: ['x'] } }] }).success).toBe(false);
  });
});
