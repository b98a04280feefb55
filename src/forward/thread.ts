/**
 * A destination's sender on a thread of its own. The forwarder (cursor, backlog, dead letters in the bucket)
 * stays beside the log; reading the log's slices and batching them (forward/log-delivery.ts), retrying,
 * building a request's body, signing it, the HTTP connection and the kernel's copy of each request (or, for
 * Postgres, the rows and the COPY) run here, off the request thread, which keeps its time for ingest.
 * Batches the forwarder still makes itself (a backlog in the bucket, messages the privacy filter judged)
 * cross as packed bytes (SendJob).
 *
 * The thread is started at the first batch and again after it died (the batch it held fails, and is
 * retried as any failure is; a log job under way fails, and the forwarder reads its slice again). Outcomes
 * are data both ways (ToThread, FromThread).
 */
import { once } from 'node:events';
import { parentPort, Worker, workerData } from 'node:worker_threads';
import type { Destination } from '../config/destinations.js';
import type { Clock } from '../lib/clock.js';
import { ReusedBuffer } from '../lib/reused-buffer.js';
import { postgresSender } from './postgres.js';
import { type BacklogJob, type BacklogResult, deliverBacklog, deliverLog, type LogDeliveryHooks, type LogEvent, type LogJob, type LogJobHooks, type LogResult, type LogSender, type PrivacyHorizon } from './log-delivery.js';
import { type Outcome, type Outgoing, type Sender, segmentSender, webhookSender } from './sender.js';

const WORKER_URL = new URL('./send-worker.js', import.meta.url);
/** How long a closing thread may take to close its connections before it is stopped. */
const CLOSE_MS = 5000;

/** The sender of a destination's type, on the thread that calls it. */
export function senderFor(d: Destination, clock: Clock, events: Readonly<Record<string, string>>): Sender {
  switch (d.type) {
    case 'webhook':
      return webhookSender(d, clock);
    case 'segment':
      return segmentSender(d, clock);
    case 'postgres':
      return postgresSender(d, events);
  }
}

/**
 * A batch as it crosses the threads: per message its tenant, its JSON and, for Postgres, its tracking rows,
 * each as a length and its bytes, in a buffer whose memory moves to the sender's thread. Cloning instead
 * cost the request thread 3.9 µs per event for a hundred message objects, and 2 µs for one string of them
 * (bench:profile). The bytes are copied in as they were read from the log, and the sender's thread takes
 * views of them: nothing is decoded or encoded on the way.
 */
interface SendJob {
  id: number;
  lines: ArrayBuffer;
}

function packed(messages: readonly Outgoing[], withTracks: boolean): ArrayBuffer {
  let size = 0;
  for (const m of messages) {
    size += 9 + m.tenant.length + m.json.length;
    if (withTracks) for (const t of m.tracks ?? []) size += 4 + t.length;
  }
  const buf = Buffer.allocUnsafeSlow(size); // its own memory, so it can move
  let at = 0;
  const put = (b: Buffer) => {
    at = buf.writeUInt32LE(b.length, at);
    at += b.copy(buf, at);
  };
  for (const m of messages) {
    buf[at++] = m.tenant.length; // tenant ids are at most 128 ASCII characters (config/config.ts)
    at += buf.write(m.tenant, at, 'latin1');
    put(m.json);
    const tracks = withTracks ? (m.tracks ?? []) : [];
    at = buf.writeUInt32LE(tracks.length, at);
    for (const t of tracks) put(t);
  }
  return buf.buffer as ArrayBuffer;
}

function unpacked(lines: ArrayBuffer): Outgoing[] {
  const buf = Buffer.from(lines);
  const out: Outgoing[] = [];
  let at = 0;
  const take = () => {
    const n = buf.readUInt32LE(at);
    at += 4 + n;
    return buf.subarray(at - n, at);
  };
  while (at < buf.length) {
    const tenant = buf.toString('latin1', at + 1, at + 1 + buf[at]!);
    at += 1 + tenant.length;
    const json = take();
    const n = buf.readUInt32LE(at);
    at += 4;
    if (n === 0) out.push({ tenant, json });
    else out.push({ tenant, json, tracks: Array.from({ length: n }, take) });
  }
  return out;
}
/**
 * What the forwarder's side posts: a batch, a slice of the log, a backlog object (its bytes, moved), a stop,
 * an answer to the thread's question.
 */
type ToThread =
  | ({ kind: 'send' } & SendJob)
  | { kind: 'log'; id: number; job: LogJob }
  | { kind: 'backlog'; id: number; lines: ArrayBuffer; from: number; name: string }
  | { kind: 'stop' }
  | { kind: 'horizon'; req: number; horizon: PrivacyHorizon }
  | { kind: 'close' };

/** A job's result; its dead letters cross back as packed messages. */
type JobResult = LogResult | BacklogResult;
type PackedResult = (Omit<LogResult, 'deadLetters'> | Omit<BacklogResult, 'deadLetters' | 'lines'>) & {
  deadLetters?: Array<{ lines: ArrayBuffer; error: string; attempts: number; id: string }>;
  /** A backlog object's bytes, moved back (BacklogResult.lines). */
  backlog?: ArrayBuffer;
};

/** What the thread posts: a batch's outcome, a log job's events and result, a question. */
type FromThread =
  | { id: number; outcome: Outcome }
  | { id: number; event: LogEvent }
  | { id: number; result: PackedResult }
  | { id: number; failed: string }
  | { req: number; ask: 'horizon' };

interface SenderData {
  destination: Destination;
  events: Readonly<Record<string, string>>;
}

type Waiting = { outcome(o: Outcome): void } | { hooks: LogJobHooks; result(r: JobResult): void; failed(e: Error): void };

export class ThreadedSender implements Sender, LogSender {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Waiting>();
  private nextId = 1;
  /** The log job running, whose hooks answer the thread's questions. */
  private logJob: LogJobHooks | undefined;

  constructor(private readonly d: Destination, private readonly events: Readonly<Record<string, string>>) {}

  send(messages: readonly Outgoing[]): Promise<Outcome> {
    const w = (this.worker ??= this.start());
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, { outcome: resolve });
      const lines = packed(messages, this.d.type === 'postgres');
      w.postMessage({ kind: 'send', id, lines } satisfies ToThread, [lines]);
    });
  }

  /** Delivers a slice of the log on the sender's thread (forward/log-delivery.ts). One job at a time. */
  deliverLog(job: LogJob, hooks: LogJobHooks): Promise<LogResult> {
    return this.run((id) => ({ kind: 'log', id, job }), hooks) as Promise<LogResult>;
  }

  /** Delivers a backlog object's lines on the sender's thread; its bytes move there (a copy if they share memory). */
  deliverBacklog(job: BacklogJob, hooks: LogJobHooks): Promise<BacklogResult> {
    const b = job.lines;
    const own = b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer;
    const lines = own ? (b.buffer as ArrayBuffer) : b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
    return this.run((id) => ({ kind: 'backlog', id, lines: lines as ArrayBuffer, from: job.from, name: job.name }), hooks, [lines as ArrayBuffer]) as Promise<BacklogResult>;
  }

  private run(message: (id: number) => ToThread, hooks: LogJobHooks, transfer: ArrayBuffer[] = []): Promise<JobResult> {
    const w = (this.worker ??= this.start());
    const id = this.nextId++;
    this.logJob = hooks;
    return new Promise<JobResult>((result, failed) => {
      this.pending.set(id, { hooks, result, failed });
      w.postMessage(message(id), transfer);
    }).finally(() => (this.logJob = undefined));
  }

  stopLog(): void {
    this.worker?.postMessage({ kind: 'stop' } satisfies ToThread);
  }

  async close(): Promise<void> {
    const w = this.worker;
    if (!w) return;
    this.worker = undefined;
    const exited = once(w, 'exit');
    w.postMessage({ kind: 'close' } satisfies ToThread);
    const timer = setTimeout(() => void w.terminate(), CLOSE_MS);
    await exited;
    clearTimeout(timer);
  }

  private start(): Worker {
    const w = new Worker(WORKER_URL, { workerData: { destination: this.d, events: this.events } satisfies SenderData });
    w.unref(); // a sender never keeps the process up on its own: the forwarder closes it at stop
    w.on('message', (m: FromThread) => {
      if ('ask' in m) return w.postMessage({ kind: 'horizon', req: m.req, horizon: this.logJob?.horizon() } satisfies ToThread);
      const waiting = this.pending.get(m.id);
      if (waiting === undefined) return;
      if ('event' in m) return 'hooks' in waiting && waiting.hooks.event(m.event);
      this.pending.delete(m.id);
      if ('outcome' in m) return 'outcome' in waiting && waiting.outcome(m.outcome);
      if ('hooks' in waiting) {
        if ('failed' in m) return waiting.failed(new Error(m.failed));
        const { deadLetters, backlog, ...rest } = m.result;
        waiting.result({ ...rest, ...(deadLetters ? { deadLetters: deadLetters.map(({ lines, ...l }) => ({ ...l, messages: unpacked(lines) })) } : {}), ...(backlog ? { lines: Buffer.from(backlog) } : {}) } as JobResult);
      }
    });
    const down = (why: string) => {
      if (this.worker === w) this.worker = undefined;
      const error = `the sender thread of ${this.d.name} ${why}`;
      for (const waiting of this.pending.values()) {
        if ('outcome' in waiting) waiting.outcome({ ok: false, retry: true, error });
        else waiting.failed(new Error(error));
      }
      this.pending.clear();
    };
    w.on('error', (e) => down(`failed: ${e.message}`));
    w.on('exit', (code) => down(`exited (${code})`));
    return w;
  }
}

/**
 * The thread's side (send-worker.ts): one sender, batches and log jobs in order, until told to close. A
 * stop ends the log job under way and any after it: the forwarder is stopping.
 */
export function serveSender(clock: Clock): void {
  const { destination, events } = workerData as SenderData;
  const sender = senderFor(destination, clock, events);
  const port = parentPort!;
  let queue = Promise.resolve();
  let stopping = false;
  let wake: (() => void) | undefined;
  let nextReq = 1;
  const asked = new Map<number, (h: PrivacyHorizon) => void>();
  // One job at a time (the queue below), so one buffer serves every slice this thread reads.
  const reads = new ReusedBuffer();
  const hooks = (id: number): LogDeliveryHooks => ({
    post: (event) => port.postMessage({ id, event } satisfies FromThread),
    stopped: () => stopping,
    sleep: (ms) =>
      stopping
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const t = setTimeout(done, ms);
            function done() {
              clearTimeout(t);
              resolve();
            }
            wake = done;
          }),
    horizon: () =>
      new Promise((resolve) => {
        const req = nextReq++;
        asked.set(req, resolve);
        port.postMessage({ req, ask: 'horizon' } satisfies FromThread);
      }),
  });
  port.on('message', (m: ToThread) => {
    if (m.kind === 'stop') {
      stopping = true;
      return wake?.();
    }
    if (m.kind === 'horizon') {
      asked.get(m.req)?.(m.horizon);
      return asked.delete(m.req);
    }
    queue = queue.then(async () => {
      if (m.kind === 'close') {
        await sender.close().catch(() => undefined);
        return port.close();
      }
      if (m.kind === 'send') {
        let outcome: Outcome;
        try {
          outcome = await sender.send(unpacked(m.lines));
        } catch (e) {
          outcome = { ok: false, retry: true, error: (e as Error).message };
        }
        return port.postMessage({ id: m.id, outcome } satisfies FromThread);
      }
      try {
        const job = m.kind === 'log' ? deliverLog(m.job, destination, sender, hooks(m.id), reads) : deliverBacklog({ lines: Buffer.from(m.lines), from: m.from, name: m.name }, destination, sender, hooks(m.id));
        const { deadLetters, ...rest } = await job;
        const packedLetters = deadLetters?.map(({ messages, ...l }) => ({ ...l, lines: packed(messages, false) })); // a dead letter is its tenant and JSON
        // A backlog object's bytes go back with its dead letters, for the next job (no second download).
        const backlog = 'lines' in rest && rest.lines && m.kind === 'backlog' ? m.lines : undefined;
        if ('lines' in rest) delete rest.lines;
        const result = { ...rest, ...(packedLetters ? { deadLetters: packedLetters } : {}), ...(backlog ? { backlog } : {}) };
        port.postMessage({ id: m.id, result } satisfies FromThread, [...(packedLetters?.map((l) => l.lines) ?? []), ...(backlog ? [backlog] : [])]);
      } catch (e) {
        port.postMessage({ id: m.id, failed: (e as Error).message } satisfies FromThread);
      }
    });
  });
}
