/**
 * Reads CSV (a file or a pipe) record by record as raw bytes, without parsing fields: a record ends at a newline outside
 * double quotes (RFC 4180; an escaped quote `""` toggles twice, so counting quotes is enough). This is for
 * copying records verbatim at disk speed: csv-parse builds every field as a string, many times the cost
 * when no field is needed.
 *
 * Usage, so that only a refill awaits:
 *   while (reader.next() || (await reader.more())) { use reader.buf.subarray(reader.start, reader.end) }
 */
import { type FileHandle, open } from 'node:fs/promises';

/** Where the bytes come from: up to `max` bytes into `into` at `at`; 0 at the end. */
export interface ByteSource {
  read(into: Buffer, at: number, max: number): Promise<number>;
  close(): Promise<void>;
}

/** A file, read from its current position. */
export const fileSource = (fh: FileHandle): ByteSource => ({
  read: async (into, at, max) => (await fh.read(into, at, max, null)).bytesRead,
  close: () => fh.close(),
});

/**
 * A pipe, read ahead of the consumer: its writer rarely waits on a full pipe (a DuckDB thread blocked in a
 * write is a thread other queries do not get). Up to `ahead` bytes are held in memory; beyond that the
 * reading pauses until the consumer has taken half of them.
 */
export function drainedSource(fh: FileHandle, ahead = 256 << 20): ByteSource {
  const chunks: Buffer[] = [];
  let held = 0;
  let discard = false;
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined; // the consumer, waiting for bytes
  let resume: (() => void) | undefined; // the pump, waiting for room
  const pump = (async () => {
    try {
      for (;;) {
        if (held > ahead) await new Promise<void>((resolve) => (resume = resolve));
        const buf = Buffer.allocUnsafe(64 * 1024); // a pipe gives at most its capacity per read
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        if (discard) continue;
        chunks.push(buf.subarray(0, bytesRead));
        held += bytesRead;
        wake?.();
      }
    } catch (e) {
      failure = e;
    } finally {
      ended = true;
      wake?.();
    }
  })();
  return {
    async read(into, at, max) {
      while (chunks.length === 0 && !ended) await new Promise<void>((resolve) => (wake = resolve));
      if (failure) throw failure;
      let n = 0;
      while (n < max && chunks.length > 0) {
        const head = chunks[0]!;
        const k = head.copy(into, at + n, 0, Math.min(max - n, head.length));
        n += k;
        if (k === head.length) chunks.shift();
        else chunks[0] = head.subarray(k);
      }
      held -= n;
      if (resume && held <= ahead / 2) {
        resume();
        resume = undefined;
      }
      return n;
    },
    async close() {
      // Read on to the end, so the writer can finish, and keep nothing.
      discard = true;
      chunks.length = 0;
      held = 0;
      resume?.();
      await pump;
      await fh.close();
    },
  };
}

const NL = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const CHUNK = 4 << 20;

export class CsvRecordReader {
  /** The current record is buf[start, end), without its newline; it starts at byte `offset` of the input. */
  buf: Buffer = Buffer.alloc(0);
  start = 0;
  end = 0;
  offset = 0;
  /** Whether the file holds a carriage return anywhere (inside a field or as a line end). */
  sawCr = false;

  private len = 0;
  private base = 0; // file offset of buf[0]
  private pos = 0; // where the next record starts
  private quote = -1; // the next quote at or after `quoteFrom`, or -1 for none before len
  private quoteFrom = 0;
  private eof = false;

  /** close() closes the source. */
  constructor(private readonly source: ByteSource, private readonly chunk = CHUNK) {}

  static async open(file: string, chunk = CHUNK): Promise<CsvRecordReader> {
    return new CsvRecordReader(fileSource(await open(file, 'r')), chunk);
  }

  /** The next record in the bytes read so far; false when more must be read first (see more()). */
  next(): boolean {
    const buf = this.buf;
    let scan = this.pos;
    if (scan >= this.len) return false;
    let inQuote = false;
    for (;;) {
      const nl = buf.indexOf(NL, scan);
      const stop = nl < 0 || nl >= this.len ? this.len : nl;
      // Quotes in [scan, stop): the next quote is remembered, so a file with few quotes is searched once.
      if (this.quoteFrom > scan || (this.quote !== -1 && this.quote < scan)) this.findQuote(scan);
      while (this.quote !== -1 && this.quote < stop) {
        inQuote = !inQuote;
        this.findQuote(this.quote + 1);
      }
      if (stop === this.len) {
        if (!this.eof) return false; // the record goes on in bytes not read yet
        return this.take(this.len, this.len); // the last record, without a final newline
      }
      if (!inQuote) return this.take(stop, stop + 1);
      scan = stop + 1; // a newline inside a quoted field
    }
  }

  /** Reads on until a record is complete; false at the end of the file. */
  async more(): Promise<boolean> {
    while (!this.eof) {
      await this.fill();
      if (this.next()) return true;
    }
    return this.next();
  }

  async close(): Promise<void> {
    await this.source.close();
  }

  private take(end: number, next: number): boolean {
    this.start = this.pos;
    this.end = end;
    this.offset = this.base + this.pos;
    this.pos = next;
    return true;
  }

  private findQuote(from: number): void {
    const q = this.buf.indexOf(QUOTE, from);
    this.quote = q >= this.len ? -1 : q;
    this.quoteFrom = from;
  }

  /** Keeps the unfinished record and appends the next chunk of the file. */
  private async fill(): Promise<void> {
    const rest = this.len - this.pos;
    const next = Buffer.allocUnsafe(rest + this.chunk);
    this.buf.copy(next, 0, this.pos, this.len);
    // A source may give less than asked (what a pipe holds): read on until the chunk is full or the end.
    let bytesRead = 0;
    for (;;) {
      const n = await this.source.read(next, rest + bytesRead, this.chunk - bytesRead);
      bytesRead += n;
      if (n === 0) this.eof = true;
      if (n === 0 || bytesRead === this.chunk) break;
    }
    if (!this.sawCr && next.subarray(rest, rest + bytesRead).includes(CR)) this.sawCr = true;
    this.base += this.pos;
    this.buf = next;
    this.len = rest + bytesRead;
    this.pos = 0;
    this.quote = -1;
    this.quoteFrom = Number.MAX_SAFE_INTEGER; // searched afresh in the new buffer
  }
}
