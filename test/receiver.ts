/**
 * A real HTTP receiver on loopback for destination tests: it records every request (gunzipped) and answers
 * as the test says: a status, a Retry-After, a delay, or a closed connection.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { gunzipSync } from 'node:zlib';

export interface Received {
  headers: IncomingMessage['headers'];
  raw: string;
  body: { batch: Array<Record<string, any>>; sentAt?: string };
}

export type Answer = { status: number; retryAfter?: string; delayMs?: number; body?: string } | 'close' | 'hang';

export interface Receiver {
  url: string;
  /** Every request, answered or not, in arrival order, and when each arrived (ms). */
  requests: Received[];
  times: number[];
  /** The batches' messages of the requests answered 2xx, in order. */
  delivered: Array<Record<string, any>>;
  answer: (r: Received, n: number) => Answer;
  close(): Promise<void>;
}

export async function startReceiver(answer: Receiver['answer'] = () => ({ status: 200 })): Promise<Receiver> {
  const r: Receiver = { url: '', requests: [], times: [], delivered: [], answer, close: async () => undefined };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let buf = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') buf = gunzipSync(buf);
      const raw = buf.toString('utf8');
      const got: Received = { headers: req.headers, raw, body: JSON.parse(raw) as Received['body'] };
      r.requests.push(got);
      r.times.push(Date.now());
      const a = r.answer(got, r.requests.length);
      if (a === 'close') return void req.socket.destroy();
      if (a === 'hang') return; // the sender's timeout ends it
      const reply = () => {
        if (a.status >= 200 && a.status < 300) r.delivered.push(...got.body.batch);
        res.writeHead(a.status, { 'content-type': 'application/json', ...(a.retryAfter ? { 'retry-after': a.retryAfter } : {}) });
        res.end(a.body ?? '{"success":true}');
      };
      if (a.delayMs) setTimeout(reply, a.delayMs);
      else reply();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  r.close = () => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  return r;
}

/**
 * Waits until check() holds, polling; fails naming what it waited for after timeoutMs, with what `state`
 * says of the parts at that moment (so a rare timeout in CI says where delivery stood).
 */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000, state?: () => unknown): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${state ? `; state: ${JSON.stringify(await state())}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
