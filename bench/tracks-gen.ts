/** Writes generated tracking files for benchmarks: realistic columns, fast (no per-row library calls). */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { dayPath, dayStartMs } from '../src/lib/dates.js';
import { prng } from '../src/segment/simulator.js';
import { TRACK_COLUMNS } from '../src/tracking/columns.js';
import { csvLine } from '../src/tracking/csv.js';

const EVENTS = ['load', 'load', 'view', 'view', 'view', 'view', 'share', 'chat', 'order', 'sales'];
const UA = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1';

/** Writes `rows` rows for `day` under root/tracks/, split into `files` files; returns the file paths. */
export async function writeDay(root: string, day: string, rows: number, files: number, seed: number): Promise<string[]> {
  const rnd = prng(seed);
  const dir = path.join(root, 'tracks', dayPath(day));
  await mkdir(dir, { recursive: true });
  const start = dayStartMs(day);
  const out: string[] = [];
  for (let f = 0; f < files; f++) {
    const file = path.join(dir, `bench-${String(f + 1).padStart(12, '0')}.csv`);
    out.push(file);
    const ws = createWriteStream(file);
    ws.write(`${TRACK_COLUMNS.join(',')}\n`);
    const n = Math.floor(rows / files) + (f < rows % files ? 1 : 0);
    let chunk = '';
    // Events come in visits: a device, a start, then 1-12 events a few minutes apart.
    let left = 0;
    let device = '';
    let account: string | null = null;
    let t = 0;
    for (let i = 0; i < n; i++) {
      if (left === 0) {
        left = 1 + Math.floor(rnd() * 12);
        device = `d${Math.floor(rnd() * 200_000)}`;
        account = rnd() < 0.3 ? `u${Math.floor(rnd() * 50_000)}` : null;
        t = start + Math.floor(rnd() * 82_800_000);
      }
      left--;
      t += 30_000 + Math.floor(rnd() * 270_000);
      // A product belongs to one merchant, as in a real marketplace.
      const p = Math.floor(rnd() * 5000);
      const product = rnd() < 0.1 ? null : `p${p}`;
      const ev = EVENTS[Math.floor(rnd() * EVENTS.length)]!;
      chunk += `${csvLine([
        Math.min(t, start + 86_399_999), `tenant${Number(device.slice(1)) % 5}`, null, device, account,
        `m${p % 200}`, product, 'Product page', ev, ev === 'sales' || ev === 'order' ? Math.round(rnd() * 10_000) / 100 : null,
        '198.51.100.7', null, null, 'https://www.google.com/', rnd() < 0.05, UA, 'https://shop.example/p/1', 'p1|p2|p3', 'MOBILE', 'SEO',
      ])}\n`;
      if (chunk.length > 1 << 20) {
        if (!ws.write(chunk)) await new Promise<void>((r) => ws.once('drain', () => r()));
        chunk = '';
      }
    }
    ws.write(chunk);
    await new Promise<void>((resolve, reject) => ws.end((e?: Error | null) => (e ? reject(e) : resolve())));
  }
  return out;
}
