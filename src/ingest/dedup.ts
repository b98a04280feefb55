/**
 * Duplicate detection: a messageId accepted for a tenant within the window (24 h) is acknowledged again but
 * not written again. The index lives in memory and is rebuilt at start from the log's pending segments and
 * the small id files written when a segment is shipped, so it holds across restarts.
 *
 * Memory: about 100 bytes per message id in the window. Dedup is per collector node: behind a load balancer
 * a retry that reaches another node is not caught (the same as Segment's best-effort dedup window).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Clock } from '../lib/clock.js';

/** The dedup key of a message: its tenant and messageId. */
export const dedupKey = (tenant: string, id: string) => `${tenant}\u0000${id}`;

export class DedupIndex {
  private seen = new Map<string, number>();

  constructor(private readonly windowMs: number, private readonly clock: Clock) {}

  /** Reserves the id when it is new; false when it was already accepted within the window. */
  reserve(tenant: string, id: string, at: number): boolean {
    const k = dedupKey(tenant, id);
    const prev = this.seen.get(k);
    if (prev !== undefined && prev > this.clock.now() - this.windowMs) return false;
    this.seen.delete(k); // re-insert at the end so the map stays ordered by time
    this.seen.set(k, at);
    return true;
  }

  /** Undoes a reservation whose write failed, so the client's retry is accepted. */
  release(tenant: string, id: string): void {
    this.seen.delete(dedupKey(tenant, id));
  }

  load(entries: Iterable<[string, string, number]>): void {
    const cutoff = this.clock.now() - this.windowMs;
    const fresh = [...entries].filter((e) => e[2] > cutoff).sort((a, b) => a[2] - b[2]);
    for (const [t, id, at] of fresh) this.reserve(t, id, at);
  }

  /** Forgets ids older than the window; the map is in insertion order, which is time order. */
  prune(): void {
    const cutoff = this.clock.now() - this.windowMs;
    for (const [k, at] of this.seen) {
      if (at > cutoff) break;
      this.seen.delete(k);
    }
  }

  get size(): number {
    return this.seen.size;
  }
}

/** The id files: one per shipped segment, named with its newest time so old ones are pruned unread. */
const IDS_RE = /^ids-(\d{12})-(\d+)\.jsonl$/;

export async function writeIdsFile(dir: string, seq: number, entries: Array<[string, string, number]>): Promise<void> {
  if (entries.length === 0) return;
  let newest = 0;
  for (const e of entries) newest = Math.max(newest, e[2]);
  const name = `ids-${String(seq).padStart(12, '0')}-${newest}.jsonl`;
  const tmp = path.join(dir, `${name}.tmp`);
  const fh = await fs.open(tmp, 'w');
  try {
    await fh.writeFile(entries.map((e) => JSON.stringify(e)).join('\n') + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, path.join(dir, name));
}

export async function readIdsFiles(dir: string, cutoff: number): Promise<Array<[string, string, number]>> {
  const out: Array<[string, string, number]> = [];
  for (const name of await fs.readdir(dir)) {
    const m = IDS_RE.exec(name);
    if (!m) continue;
    if (Number(m[2]) <= cutoff) {
      await fs.rm(path.join(dir, name), { force: true });
      continue;
    }
    const text = await fs.readFile(path.join(dir, name), 'utf8');
    for (const line of text.split('\n')) if (line) out.push(JSON.parse(line) as [string, string, number]);
  }
  return out;
}

export async function pruneIdsFiles(dir: string, cutoff: number): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    const m = IDS_RE.exec(name);
    if (m && Number(m[2]) <= cutoff) await fs.rm(path.join(dir, name), { force: true });
  }
}
