// One build script, one list of bundles. `node esbuild.mjs [--watch] [--production]`.
import * as esbuild from 'esbuild';
import { chmodSync, cpSync, readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));
const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

const node = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: !production,
  minify: production,
  // node-pty carries a native addon: loaded from node_modules at run time, shipped inside the .vsix.
  external: ['node-pty', 'vscode'],
  define: { 'process.env.PROJECTS_CHAT_VERSION': JSON.stringify(pkg.version) },
  logLevel: 'warning',
};

/** Every bundle the project ships. */
const bundles = [
  { ...node, entryPoints: ['extension/extension.ts'], outfile: 'dist/extension.js' },
  { ...node, entryPoints: ['server/main.ts'], outfile: 'dist/server.js' },
  { ...node, entryPoints: ['server/screen/worker.ts'], outfile: 'dist/screenWorker.js' },
  { ...node, entryPoints: ['server/ptyReader.ts'], outfile: 'dist/ptyReader.js' },
  { ...node, entryPoints: ['cli/cihub.ts'], outfile: 'dist/cihub.js', banner: { js: '#!/usr/bin/env node' } },
  {
    entryPoints: ['media/chat/main.ts'],
    outfile: 'dist/webview.js',
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    sourcemap: !production,
    minify: production,
    logLevel: 'warning',
  },
];

/** Codicons for the webview (the font and its stylesheet), served from dist/. */
function copyAssets() {
  cpSync('node_modules/@vscode/codicons/dist/codicon.css', 'dist/codicons/codicon.css');
  cpSync('node_modules/@vscode/codicons/dist/codicon.ttf', 'dist/codicons/codicon.ttf');
}

copyAssets();
if (watch) {
  for (const options of bundles) await (await esbuild.context(options)).watch();
  console.log('watching…');
} else {
  await Promise.all(bundles.map((options) => esbuild.build(options)));
  chmodSync('dist/cihub.js', 0o755);
}
