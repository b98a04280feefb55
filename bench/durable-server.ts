/**
 * The durable baseline for bench:ingest: the bare server (bare-server.ts) plus tracklake's durable,
 * group-committed log. Each body is parsed and appended to the log as it came, and answered once it is
 * durable: no framework, no write keys, no duplicates, no validation, mapping or shipping. It shows what
 * durability costs by itself. Argument: a scratch directory for the log.
 */
import http from 'node:http';
import path from 'node:path';
import { encodeFrame, WriteAheadLog } from '../src/ingest/wal.js';

// Never shipped, so one segment takes the whole run.
const wal = await WriteAheadLog.open(path.join(process.argv[2]!, 'durable-wal'), { maxSegmentBytes: Number.MAX_SAFE_INTEGER });

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    try {
      const body = Buffer.concat(chunks);
      JSON.parse(body.toString('utf8'));
      wal.append(encodeFrame(body)).then(
        () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"success":true}'),
        () => res.writeHead(503).end(),
      );
    } catch {
      res.writeHead(400).end();
    }
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`{"address":"http://127.0.0.1:${(server.address() as { port: number }).port}"}\n`);
});
process.on('SIGTERM', () => server.close(() => void wal.close().then(() => process.exit(0))));
