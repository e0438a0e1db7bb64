/**
 * Durations in policy files: `90s`, `15m`, `2h`, `1d`, `1w`, or combinations such as `1h30m`.
 * Parsed by hand (no regular expressions); returns milliseconds or undefined when the text is not a duration.
 */
const UNIT_MS: Readonly<Record<string, number>> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (s.length === 0) return undefined;
  let total = 0;
  let digits = '';
  for (const ch of s) {
    if (ch >= '0' && ch <= '9') {
      digits += ch;
      continue;
    }
    const unit = UNIT_MS[ch];
    if (unit === undefined || digits.length === 0) return undefined;
    total += Number(digits) * unit;
    digits = '';
  }
  if (digits.length > 0) return undefined; // a trailing number without a unit is ambiguous
  return total;
}

export function formatDuration(ms: number): string {
  const parts: string[] = [];
  let rest = Math.max(0, Math.round(ms / 1000));
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.length ? parts.join('') : '0s';
}
