import type { ErrorCode } from './errors.js';

/** Expected failures travel as values: a rejected message is data with a reason, not an exception. */
export type Rejection = { ok: false; code: ErrorCode; message: string };
export type Result<T> = { ok: true; value: T } | Rejection;

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const reject = (code: ErrorCode, message: string): Rejection => ({ ok: false, code, message });
