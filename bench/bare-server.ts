/** The baseline for bench:ingest: a bare node:http server that reads and JSON-parses the body, nothing else. */
import http from 'node:http';

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    try {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"success":true}');
    } catch {
      res.writeHead(400).end();
    }
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`{"address":"http://127.0.0.1:${(server.address() as { port: number }).port}"}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
