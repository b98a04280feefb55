/** Chooses the ObjectStore a --storage value names: s3://bucket/prefix, or else a local folder. */
import { ConfigError } from '../lib/errors.js';
import { checkFolder, LocalStore } from './local.js';
import { withErrorContext, type ObjectStore } from './store.js';

export interface S3Env {
  region?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
}

export async function openStore(spec: string, s3: S3Env = {}): Promise<ObjectStore> {
  if (spec.startsWith('s3://')) {
    const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(spec);
    if (!m) throw new ConfigError('storage', `"${spec}" is not s3://bucket or s3://bucket/prefix`);
    const { S3Store } = await import('./s3.js');
    return withErrorContext(new S3Store({ bucket: m[1]!, prefix: (m[2] ?? '').replace(/\/+$/, ''), ...s3 }));
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) throw new ConfigError('storage', `"${spec}": only s3:// URLs and local folders are supported`);
  await checkFolder('storage', spec);
  return withErrorContext(new LocalStore(spec));
}
