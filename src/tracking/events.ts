/**
 * Canonical event names. Seed 003 knows load, order, sales, view, share, chat; apps send seed 002's
 * lower-case "object action" names or Segment's e-commerce spec names. Matching is case-insensitive on the
 * trimmed name; anything unknown is kept, lower-cased, so nothing is dropped.
 */
export const DEFAULT_EVENT_MAP: Readonly<Record<string, string>> = Object.freeze({
  'product viewed': 'view',
  view: 'view',
  'product shared': 'share',
  share: 'share',
  'chat started': 'chat',
  'product chat started': 'chat',
  chat: 'chat',
  'order completed': 'order',
  order: 'order',
  'product purchased': 'sales',
  sales: 'sales',
});

export type EventMap = ReadonlyMap<string, string>;

/** The default mapping with the config file's `events` added on top (keys matched case-insensitively). */
export function buildEventMap(overrides: Readonly<Record<string, string>> = {}): EventMap {
  const map = new Map<string, string>();
  for (const [k, v] of Object.entries(DEFAULT_EVENT_MAP)) map.set(k, v);
  for (const [k, v] of Object.entries(overrides)) map.set(normalizeEventName(k), normalizeEventName(v));
  return map;
}

export function normalizeEventName(name: string): string {
  return name.trim().toLowerCase();
}

export function canonicalEvent(name: string, map: EventMap): string {
  const n = normalizeEventName(name);
  return map.get(n) ?? n;
}
