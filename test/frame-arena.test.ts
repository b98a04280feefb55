import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { arenaMemory, frameDone, FrameArena } from '../src/ingest/frame-arena.js';

describe('frame arena', () => {
  it('never hands out room of a frame in flight, whatever order frames are written in', () => {
    const memory = arenaMemory(64 * 1024);
    const arena = new FrameArena(memory);
    const done = new Int32Array(memory.done);
    // A seeded generator: the same sequence every run.
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const inFlight: Array<{ id: number; frame: Buffer; fill: number }> = [];
    let lent = 0;
    let own = 0;
    for (let n = 0; n < 20_000; n++) {
      const frame = arena.alloc(1 + Math.floor(random() * 6000));
      const id = arena.take();
      const fill = n & 0xff;
      frame.fill(fill);
      if (id === undefined) {
        own++;
        assert.ok(!(frame.buffer instanceof SharedArrayBuffer));
      } else {
        lent++;
        assert.ok(frame.buffer instanceof SharedArrayBuffer);
        inFlight.push({ id, frame, fill });
      }
      // The request thread finishes frames out of order, a few at a time.
      while (inFlight.length > 0 && random() < 0.45) {
        const [f] = inFlight.splice(Math.floor(random() * inFlight.length), 1);
        assert.ok(f!.frame.every((b) => b === f!.fill), 'a frame in flight was overwritten');
        frameDone(done, f!.id);
      }
    }
    for (const f of inFlight) assert.ok(f.frame.every((b) => b === f.fill), 'a frame in flight was overwritten');
    assert.ok(lent > 10_000, `most frames come from the ring (${lent} of 20 000)`);
    assert.ok(own > 0, 'a full ring makes buffers of their own');
  });

  it('makes buffers of its own while the oldest frame is not done, and reuses the ring once it is', () => {
    const memory = arenaMemory(10_000);
    const arena = new FrameArena(memory);
    const done = new Int32Array(memory.done);
    arena.alloc(4000);
    const first = arena.take()!;
    arena.alloc(4000);
    const second = arena.take()!;
    frameDone(done, second); // the newer one is done, the older not: nothing can be reused yet
    arena.alloc(4000);
    assert.equal(arena.take(), undefined);
    frameDone(done, first);
    const again = arena.alloc(4000);
    assert.notEqual(arena.take(), undefined);
    assert.equal(again.byteOffset, 0);
    // A frame larger than the ring is never lent.
    arena.alloc(20_000);
    assert.equal(arena.take(), undefined);
  });
});
