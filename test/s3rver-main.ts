/**
 * A real S3-protocol server (s3rver) as its own process, for the tests: `node s3rver-main.js PORT DIR BUCKET`.
 * Run with --openssl-legacy-provider: s3rver signs its listing continuation tokens with DES, which
 * OpenSSL 3 only offers from the legacy provider. A separate process also makes outages real: kill it.
 */
import S3rver from 's3rver';

const [port, directory, bucket] = process.argv.slice(2);
const server = new S3rver({ port: Number(port), address: '127.0.0.1', silent: true, directory: directory!, configureBuckets: [{ name: bucket!, configs: [] }] });
await server.run();
process.stdout.write('ready\n');
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
