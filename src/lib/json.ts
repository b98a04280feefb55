/** A parsed JSON value that is an object (not null, not an array): what Segment calls an object field. */
export const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
