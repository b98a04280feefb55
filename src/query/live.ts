/**
 * The live panel's numbers (`GET /api/v1/live`): messages acknowledged per minute over the last half hour,
 * summed over every collector's `live/<node>.json` (lake/live.ts). When the read side runs in a collector's
 * own process, that collector's counts are taken from its memory instead of its file: they are fresher.
 */
import { type LiveFile, LIVE_MINUTES, liveSeries, parseLiveFile } from '../lake/live.js';
import type { ObjectStore } from '../storage/store.js';

/** This process's collector, when there is one. */
export interface LocalLive {
  node: string;
  /** Its counts of one tenant (the only one a request asks for). */
  minutes(now: number, tenant: string): LiveFile['minutes'];
}

export interface LiveAnswer {
  minutes: Array<{ minute: string; events: number }>;
  total: number;
  /** The collectors whose counts are in, and the oldest of their files (how late the numbers may be). */
  collectors: number;
  oldest_update: string | null;
}

/** Reading the files at most every READ_EVERY_MS, whatever the number of open dashboards polling them. */
const READ_EVERY_MS = 2000;

export class LiveReader {
  private files: { at: number; files: Promise<LiveFile[]> } | undefined;
  /** The files last read, by key, with their etag: a file that did not change (a stopped node's) is not read again. */
  private readonly known = new Map<string, { etag: string; file: LiveFile | undefined }>();
  constructor(private readonly store: ObjectStore, private readonly local?: LocalLive) {}

  async traffic(tenant: string, now: number): Promise<LiveAnswer> {
    if (!this.files || now - this.files.at >= READ_EVERY_MS || now < this.files.at) this.files = { at: now, files: this.read(now) };
    const files = [...(await this.files.files.catch((e: unknown) => {
      this.files = undefined;
      throw e;
    }))];
    if (this.local) files.push({ version: 1, node: this.local.node, at: now, minutes: this.local.minutes(now, tenant) });
    const series = liveSeries(files, tenant, now);
    const oldest = files.length > 0 ? Math.min(...files.map((f) => f.at)) : null;
    return {
      minutes: series.map((m) => ({ minute: new Date(m.minute).toISOString(), events: m.events })),
      total: series.reduce((a, m) => a + m.events, 0),
      collectors: files.length,
      oldest_update: oldest === null ? null : new Date(oldest).toISOString(),
    };
  }

  private async read(now: number): Promise<LiveFile[]> {
    const listed = (await this.store.list('live/')).filter((o) => o.key.endsWith('.json'));
    // The changed files are fetched together: with dozens of collectors, one after another added up.
    const changed = listed.filter((o) => this.known.get(o.key)?.etag !== o.etag);
    const bodies = await Promise.all(changed.map((o) => this.store.get(o.key)));
    changed.forEach((o, i) => this.known.set(o.key, { etag: o.etag, file: parseLiveFile(bodies[i]) }));
    const keys = new Set(listed.map((o) => o.key));
    for (const key of this.known.keys()) if (!keys.has(key)) this.known.delete(key);
    const files: LiveFile[] = [];
    for (const o of listed) {
      const f = this.known.get(o.key)!.file;
      // A collector silent for the whole window has nothing to add; this process's own is read from memory.
      if (f && f.node !== this.local?.node && f.at >= now - LIVE_MINUTES * 60_000) files.push(f);
    }
    return files;
  }
}
