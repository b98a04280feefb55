import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Collector } from '../src/ingest/collector.js';
import { DedupIndex } from '../src/ingest/dedup.js';
import { RequestPreparer, type PreparedRequest } from '../src/ingest/prepare.js';
import { decodeRecords } from '../src/ingest/records.js';
import { framePayload, type WriteAheadLog } from '../src/ingest/wal.js';
import { ManualClock } from '../src/lib/clock.js';
import { Metrics } from '../src/lib/metrics.js';
import { T0 } from './helpers.js';

/**
 * A log whose appends settle when the test says: the collector's duplicate handling depends on the order in
 * which writes become durable or fail, which a real disk does not let a test choose.
 */
class HeldLog {
  readonly frames: Buffer[] = [];
  readonly held: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  bufferedBytes = 0;
  append(frame: Buffer): Promise<void> {
    this.frames.push(frame);
    return new Promise((resolve, reject) => this.held.push({ resolve, reject }));
  }
}

const preparer = new RequestPreparer({ sources: { dev: 'demo' }, events: {} });
function prepared(ids: string[]): PreparedRequest {
  const body = Buffer.from(JSON.stringify({ batch: ids.map((messageId) => ({ type: 'track', event: 'View', anonymousId: 'd1', messageId })) }));
  const r = preparer.prepare({ body, basicKey: 'dev', pathType: 'batch', clientIp: '127.0.0.1', receivedAt: T0 });
  assert.ok(r.ok);
  return r.value;
}
const recordsOf = (frame: Buffer) => decodeRecords(framePayload(frame)).length;
/** Whether a promise has settled by the time queued callbacks have run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(() => (done = true), () => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
}

function collector() {
  const wal = new HeldLog();
  const c = new Collector({ wal: wal as unknown as WriteAheadLog, dedup: new DedupIndex(86_400_000, new ManualClock(T0)), metrics: new Metrics(), maxBufferBytes: 1 << 30 });
  return { wal, c };
}

describe('the collector', () => {
  it('logs a message repeated within one request once', async () => {
    const { wal, c } = collector();
    const done = c.accept(prepared(['a', 'b', 'a']), T0);
    wal.held[0]!.resolve();
    assert.deepEqual(await done, { accepted: 3, duplicates: 1, rejected: [] });
    assert.equal(recordsOf(wal.frames[0]!), 2);
  });

  it('acknowledges a duplicate of a message in flight only once the original is durable', async () => {
    const { wal, c } = collector();
    const original = c.accept(prepared(['a', 'b']), T0);
    const duplicate = c.accept(prepared(['b', 'c']), T0);
    assert.equal(wal.frames.length, 2);
    assert.equal(recordsOf(wal.frames[1]!), 1, 'the duplicate request logs only its new message');
    wal.held[1]!.resolve();
    assert.equal(await settled(duplicate), false, 'its own message is durable, but the original of "b" is not');
    wal.held[0]!.resolve();
    assert.deepEqual(await original, { accepted: 2, duplicates: 0, rejected: [] });
    assert.deepEqual(await duplicate, { accepted: 2, duplicates: 1, rejected: [] });
  });

  it('fails a duplicate whose original failed, and accepts the retry', async () => {
    const { wal, c } = collector();
    const original = c.accept(prepared(['a']), T0);
    const duplicate = c.accept(prepared(['a']), T0);
    assert.equal(wal.frames.length, 1, 'nothing new to log for the duplicate');
    wal.held[0]!.reject(new Error('disk full'));
    await assert.rejects(original, { code: 'log_unavailable' });
    await assert.rejects(duplicate, { code: 'log_unavailable' });
    const retry = c.accept(prepared(['a']), T0);
    assert.equal(wal.frames.length, 2, 'the failed write released the id');
    wal.held[1]!.resolve();
    assert.deepEqual(await retry, { accepted: 1, duplicates: 0, rejected: [] });
    const again = c.accept(prepared(['a']), T0);
    assert.deepEqual(await again, { accepted: 1, duplicates: 1, rejected: [] }, 'a duplicate of a durable message is acknowledged at once');
    assert.equal(wal.frames.length, 2);
  });

  it('gives a lent frame back once, only when its write has settled or it is not written at all', async () => {
    const { wal, c } = collector();
    const released: string[] = [];
    const lent = (name: string, ids: string[]) => ({ ...prepared(ids), release: () => void released.push(name) });
    const written = c.accept(lent('written', ['a']), T0);
    const failed = c.accept(lent('failed', ['b']), T0);
    const duplicate = c.accept(lent('duplicate', ['a']), T0);
    assert.equal(await settled(written), false);
    assert.deepEqual(released, [], 'nothing is back while its write is in flight');
    wal.held[0]!.resolve();
    wal.held[1]!.reject(new Error('disk full'));
    await written;
    await assert.rejects(failed);
    await duplicate;
    assert.deepEqual(released.sort(), ['duplicate', 'failed', 'written']);
    c.close();
    await assert.rejects(c.accept(lent('refused', ['c']), T0), { code: 'shutting_down' });
    assert.equal(released.filter((r) => r === 'refused').length, 1, 'a refused request gives its frame back too');
  });
});
