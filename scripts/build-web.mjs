// The dashboard: src/web bundled by esbuild into dist/web (index.html and content-hashed assets), served by
// the read side as static files. Nothing is fetched from a CDN at run time; the build fails when the page
// and its assets pass the 200 KB (gzip) budget.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const BUDGET = 200 * 1024;
const out = 'dist/web';
rmSync(out, { recursive: true, force: true });
mkdirSync(`${out}/assets`, { recursive: true });

const result = await build({
  entryPoints: ['src/web/app.ts'],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  write: false,
  legalComments: 'none',
  logLevel: 'warning',
});
const hashed = (body, ext) => `${createHash('sha256').update(body).digest('hex').slice(0, 12)}.${ext}`;
const js = result.outputFiles[0].contents;
const css = readFileSync('src/web/style.css');
const names = { js: `app-${hashed(js, 'js')}`, css: `style-${hashed(css, 'css')}` };
writeFileSync(`${out}/assets/${names.js}`, js);
writeFileSync(`${out}/assets/${names.css}`, css);
const page = readFileSync('src/web/index.html', 'utf8').replace('{{js}}', names.js).replace('{{css}}', names.css);
writeFileSync(`${out}/index.html`, page);
const gzip = [js, css, Buffer.from(page)].reduce((n, b) => n + gzipSync(b, { level: 9 }).length, 0);
if (gzip > BUDGET) {
  console.error(`dashboard: ${(gzip / 1024).toFixed(1)} KB gzip is over the ${BUDGET / 1024} KB budget`);
  process.exit(1);
}
if (process.env.TRACKLAKE_BUILD_VERBOSE) console.log(`dashboard: ${(gzip / 1024).toFixed(1)} KB gzip`);
