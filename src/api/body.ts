/**
 * Reading a tracking request's body: raw bytes under a limit, gzip/deflate decoded under the same limit
 * (so a gzip bomb stops at 500 KB of output, not at the end of memory). Decoding the text and parsing the
 * JSON happen where the request is prepared (ingest/prepare.ts), off the request thread when there are
 * workers.
 */
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { TracklakeError } from '../lib/errors.js';

const gunzip = promisify(zlib.gunzip);
const inflate = promisify(zlib.inflate);

function readRaw(stream: Readable, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        // Discard the rest instead of resetting the socket, so the client can read our 400 (requestTimeout bounds it).
        stream.off('data', onData);
        stream.resume();
        reject(new TracklakeError('request_too_large', `The request body is over the ${limit / 1024} KB limit.`));
        return;
      }
      chunks.push(chunk);
    };
    stream.on('data', onData);
    stream.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    stream.once('error', reject);
  });
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

/** The body's bytes, decompressed, within the limit. */
export async function readBody(stream: Readable, contentEncoding: string | undefined, limit: number): Promise<Buffer> {
  return decompress(await readRaw(stream, limit), contentEncoding ?? '', limit);
}
