/** A real S3-protocol server (s3rver) on loopback, started by the tests themselves; stoppable for outage tests. */
import { createServer } from 'node:net';
import S3rver from 's3rver';
import { S3Store } from '../src/storage/s3.js';
import { tempDir } from './helpers.js';

export const S3_ENV = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1', TRACKLAKE_S3_FORCE_PATH_STYLE: 'true' };

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export class TestS3 {
  private server: S3rver | undefined;
  readonly directory = tempDir('s3rver');
  constructor(readonly port: number, readonly bucket = 'tracklake-test') {}

  static async start(): Promise<TestS3> {
    const s = new TestS3(await freePort());
    await s.up();
    return s;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** (Re)starts the server on the same port and folder: objects written before an outage are still there. */
  async up(): Promise<void> {
    this.server = new S3rver({ port: this.port, address: '127.0.0.1', silent: true, directory: this.directory, configureBuckets: [{ name: this.bucket, configs: [] }] });
    await this.server.run();
  }

  async down(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
  }

  store(prefix = ''): S3Store {
    return new S3Store({ bucket: this.bucket, prefix, endpoint: this.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  }

  env(): Record<string, string> {
    return { ...S3_ENV, AWS_ENDPOINT_URL: this.endpoint };
  }
}
