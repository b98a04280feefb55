/** UTC day arithmetic shared by the collector's partitioning and the jobs. Days are 'YYYY-MM-DD'. */
const DAY_MS = 86_400_000;

// The collector asks for the day of every event, nearly always one of a few: the last answer is kept.
let lastDay = NaN;
let lastDayText = '';

export function dayOf(epochMs: number): string {
  const day = Math.floor(epochMs / DAY_MS);
  if (day !== lastDay) {
    lastDayText = new Date(day * DAY_MS).toISOString().slice(0, 10);
    lastDay = day;
  }
  return lastDayText;
}

/** 'YYYY-MM-DD' → 'YYYY/MM/DD', the partition path of seed 003. */
export function dayPath(day: string): string {
  return day.replaceAll('-', '/');
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
