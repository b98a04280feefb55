/** What the ingest benches share: starting a server process, the request payloads, a process's CPU and memory. */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { simulateTraffic } from '../src/segment/simulator.js';

export interface Server {
  url: string;
  pid: number | undefined;
  stop: () => Promise<void>;
}

/** Starts a server process and resolves once it logs the address it listens on; onLog sees every log line. */
export function start(args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env, onLog?: (line: string) => void): Promise<Server> {
  const proc = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let partial = '';
    let found = false;
    proc.stdout!.on('data', (d: Buffer) => {
      if (onLog) {
        const lines = (partial + d.toString()).split('\n');
        partial = lines.pop()!;
        for (const line of lines) onLog(line);
      }
      if (found) return;
      out += d.toString();
      const m = /"address":"(http:\/\/[^"]+)"/.exec(out);
      if (m) (found = true), resolve({ url: m[1]!, pid: proc.pid, stop: () => new Promise<void>((r) => { proc.on('exit', () => r()); proc.kill('SIGTERM'); }) });
    });
    proc.on('exit', (code) => reject(new Error(`exited ${code}`)));
  });
}

/** Batch bodies of realistic events; "@@" in each messageId is replaced per request so nothing is a duplicate. */
export function payloadTemplates(perBatch: number): string[] {
  const msgs = [...simulateTraffic({ events: 100 * perBatch, days: 1, endMs: Date.parse('2026-03-15T00:00:00Z'), seed: 7 })];
  const out: string[] = [];
  for (let i = 0; i < msgs.length; i += perBatch) {
    const batch = msgs.slice(i, i + perBatch).map((m, j) => ({ ...m, messageId: `@@-${j}` }));
    out.push(JSON.stringify({ batch }));
  }
  return out;
}

/**
 * CPU seconds a process has used, all its threads, user and system (Linux /proc; undefined elsewhere); with
 * `mainThread`, its main thread's alone (a Node process's request thread: its thread id is the pid).
 */
export function cpuSeconds(pid: number | undefined, mainThread = false): number | undefined {
  try {
    const fields = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100 Hz)
  } catch {
    return undefined;
  }
}

/** CPU seconds of every running process whose command name is `comm` (the servers a bench starts, such as postgres's). */
export function cpuSecondsOfCommand(comm: string): number {
  let total = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === comm) total += cpuSeconds(Number(pid)) ?? 0;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/** A process's resident memory in bytes, or its peak so far with `peak` (Linux /proc; undefined elsewhere). */
export function residentBytes(pid: number | undefined, peak = false): number | undefined {
  try {
    const m = new RegExp(`${peak ? 'VmHWM' : 'VmRSS'}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
