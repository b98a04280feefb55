/** UTC day arithmetic shared by the collector's partitioning and the jobs. Days are 'YYYY-MM-DD'. */
export const DAY_MS = 86_400_000;

/**
 * The UTC day of an instant. Computed from the day number (the civil-from-days algorithm) rather than by
 * Date#toISOString: the collector asks once per event, and toISOString cost a tenth of preparing a request.
 */
export function dayOf(epochMs: number): string {
  const z = Math.floor(epochMs / DAY_MS) + 719_468; // days since 0000-03-01
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  // Four-digit years only; anything else (or NaN) as Date writes it, or its RangeError.
  if (!(y >= 1000 && y <= 9999)) return new Date(epochMs).toISOString().slice(0, 10);
  return `${y}-${m < 10 ? '0' : ''}${m}-${d < 10 ? '0' : ''}${d}`;
}

/** 'YYYY-MM-DD' → 'YYYY/MM/DD', the partition path of seed 003. */
export function dayPath(day: string): string {
  return day.replaceAll('-', '/');
}

/** The day of a partitioned key (`tracks/2026/11/21/…`, `sessions/_state/2026/11/21/manifest.json`): its first `yyyy/mm/dd/`. */
export function dayOfKey(key: string): string | undefined {
  const m = /(?:^|\/)(\d{4})\/(\d{2})\/(\d{2})\//.exec(key);
  return m ? `${m[1]}-${m[2]}-${m[3]}` : undefined;
}

export function dayStartMs(day: string): number {
  return Date.parse(`${day}T00:00:00.000Z`);
}

export function addDays(day: string, n: number): string {
  return dayOf(dayStartMs(day) + n * DAY_MS);
}

/** Inclusive list of days from `from` to `to`. */
export function daysBetween(from: string, to: string): string[] {
  const out: string[] = [];
  for (let d = from; d <= to; d = addDays(d, 1)) out.push(d);
  return out;
}

const DAY_RE = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;

export function isDay(s: string): boolean {
  return DAY_RE.test(s) && dayOf(dayStartMs(s)) === s;
}
