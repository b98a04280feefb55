/**
 * Reading a tracking request's body: raw bytes under a limit, gzip/deflate decoded under the same limit
 * (so a gzip bomb stops at 500 KB of output, not at the end of memory), strict UTF-8, then JSON.
 */
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { TracklakeError } from '../lib/errors.js';

const gunzip = promisify(zlib.gunzip);
const inflate = promisify(zlib.inflate);
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

async function readRaw(stream: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      // Discard the rest instead of resetting the socket, so the client can read our 400 (requestTimeout bounds it).
      stream.resume();
      throw new TracklakeError('request_too_large', `The request body is over the ${limit / 1024} KB limit.`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function decompress(raw: Buffer, encoding: string, limit: number): Promise<Buffer> {
  const enc = encoding.trim().toLowerCase();
  if (enc === '' || enc === 'identity') return raw;
  const decode = enc === 'gzip' || enc === 'x-gzip' ? gunzip : enc === 'deflate' ? inflate : undefined;
  if (!decode) throw new TracklakeError('invalid_encoding', `Content-Encoding "${encoding}" is not supported; use gzip or none.`);
  try {
    return await decode(raw, { maxOutputLength: limit });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) {
      throw new TracklakeError('request_too_large', `The decompressed body is over the ${limit / 1024} KB limit.`);
    }
    throw new TracklakeError('invalid_encoding', `The body is not valid ${enc} data.`);
  }
}

const ACCEPTED_TYPES = new Set(['application/json', 'text/plain', '']);

export function checkContentType(header: string | undefined): void {
  const type = (header ?? '').split(';')[0]!.trim().toLowerCase();
  if (!ACCEPTED_TYPES.has(type)) {
    throw new TracklakeError('unsupported_media_type', `Content-Type "${type}" is not accepted; send application/json (or text/plain from browsers).`);
  }
}

/** A parsed body and its decoded size in bytes. */
export interface JsonBody {
  json: unknown;
  bytes: number;
}

export async function readJsonBody(stream: Readable, contentEncoding: string | undefined, limit: number): Promise<JsonBody> {
  const raw = await readRaw(stream, limit);
  const bytes = await decompress(raw, contentEncoding ?? '', limit);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new TracklakeError('invalid_encoding', 'The body is not valid UTF-8.');
  }
  if (text.trim() === '') throw new TracklakeError('invalid_body', 'The body is empty; send a JSON object.');
  try {
    return { json: JSON.parse(text) as unknown, bytes: bytes.length };
  } catch (e) {
    throw new TracklakeError('invalid_json', `The body is not valid JSON: ${(e as Error).message.slice(0, 200)}`);
  }
}
