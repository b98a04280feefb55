/**
 * The dashboard's files, as the build leaves them in dist/web (scripts/build-web.mjs bundles src/web with
 * esbuild): index.html, and the script and style named by content hash. Read once, gzipped once.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Asset } from '../api/sdk.js';

const TYPES: Record<string, string> = { '.js': 'application/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.html': 'text/html; charset=utf-8', '.svg': 'image/svg+xml' };

export interface WebAsset extends Asset {
  type: string;
}

function asset(file: string): WebAsset {
  const body = readFileSync(file);
  return { body, gzip: gzipSync(body, { level: 9 }), etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`, type: TYPES[path.extname(file)] ?? 'application/octet-stream' };
}

export class WebAssets {
  readonly page: WebAsset;
  private readonly files = new Map<string, WebAsset>();

  private constructor(dir: string) {
    this.page = asset(path.join(dir, 'index.html'));
    for (const name of readdirSync(path.join(dir, 'assets'))) this.files.set(name, asset(path.join(dir, 'assets', name)));
  }

  /** The built dashboard, or undefined when the build has not made it. */
  static load(dir = fileURLToPath(new URL('../../web/', import.meta.url))): WebAssets | undefined {
    return existsSync(path.join(dir, 'index.html')) ? new WebAssets(dir) : undefined;
  }

  asset(name: string): WebAsset | undefined {
    return this.files.get(name);
  }
}
