/**
 * A job's scratch folder: made on first use, once however many callers ask at the same moment (staging
 * downloads and output renders run side by side), and removed as a whole.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

export class ScratchDir {
  private dir: Promise<string> | undefined;
  private n = 0;

  constructor(private readonly root: string, private readonly prefix: string) {}

  /** A new file path in the folder, ending in suffix. */
  async file(suffix: string): Promise<string> {
    this.dir ??= fs.mkdtemp(path.join(this.root, this.prefix));
    const name = `${String(this.n++).padStart(6, '0')}${suffix}`;
    return path.join(await this.dir, name);
  }

  /** Removes the folder and everything in it; the next file() makes a new one. */
  async remove(): Promise<void> {
    const dir = this.dir;
    this.dir = undefined;
    if (dir) await fs.rm(await dir, { recursive: true, force: true });
  }
}
