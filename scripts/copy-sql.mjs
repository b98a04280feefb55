// tsc compiles TypeScript only; the SQL files of the jobs, the read side and the plan commands ship beside the compiled code.
import { cpSync } from 'node:fs';
cpSync('src/jobs/sql', 'dist/src/jobs/sql', { recursive: true });
cpSync('src/query/sql', 'dist/src/query/sql', { recursive: true });
cpSync('src/plan/sql', 'dist/src/plan/sql', { recursive: true });
