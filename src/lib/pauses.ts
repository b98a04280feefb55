/**
 * Watches the request thread for pauses: once a second, the event loop's longest delay over that second
 * (perf_hooks.monitorEventLoopDelay) and the garbage collector's pauses in it (a PerformanceObserver of
 * `gc` entries). A delay past the threshold is logged with the collections that fell in it and what the
 * caller says about its state (the duplicate index's size), so an operator sees a pause and its cause in
 * the log, and bench:soak finds where its longest pause happened.
 */
import { PerformanceObserver, constants, monitorEventLoopDelay, type PerformanceEntry } from 'node:perf_hooks';

const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

export interface Pause {
  /** The event loop's longest delay in the second, ms. */
  delayMs: number;
  /** Collections in that second: total pause and the longest one, ms, and its kind. */
  gcMs: number;
  longestGcMs: number;
  longestGcKind: string | undefined;
}

export interface PauseWatch {
  stop(): void;
}

/**
 * Calls `report` for every second whose longest event-loop delay is at least thresholdMs. The histogram's
 * resolution (10 ms) bounds what it sees; shorter delays are not pauses anyone notices.
 */
export function watchPauses(thresholdMs: number, report: (pause: Pause) => void): PauseWatch {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let gcs: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => {
    gcs.push(...list.getEntries());
    if (gcs.length > 10_000) gcs = gcs.slice(-1000); // never grows without bound between ticks
  });
  observer.observe({ entryTypes: ['gc'] });
  const timer = setInterval(() => {
    const delayMs = delay.max / 1e6;
    delay.reset();
    const seen = gcs;
    gcs = [];
    if (delayMs < thresholdMs) return;
    let gcMs = 0;
    let longest: PerformanceEntry | undefined;
    for (const e of seen) {
      gcMs += e.duration;
      if (!longest || e.duration > longest.duration) longest = e;
    }
    const kind = longest ? GC_KINDS[((longest as { detail?: { kind?: number } }).detail)?.kind ?? -1] : undefined;
    report({ delayMs: Math.round(delayMs), gcMs: Math.round(gcMs), longestGcMs: Math.round(longest?.duration ?? 0), longestGcKind: kind });
  }, 1000);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      observer.disconnect();
      delay.disable();
    },
  };
}
