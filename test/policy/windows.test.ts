import { describe, expect, it } from 'vitest';
import { compileWindow, parseClock, parseDate, ZoneClock } from '../../governance/policy/window.js';
import { parseDuration } from '../../governance/policy/duration.js';
import { decide, denyWhen, facts } from './fixtures.js';

const at = (iso: string) => new Date(iso);
const win = (spec: Parameters<typeof compileWindow>[0]) => compileWindow(spec, new Map<string, ZoneClock>());

describe('time windows in a named zone', () => {
  const business = win({ timezone: 'America/New_York', days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' });

  it('follows the zone across the spring DST change (2026-03-08, UTC-5 -> UTC-4)', () => {
    // 13:30 UTC is 08:30 EST on Friday 6 March: before business hours...
    expect(business.contains(at('2026-03-06T13:30:00Z'))).toBe(false);
    // ...and 09:30 EDT on Monday 9 March: inside.
    expect(business.contains(at('2026-03-09T13:30:00Z'))).toBe(true);
    // 21:30 UTC: 16:30 EDT (inside) after the change, 16:30 EST is 21:30 UTC before it too.
    expect(business.contains(at('2026-03-09T20:59:00Z'))).toBe(true);
    expect(business.contains(at('2026-03-09T21:00:00Z'))).toBe(false); // 17:00 EDT, `to` is exclusive
    expect(business.contains(at('2026-03-06T21:59:00Z'))).toBe(true); // 16:59 EST
  });

  it('follows the zone across the autumn DST change in Europe (2026-10-25, UTC+2 -> UTC+1)', () => {
    const paris = win({ timezone: 'Europe/Paris', days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '18:00' });
    expect(paris.contains(at('2026-10-23T07:30:00Z'))).toBe(true); // 09:30 CEST Friday
    expect(paris.contains(at('2026-10-26T07:30:00Z'))).toBe(false); // 08:30 CET Monday
    expect(paris.contains(at('2026-10-26T08:00:00Z'))).toBe(true); // 09:00 CET Monday
  });

  it('days are local days: late Friday in Los Angeles is Saturday in UTC', () => {
    const friday = win({ timezone: 'America/Los_Angeles', days: ['fri'] });
    expect(friday.contains(at('2026-11-28T05:00:00Z'))).toBe(true); // Fri 21:00 PST
    expect(friday.contains(at('2026-11-28T09:00:00Z'))).toBe(false); // Sat 01:00 PST
  });

  it('a window past midnight belongs to the day it starts', () => {
    const night = win({ timezone: 'UTC', days: ['fri'], from: '22:00', to: '06:00' });
    expect(night.contains(at('2026-11-27T23:00:00Z'))).toBe(true); // Fri 23:00
    expect(night.contains(at('2026-11-28T05:59:00Z'))).toBe(true); // Sat 05:59, Friday's night
    expect(night.contains(at('2026-11-28T06:00:00Z'))).toBe(false);
    expect(night.contains(at('2026-11-28T23:00:00Z'))).toBe(false); // Sat 23:00
    expect(night.contains(at('2026-11-27T05:00:00Z'))).toBe(false); // Fri 05:00 is Thursday's night
  });

  it('a change freeze by dates, inclusive, in the local calendar', () => {
    const freeze = win({ timezone: 'Europe/Berlin', dates: { from: '2026-12-19', to: '2027-01-04' } });
    expect(freeze.contains(at('2026-12-18T22:59:00Z'))).toBe(false); // 23:59 on the 18th in Berlin
    expect(freeze.contains(at('2026-12-18T23:00:00Z'))).toBe(true); // 00:00 on the 19th in Berlin
    expect(freeze.contains(at('2027-01-04T22:59:00Z'))).toBe(true);
    expect(freeze.contains(at('2027-01-04T23:00:00Z'))).toBe(false);
    expect(freeze.label).toBe('2026-12-19..2027-01-04 Europe/Berlin');
  });

  it('a freeze rule refuses DDL during the freeze and not after it', () => {
    const ddl = facts({ kind: 'ddl', commandTag: 'ALTER TABLE' });
    const p = denyWhen({ kinds: ['ddl'], during: [{ timezone: 'Europe/Berlin', dates: { from: '2026-12-19', to: '2027-01-04' } }] });
    expect(decide(p, [ddl], { now: at('2026-12-24T12:00:00Z') }).effect).toBe('deny');
    expect(decide(p, [ddl], { now: at('2027-01-05T12:00:00Z') }).effect).toBe('allow');
  });

  it('parses clocks, dates and durations strictly', () => {
    expect(parseClock('09:30')).toBe(570);
    expect(parseClock('24:00')).toBe(1440);
    expect(parseClock('24:01')).toBeUndefined();
    expect(parseClock('9:30')).toBeUndefined();
    expect(parseDate('2026-02-29')).toBeUndefined();
    expect(parseDate('2028-02-29')).toBe(20280229);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('15')).toBeUndefined();
    expect(parseDuration('2x')).toBeUndefined();
  });
});
