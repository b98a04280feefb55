/**
 * Keeping less: what the collector does to a message's network address and position before anything is
 * logged, so the full value is never stored anywhere (log, tracking files, quarantine).
 *
 * - `ipMode`: `full` keeps the address; `truncate` keeps its network (IPv4 /24, IPv6 /48) as an address;
 *   `hash` replaces it with a keyed hash that is stable within a UTC day (so a day's visits from one address
 *   can still be told apart from another's) and changes with the day; `drop` leaves the column empty.
 * - `geoPrecision`: decimals kept of `long`/`lat` (2 decimals is about 1 km).
 *
 * Every reduction is idempotent (a reduced value reduces to itself), so a quarantined message replayed
 * through the mapping again is not reduced twice into something else.
 */
import { createHmac } from 'node:crypto';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

export const IP_MODES = ['full', 'truncate', 'hash', 'drop'] as const;
export type IpMode = (typeof IP_MODES)[number];

/** What one source keeps; plain data, so it travels to the request workers. */
export interface Retention {
  ipMode: IpMode;
  /** Decimals kept of longitude and latitude; undefined keeps them as sent. */
  geoPrecision?: number;
}

export const KEEP_ALL: Retention = { ipMode: 'full' };

/** A hashed address: a prefix that no IP address has, then 64 bits of HMAC-SHA256 in hex. */
const HASHED = /^h:[0-9a-f]{16}$/;

/** Reduces addresses; holds the day's hash key (derived from the privacy secret) for the day in use. */
export class AddressReducer {
  private day = '';
  private dayKey: Buffer | undefined;

  /** secret: the privacy secret (privacy/secret.ts); only `hash` needs it. */
  constructor(private readonly secret: string | undefined) {}

  reduce(ip: string | null, mode: IpMode, day: string): string | null {
    if (ip === null || mode === 'full') return ip;
    if (mode === 'drop') return null;
    if (mode === 'truncate') return truncateIp(ip);
    if (HASHED.test(ip)) return ip;
    if (this.secret === undefined) throw new Error('ipMode "hash" needs the privacy secret');
    if (day !== this.day) {
      // One key a day: the same address hashes alike all day and differently the next.
      this.dayKey = createHmac('sha256', this.secret).update(`ip-day\0${day}`).digest();
      this.day = day;
    }
    return `h:${createHmac('sha256', this.dayKey!).update(ip).digest('hex').slice(0, 16)}`;
  }
}

/** IPv4 to its /24 (a.b.c.0), IPv6 to its /48 (a:b:c::); anything else (already reduced, or not an address) as is. */
export function truncateIp(ip: string): string {
  if (isIP(ip) === 0) return ip;
  let addr = ipaddr.parse(ip);
  // An IPv4 address written as IPv6 (::ffff:a.b.c.d) is an IPv4 client, cut as one.
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
  if (addr.kind() === 'ipv4') return `${(addr as ipaddr.IPv4).octets.slice(0, 3).join('.')}.0`;
  return `${(addr as ipaddr.IPv6).parts.slice(0, 3).map((p) => p.toString(16)).join(':')}::`;
}

/** A coordinate with `decimals` kept (undefined: as sent). */
export function reduceCoordinate(v: number | null, decimals: number | undefined): number | null {
  if (v === null || decimals === undefined) return v;
  const f = 10 ** decimals;
  return Math.round(v * f) / f;
}
