/** A real S3-protocol server (s3rver) on loopback, started by the tests themselves; stoppable for outage tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { S3Store } from '../src/storage/s3.js';
import { tempDir } from './helpers.js';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 's3rver-main.js');

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
  private proc: ChildProcess | undefined;
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
    const proc = spawn(process.execPath, ['--openssl-legacy-provider', MAIN, String(this.port), this.directory, this.bucket], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.proc = proc;
    await new Promise<void>((resolve, reject) => {
      proc.stdout!.once('data', () => resolve());
      proc.once('exit', (code) => reject(new Error(`s3rver exited ${code}`)));
    });
  }

  /** Stops the server abruptly (an outage). */
  async down(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (!proc || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  }

  store(prefix = ''): S3Store {
    return new S3Store({ bucket: this.bucket, prefix, endpoint: this.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  }

  /** The environment a collector child process needs to reach it. */
  env(): Record<string, string> {
    return { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1', TRACKLAKE_S3_FORCE_PATH_STYLE: 'true', AWS_ENDPOINT_URL: this.endpoint };
  }
}
