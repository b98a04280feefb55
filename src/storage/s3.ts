/**
 * ObjectStore on S3 (or any S3-protocol server), with the official AWS SDK v3. Credentials and region come
 * from the standard AWS environment; large bodies go up as multipart uploads; listing pages through
 * continuation tokens. A PUT is atomic on S3: readers see the old object or the new one.
 */
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, S3Client, NoSuchKey, type S3ClientConfig } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createReadStream } from 'node:fs';
import type https from 'node:https';
import type { Readable } from 'node:stream';
import { proxyAgentFor } from '../lib/egress.js';
import { assertKey, type ObjectInfo, type ObjectStore } from './store.js';

export interface S3StoreOptions {
  bucket: string;
  prefix: string;
  region?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  credentials?: S3ClientConfig['credentials'];
}

const MULTIPART_FROM = 16 * 1024 * 1024;

export class S3Store implements ObjectStore {
  readonly location: string;
  private readonly client: S3Client;
  private readonly base: string;

  constructor(private readonly o: S3StoreOptions) {
    this.location = `s3://${o.bucket}${o.prefix ? `/${o.prefix}` : ''}`;
    this.base = o.prefix ? `${o.prefix}/` : '';
    const region = o.region ?? 'us-east-1';
    // Through the proxy HTTPS_PROXY / NO_PROXY name for the endpoint (lib/egress.ts), else the SDK's own
    // agents. Without an endpoint (AWS_ENDPOINT_URL, read into the configuration), AWS's own, *.amazonaws.com.
    const endpoint = o.endpoint ?? `https://s3.${region}.amazonaws.com`;
    const agent = proxyAgentFor(endpoint, { keepAlive: true, maxSockets: 50 });
    const agents = agent === undefined ? {} : new URL(endpoint).protocol === 'https:' ? { httpsAgent: agent as https.Agent } : { httpAgent: agent };
    this.client = new S3Client({
      region,
      endpoint: o.endpoint,
      forcePathStyle: o.forcePathStyle,
      credentials: o.credentials,
      maxAttempts: 3,
      // Checksums only where S3 requires them: S3-compatible servers (MinIO, Ceph, s3rver) often do not
      // understand the SDK's newer default of aws-chunked uploads with trailing checksums.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { requestTimeout: 30_000, connectionTimeout: 5_000, ...agents },
    });
  }

  private full(key: string): string {
    assertKey(key);
    return this.base + key;
  }

  async put(key: string, body: Buffer | string): Promise<void> {
    await this.upload(key, body);
  }

  async putFile(key: string, file: string): Promise<void> {
    await this.upload(key, createReadStream(file));
  }

  private async upload(key: string, body: Buffer | string | Readable): Promise<void> {
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.o.bucket, Key: this.full(key), Body: body },
      partSize: MULTIPART_FROM,
      queueSize: 2,
      leavePartsOnError: false,
    });
    await upload.done();
  }

  async get(key: string): Promise<Buffer | undefined> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.o.bucket, Key: this.full(key) }));
      return Buffer.from(await res.Body!.transformToByteArray());
    } catch (e) {
      if (e instanceof NoSuchKey || (e as { name?: string }).name === 'NoSuchKey' || (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
      throw e;
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    do {
      const res = await this.client.send(new ListObjectsV2Command({ Bucket: this.o.bucket, Prefix: this.base + prefix, ContinuationToken: token }));
      for (const o of res.Contents ?? []) {
        out.push({ key: o.Key!.slice(this.base.length), size: o.Size ?? 0, etag: (o.ETag ?? '').replaceAll('"', '') });
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.o.bucket, Key: this.full(key) }));
  }
}
