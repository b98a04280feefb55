/**
 * The data contracts of seed 003: the tracking file's 20 columns, in order, and the identity-link file.
 * Everything that writes or reads these files takes the column lists from here.
 */
export const TRACK_COLUMNS = [
  'time', 'tenantid', 'correlationid', 'deviceid', 'accountid', 'merchantid', 'productid', 'page', 'event',
  'value', 'ip', 'long', 'lat', 'referer', 'bot', 'ua', 'url', 'impressions', 'devicetype', 'source',
] as const;

export type TrackColumn = (typeof TRACK_COLUMNS)[number];
export type Cell = string | number | boolean | null;

/** One tracking row, values keyed by column; missing values are null (an empty CSV field). */
export type TrackRow = { [K in TrackColumn]: Cell } & { time: number; tenantid: string; event: string; bot: boolean };

export const IDENTITY_COLUMNS = ['time', 'tenantid', 'deviceid', 'accountid', 'previousid'] as const;
export type IdentityRow = { time: number; tenantid: string; deviceid: string | null; accountid: string; previousid: string | null };

export const DEVICE_TYPES = ['APP', 'MOBILE', 'DESKTOP'] as const;
export type DeviceType = (typeof DEVICE_TYPES)[number];

/** Spelled as the seed spells them, WHATSTAPP included: a data contract, not a typo to fix. */
export const SOURCES = ['DIRECT', 'EMAIL', 'FACEBOOK', 'WHATSTAPP', 'INSTAGRAM', 'SEO'] as const;
export type Source = (typeof SOURCES)[number];

export const trackValues = (r: TrackRow): Cell[] => TRACK_COLUMNS.map((c) => r[c]);
export const identityValues = (r: IdentityRow): Cell[] => IDENTITY_COLUMNS.map((c) => r[c]);
