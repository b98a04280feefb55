/**
 * One table of every error tracklake answers with. Each code has an HTTP status and says whether the
 * client should retry: Segment's libraries retry on 429/5xx and drop on other 4xx, so the status is
 * the retry policy. Handlers throw or return these codes; one hook turns them into responses.
 */
export const ERRORS = {
  // request-level (the whole request is refused)
  invalid_json: { status: 400, retry: false, message: 'The body is not valid JSON.' },
  invalid_body: { status: 400, retry: false, message: 'The body must be a JSON object.' },
  invalid_encoding: { status: 400, retry: false, message: 'The body could not be decoded (Content-Encoding).' },
  request_too_large: { status: 400, retry: false, message: 'The request is over the 500 KB limit (after decompression).' },
  batch_too_large: { status: 400, retry: false, message: 'The batch has more than 2500 messages.' },
  batch_empty: { status: 400, retry: false, message: 'The batch has no messages.' },
  batch_not_array: { status: 400, retry: false, message: '"batch" must be an array of messages.' },
  all_rejected: { status: 400, retry: false, message: 'No message in the request was valid.' },
  missing_write_key: { status: 401, retry: false, message: 'No write key: send it as the HTTP Basic username, as "writeKey" in the body, or as a writeKey query parameter.' },
  unknown_write_key: { status: 401, retry: false, message: 'The write key is not known to this collector.' },
  not_found: { status: 404, retry: false, message: 'No such endpoint.' },
  unknown_source: { status: 404, retry: false, message: 'No source of this collector has that write key.' },
  invalid_host: { status: 400, retry: false, message: 'The Host header is not a host name; set publicUrl to serve SDK settings.' },
  method_not_allowed: { status: 405, retry: false, message: 'Use POST for tracking endpoints.' },
  request_timeout: { status: 408, retry: true, message: 'The request took too long to arrive.' },
  overloaded: { status: 503, retry: true, message: 'The collector is over its buffer budget; retry later.' },
  log_unavailable: { status: 503, retry: true, message: 'The local log could not be written; retry later.' },
  shutting_down: { status: 503, retry: true, message: 'The collector is shutting down; retry later.' },
  starting: { status: 503, retry: true, message: 'The collector is starting; retry in a moment.' },
  internal: { status: 500, retry: true, message: 'Internal error.' },

  // the read side (query API and dashboard)
  missing_token: { status: 401, retry: false, message: 'No token: send "Authorization: Bearer <token>" (tracklake token create prints one).' },
  invalid_token: { status: 401, retry: false, message: 'The token is malformed or its signature is not valid here.' },
  expired_token: { status: 401, retry: false, message: 'The token has expired.' },
  forbidden: { status: 403, retry: false, message: 'This token may not read that.' },
  invalid_query: { status: 400, retry: false, message: 'The query is not valid.' },
  invalid_regulation: { status: 400, retry: false, message: 'The regulation is not valid.' },
  rate_limited: { status: 429, retry: true, message: 'Too many requests for this token; retry after the time in Retry-After.' },

  // message-level (one message of a request is rejected; the others may be accepted)
  message_too_large: { status: 400, retry: false, message: 'The message is over the 32 KB limit.' },
  message_not_object: { status: 400, retry: false, message: 'A message must be a JSON object.' },
  unknown_type: { status: 400, retry: false, message: '"type" must be one of track, page, screen, identify, alias, group.' },
  missing_identity: { status: 400, retry: false, message: 'A message needs "userId" or "anonymousId".' },
  invalid_identity: { status: 400, retry: false, message: '"userId", "anonymousId" and "previousId" must be non-empty strings (or numbers) of at most 255 characters.' },
  missing_event: { status: 400, retry: false, message: 'A track message needs "event", a non-empty string.' },
  missing_previous_id: { status: 400, retry: false, message: 'An alias message needs "previousId".' },
  invalid_timestamp: { status: 400, retry: false, message: '"timestamp", "sentAt" and "originalTimestamp" must be ISO-8601 dates between 2000 and 2100.' },
  invalid_object: { status: 400, retry: false, message: '"properties", "context" and "traits" must be JSON objects.' },
  invalid_message_id: { status: 400, retry: false, message: '"messageId" must be a string of at most 100 characters.' },
  invalid_field: { status: 400, retry: false, message: 'A field has the wrong type.' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

/** A refusal the caller expected (bad input, overload); the central handler answers it, nothing is logged as a bug. */
export class TracklakeError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  constructor(code: ErrorCode, message?: string) {
    super(message ?? ERRORS[code].message);
    this.code = code;
    this.status = ERRORS[code].status;
  }
}

export function errorBody(code: ErrorCode, message?: string): { success: false; code: ErrorCode; message: string } {
  return { success: false, code, message: message ?? ERRORS[code].message };
}

/** Configuration problems name the setting; the CLI prints them and exits 2. */
export class ConfigError extends Error {
  constructor(readonly setting: string, message: string) {
    super(`invalid setting "${setting}": ${message}`);
  }
}

/**
 * A storage operation that failed (unreachable, refused, out of space), naming the store, the operation and
 * the key, with the underlying error as its cause. The CLI prints it without a stack: it is the
 * environment's failure, not tracklake's.
 */
export class StorageError extends Error {
  constructor(readonly location: string, readonly operation: string, readonly key: string, cause: unknown) {
    const c = cause as { name?: string; message?: string } | undefined;
    const what = c?.message ? (c.name && c.name !== 'Error' ? `${c.name}: ${c.message}` : c.message) : String(cause);
    super(`storage ${location}: ${operation} ${key} failed: ${what}`, { cause });
  }
}

/**
 * A job ran out of space in its scratch folder (staged inputs, rendered outputs, DuckDB's spill files). The
 * CLI prints it without a stack: the machine needs a bigger folder (--scratch-dir), not a fix.
 */
export class ScratchFullError extends Error {
  constructor(readonly folder: string, cause: unknown) {
    super(`no space left in the scratch folder ${folder}: ${(cause as Error)?.message ?? String(cause)}; free space there or point --scratch-dir at a bigger disk (outputs already stored are intact; the next run redoes the rest)`, { cause });
  }
}
