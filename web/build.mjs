// Builds the workspace into dist/: one script and one stylesheet under
// assets/ with content hashes in their names, and an index.html naming
// them. No inline code, so the daemon's Content-Security-Policy can forbid
// it. (esbuild alone: one small native dependency, nothing else.)
import { build } from 'esbuild';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';

// SB_WEB_OUT builds elsewhere (parallel work trees); dist by default.
const out = process.env.SB_WEB_OUT || 'dist';
rmSync(out, { recursive: true, force: true });
mkdirSync(`${out}/assets`, { recursive: true });
const result = await build({
  entryPoints: ['src/main.tsx'],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: `${out}/assets`,
  entryNames: '[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
});
const outputs = Object.keys(result.metafile.outputs).map((p) => '/assets/' + basename(p));
const js = outputs.find((p) => p.endsWith('.js'));
const css = outputs.find((p) => p.endsWith('.css'));
writeFileSync(`${out}/index.html`, `<!doctype html>
<html lang="ru">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Switchboard</title>
    ${css ? `<link rel="stylesheet" href="${css}" />` : ''}
  </head>
  <body>
    <div id="app"></div>
    <script type="module" src="${js}"></script>
  </body>
</html>
`);
console.log(`built ${outputs.join(', ')}`);
