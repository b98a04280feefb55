// tsc compiles TypeScript only; the jobs' SQL files ship beside the compiled jobs.
import { cpSync } from 'node:fs';
cpSync('src/jobs/sql', 'dist/src/jobs/sql', { recursive: true });
