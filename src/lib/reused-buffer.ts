/**
 * A buffer one user fills again and again: the shipper reads its segments into one and cuts their objects
 * into another, a destination's thread reads its slices of the log into one. A fresh buffer each time cost
 * a page fault per 4 KiB of it (the kernel maps new pages for every large allocation): perf under
 * bench:forward's load found a quarter to a third of libuv's threads' time faulting inside read, and the
 * request thread faulting as it copied rows into the objects it ships. What `take` returns is good until
 * the next `take`: the user is done with it by then. It stays as large as the largest size taken.
 */
export class ReusedBuffer {
  private buf: Buffer | undefined;

  take(size: number): Buffer {
    // Grown with room to spare: segments cut at maxSegmentBytes differ by a frame, and one a few bytes
    // larger than the last must not cost a new buffer (and its faults) each time.
    if (this.buf === undefined || this.buf.length < size) this.buf = Buffer.allocUnsafeSlow(Math.ceil((size * 1.125) / 65536) * 65536);
    return this.buf;
  }
}
