/**
 * Time windows ("business hours", "change freeze") evaluated in a named IANA time zone with Intl,
 * so daylight-saving changes are the zone's, not the server's. Compiled once per policy load;
 * the local time of `now` is cached per zone for the current UTC minute (DST shifts happen on minute
 * boundaries, so the cache can never straddle one).
 */

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface WindowSpec {
  readonly timezone: string;
  readonly days?: readonly Weekday[];
  /** 'HH:MM', inclusive. */
  readonly from?: string;
  /** 'HH:MM' (up to 24:00), exclusive. A `to` at or before `from` means the window runs past midnight. */
  readonly to?: string;
  /** Calendar dates (YYYY-MM-DD, inclusive, local to the zone) the window is limited to. */
  readonly dates?: { readonly from: string; readonly to: string };
}

interface LocalDay {
  /** yyyymmdd as a number, comparable. */
  readonly key: number;
  /** 0 = Monday ... 6 = Sunday. */
  readonly weekday: number;
}

interface LocalTime {
  readonly day: LocalDay;
  readonly previousDay: LocalDay;
  /** Minutes since local midnight. */
  readonly minutes: number;
}

/** 'HH:MM' -> minutes, or undefined. Accepts 24:00 as the end of the day. */
export function parseClock(text: string): number | undefined {
  if (text.length !== 5 || text[2] !== ':') return undefined;
  const h = Number(text.slice(0, 2));
  const m = Number(text.slice(3));
  if (!Number.isInteger(h) || !Number.isInteger(m) || text[0] === ' ' || text[3] === ' ') return undefined;
  if (h < 0 || m < 0 || m > 59 || h > 24 || (h === 24 && m !== 0)) return undefined;
  return h * 60 + m;
}

/** 'YYYY-MM-DD' -> yyyymmdd, or undefined when it is not a real calendar date. */
export function parseDate(text: string): number | undefined {
  if (text.length !== 10 || text[4] !== '-' || text[7] !== '-') return undefined;
  const y = Number(text.slice(0, 4));
  const mo = Number(text.slice(5, 7));
  const d = Number(text.slice(8));
  if (![y, mo, d].every(Number.isInteger)) return undefined;
  const probe = new Date(Date.UTC(y, mo - 1, d));
  if (probe.getUTCFullYear() !== y || probe.getUTCMonth() !== mo - 1 || probe.getUTCDate() !== d) return undefined;
  return y * 10_000 + mo * 100 + d;
}

export function isValidTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

const WEEKDAY_INDEX: Readonly<Record<string, number>> = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };

/** Converts instants to local wall-clock time in one zone, caching the last UTC minute. */
export class ZoneClock {
  private readonly fmt: Intl.DateTimeFormat;
  private cachedMinute = Number.NaN;
  private cached: LocalTime | undefined;

  constructor(readonly zone: string) {
    this.fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      weekday: 'short',
    });
  }

  local(now: Date): LocalTime {
    const minute = Math.floor(now.getTime() / 60_000);
    if (minute === this.cachedMinute && this.cached) return this.cached;
    let y = 0, mo = 0, d = 0, h = 0, mi = 0, wd = 0;
    for (const p of this.fmt.formatToParts(now)) {
      switch (p.type) {
        case 'year': y = Number(p.value); break;
        case 'month': mo = Number(p.value); break;
        case 'day': d = Number(p.value); break;
        case 'hour': h = Number(p.value); break;
        case 'minute': mi = Number(p.value); break;
        case 'weekday': wd = WEEKDAY_INDEX[p.value] ?? 0; break;
        default: break;
      }
    }
    const prev = new Date(Date.UTC(y, mo - 1, d - 1));
    const local: LocalTime = {
      day: { key: y * 10_000 + mo * 100 + d, weekday: wd },
      previousDay: {
        key: prev.getUTCFullYear() * 10_000 + (prev.getUTCMonth() + 1) * 100 + prev.getUTCDate(),
        weekday: (wd + 6) % 7,
      },
      minutes: h * 60 + mi,
    };
    this.cachedMinute = minute;
    this.cached = local;
    return local;
  }
}

export interface CompiledWindow {
  /** Human description, e.g. "mon-fri 09:00-17:00 Europe/Paris". */
  readonly label: string;
  contains(now: Date): boolean;
}

/** Clocks are shared between windows of one policy so each zone is converted once per minute. */
export function compileWindow(spec: WindowSpec, clocks: Map<string, ZoneClock>): CompiledWindow {
  let clock = clocks.get(spec.timezone);
  if (!clock) {
    clock = new ZoneClock(spec.timezone);
    clocks.set(spec.timezone, clock);
  }
  const zoneClock = clock;
  const days = spec.days && spec.days.length > 0 ? new Set(spec.days.map((w) => WEEKDAYS.indexOf(w))) : undefined;
  const dateFrom = spec.dates ? parseDate(spec.dates.from) ?? 0 : 0;
  const dateTo = spec.dates ? parseDate(spec.dates.to) ?? 99_999_999 : 99_999_999;
  const from = spec.from !== undefined ? parseClock(spec.from) ?? 0 : 0;
  const to = spec.to !== undefined ? parseClock(spec.to) ?? 1440 : 1440;
  const dayOk = (day: LocalDay): boolean =>
    (days === undefined || days.has(day.weekday)) && day.key >= dateFrom && day.key <= dateTo;

  const parts: string[] = [];
  if (spec.dates) parts.push(`${spec.dates.from}..${spec.dates.to}`);
  if (spec.days && spec.days.length > 0) parts.push(spec.days.join(','));
  if (spec.from !== undefined || spec.to !== undefined) parts.push(`${spec.from ?? '00:00'}-${spec.to ?? '24:00'}`);
  parts.push(spec.timezone);
  const label = parts.join(' ');

  return {
    label,
    contains(now: Date): boolean {
      const t = zoneClock.local(now);
      if (from < to) return t.minutes >= from && t.minutes < to && dayOk(t.day);
      // Past midnight (e.g. 22:00-06:00): the early-morning part belongs to the previous day's window.
      return (t.minutes >= from && dayOk(t.day)) || (t.minutes < to && dayOk(t.previousDay));
    },
  };
}
