/**
 * What the client SDKs fetch before they send anything, served by the collector itself so that pointing a
 * client at tracklake is the only change a team makes:
 *
 * - Segment's settings (`/v1/projects/:writeKey/settings`), read by analytics.js and the mobile libraries:
 *   they deliver wherever `integrations["Segment.io"].apiHost` says, so it names this collector, and
 *   nothing else is listed (no destinations, no remote plugins or middleware, metrics sampling off), so no
 *   client loads code or sends data anywhere else.
 * - RudderStack's source config (`/sourceConfig`), read by its browser SDK v3: an enabled source with no
 *   destinations and its own error and metrics reporting off.
 * - The analytics.js bundle of the pinned `@segment/analytics-next` npm package and the chunks it loads,
 *   as Segment's CDN serves them, so the standard snippet works by changing its host.
 *
 * Everything here is plain data built from the configuration and the request; nothing is fetched at run time.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

/** Where clients reach the collector: scheme and host (with port and any path prefix), as in "collect.example.com/t". */
export interface PublicBase {
  protocol: 'http' | 'https';
  host: string;
}

// A Host (or X-Forwarded-Host) we are willing to write into settings: a name or address with an optional
// port. Anything else (spaces, slashes, quotes) is refused rather than echoed into a cacheable answer.
const HOST_RE = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

/**
 * The public base from the `publicUrl` setting, else from the request. `host` and `protocol` are the
 * request's own (Fastify reads X-Forwarded-Host/-Proto only when trustProxy is set). Undefined when the
 * request's host cannot be used.
 */
export function publicBase(publicUrl: string | undefined, req: { host: string; protocol: string }): PublicBase | undefined {
  if (publicUrl) {
    const u = new URL(publicUrl);
    return { protocol: u.protocol === 'https:' ? 'https' : 'http', host: `${u.host}${u.pathname.replace(/\/+$/, '')}` };
  }
  // Behind several proxies X-Forwarded-* may list one value per hop: the first is the client's.
  const host = req.host.split(',')[0]!.trim();
  const protocol = req.protocol.split(',')[0]!.trim().toLowerCase();
  if (!HOST_RE.test(host)) return undefined;
  return { protocol: protocol === 'https' ? 'https' : 'http', host };
}

/**
 * The settings Segment's CDN returns for a source whose only destination is Segment's own API, aimed at
 * this collector. analytics.js reads `integrations`, `metrics`, `middlewareSettings`, `enabledMiddleware`,
 * `legacyVideoPluginsEnabled` and `remotePlugins`; the mobile libraries read `integrations` and `plan`.
 */
export function segmentSettings(writeKey: string, base: PublicBase): Record<string, unknown> {
  const apiHost = `${base.host}/v1`;
  return {
    integrations: {
      'Segment.io': {
        apiKey: writeKey,
        apiHost,
        protocol: base.protocol,
        unbundledIntegrations: [],
        addBundledMetadata: true,
        maybeBundledConfigIds: {},
        versionSettings: { componentTypes: [] },
      },
    },
    plan: {},
    edgeFunction: {},
    analyticsNextEnabled: true,
    middlewareSettings: {},
    enabledMiddleware: {},
    // The library's own usage metrics: none sampled, and if a client overrides the rate they come here (/v1/m).
    metrics: { sampleRate: 0, host: apiHost, protocol: base.protocol },
    legacyVideoPluginsEnabled: false,
    remotePlugins: [],
    consentSettings: { allCategories: [], hasUnmappedDestinations: false },
  };
}

/**
 * RudderStack's source config for SDK v3: `isValidSourceConfig` wants `source.id`, `source.config` and
 * `source.destinations`; `enabled: false` would stop the SDK, and `statsCollection` turns its error and
 * metrics reporting (to RudderStack's hosts) off.
 */
export function rudderSourceConfig(writeKey: string, tenant: string): Record<string, unknown> {
  return {
    isHosted: false,
    source: {
      id: `tracklake-${tenant}`,
      name: tenant,
      writeKey,
      workspaceId: 'tracklake',
      enabled: true,
      deleted: false,
      config: { statsCollection: { errors: { enabled: false }, metrics: { enabled: false } } },
      destinations: [],
    },
  };
}

export interface Asset {
  body: Buffer;
  /** The same bytes gzipped, for clients that accept it. */
  gzip: Buffer;
  etag: string;
}

/**
 * The analytics.js files of the pinned @segment/analytics-next package (its `dist/umd` build): the
 * standalone entry, with the write key written in as Segment's CDN does, and the chunks it lazy-loads,
 * named by content hash. The package's files are read once; an entry is rendered once per write key.
 */
export class AnalyticsJsAssets {
  readonly version: string;
  private readonly dir: string;
  private readonly entry: string;
  /** Chunk names of the package, with their bytes once read. */
  private readonly chunks = new Map<string, Asset | null>();
  private readonly entries = new Map<string, Asset>();

  constructor() {
    const pkg = createRequire(import.meta.url).resolve('@segment/analytics-next/package.json');
    this.version = (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
    this.dir = path.join(path.dirname(pkg), 'dist', 'umd');
    this.entry = readFileSync(path.join(this.dir, 'standalone.js'), 'utf8');
    if (!this.entry.includes('"__WRITE_KEY__"')) throw new Error(`@segment/analytics-next ${this.version}: standalone.js has no write-key placeholder`);
    // Only the hashed chunks are served from the folder: a name is looked up, never joined onto a path.
    for (const name of readdirSync(this.dir)) {
      if (/^[A-Za-z0-9_-]+\.bundle\.[0-9a-f]+\.js(\.map)?$/.test(name)) this.chunks.set(name, null);
    }
  }

  /** The entry file for a write key (the caller has checked that the key is known). */
  entryFor(writeKey: string): Asset {
    let a = this.entries.get(writeKey);
    if (!a) {
      const body = Buffer.from(this.entry.replace('"__WRITE_KEY__"', JSON.stringify(writeKey)));
      a = { body, gzip: gzipSync(body), etag: `"ajs-${this.version}-${createHash('sha256').update(writeKey).digest('base64url').slice(0, 22)}"` };
      this.entries.set(writeKey, a);
    }
    return a;
  }

  /** A lazy-loaded chunk by file name, or undefined when the package has no such chunk. */
  chunk(name: string): Asset | undefined {
    let a = this.chunks.get(name);
    if (a === undefined) return undefined;
    if (a === null) {
      const body = readFileSync(path.join(this.dir, name));
      a = { body, gzip: gzipSync(body), etag: `"${name}"` };
      this.chunks.set(name, a);
    }
    return a;
  }
}
