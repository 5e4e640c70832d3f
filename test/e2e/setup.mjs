#!/usr/bin/env node
// Installs what the real-VS-Code end-to-end suite needs, once, idempotently:
//   - Debian packages: libkrb5-dev (code-server's kerberos module), ripgrep, chromium, and the
//     toolchain native modules build with (g++, make, python3). apt-get runs only when one is missing.
//   - code-server (a real VS Code served over HTTP) and playwright-core, pinned, into
//     test/e2e/.code-server/ — a folder of their own, never the extension's package.json.
// A second run checks the installed versions and exits in well under a second.
//
//   node test/e2e/setup.mjs            # install if needed
//   node test/e2e/setup.mjs --force    # reinstall the npm part
//
// Exit status 0 when everything is in place; otherwise 1 with one line saying what failed.
// The pinned versions and paths are exported for harness.mjs.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const E2E_DIR = path.dirname(fileURLToPath(import.meta.url));
export const CACHE_DIR = process.env.E2E_CODE_SERVER_DIR || path.join(E2E_DIR, '.code-server');
export const CODE_SERVER_VERSION = '4.100.3'; // VS Code 1.100.3, runs on Node 20
export const PLAYWRIGHT_VERSION = '1.65.1';
export const CODE_SERVER_BIN = path.join(CACHE_DIR, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
export const CHROMIUM = process.env.E2E_CHROMIUM || '/usr/bin/chromium';
const MARKER = path.join(CACHE_DIR, 'installed.json');
// @vscode/ripgrep (a dependency of VS Code) downloads rg from GitHub in its postinstall unless this
// file is in its cache; it only needs a tarball holding a single `rg` binary.
const RG_VERSION = 'v13.0.0-10';
const RG_CACHE = path.join(os.tmpdir(), 'vscode-ripgrep-cache-1.15.11');
const RG_TARBALL = path.join(RG_CACHE, `ripgrep-${RG_VERSION}-x86_64-unknown-linux-musl.tar.gz`);

const log = (/** @type {string} */ msg) => console.log(`[e2e setup] ${msg}`);
class SetupError extends Error {}
const fail = (/** @type {string} */ msg) => { throw new SetupError(msg); };

/** @param {string} cmd */
const which = (cmd) => {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
};
/** @param {string} pkg */
const dpkgInstalled = (pkg) => {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
};

/** Is everything installed, at the pinned versions? */
export function isInstalled() {
  try {
    const m = JSON.parse(fs.readFileSync(MARKER, 'utf8'));
    const cs = JSON.parse(fs.readFileSync(path.join(CACHE_DIR, 'node_modules/code-server/package.json'), 'utf8'));
    const pw = JSON.parse(fs.readFileSync(path.join(CACHE_DIR, 'node_modules/playwright-core/package.json'), 'utf8'));
    return m.codeServer === CODE_SERVER_VERSION && m.playwright === PLAYWRIGHT_VERSION
      && cs.version === CODE_SERVER_VERSION && pw.version === PLAYWRIGHT_VERSION
      && fs.existsSync(CODE_SERVER_BIN)
      // the part code-server's postinstall builds: VS Code's own node_modules
      && fs.existsSync(path.join(CACHE_DIR, 'node_modules/code-server/lib/vscode/node_modules'));
  } catch { return false; }
}

function aptPackages() {
  /** @type {string[]} */
  const missing = [];
  if (!dpkgInstalled('libkrb5-dev')) missing.push('libkrb5-dev');
  if (!which('rg')) missing.push('ripgrep');
  if (!fs.existsSync(CHROMIUM)) missing.push('chromium');
  if (!which('g++')) missing.push('g++');
  if (!which('make')) missing.push('make');
  if (!which('python3')) missing.push('python3');
  if (!missing.length) { log('Debian packages present (libkrb5-dev, ripgrep, chromium, g++, make, python3)'); return; }
  /** @type {string[]} */
  let sudo = [];
  if (process.getuid && process.getuid() !== 0) {
    if (!which('sudo')) fail(`missing Debian packages ${missing.join(' ')} and not root: run apt-get install -y ${missing.join(' ')}`);
    sudo = ['sudo'];
  }
  const run = (/** @type {string[]} */ args) => {
    log(`$ ${[...sudo, ...args].join(' ')}`);
    const r = spawnSync(sudo[0] || args[0], sudo.length ? args : args.slice(1), {
      stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    if (r.status !== 0) fail(`${args.join(' ')} failed (exit ${r.status})`);
  };
  run(['apt-get', 'update', '-qq']);
  run(['apt-get', 'install', '-y', '-qq', ...missing]);
  if (!fs.existsSync(CHROMIUM)) fail(`chromium is not at ${CHROMIUM} after apt-get install (set E2E_CHROMIUM)`);
}

function ripgrepCache() {
  if (fs.existsSync(RG_TARBALL)) { log(`ripgrep cache present: ${RG_TARBALL}`); return; }
  const rg = which('rg') || fail('rg not found on PATH');
  fs.mkdirSync(RG_CACHE, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-rg-'));
  try {
    fs.copyFileSync(rg, path.join(tmp, 'rg'));
    fs.chmodSync(path.join(tmp, 'rg'), 0o755);
    const part = `${RG_TARBALL}.${process.pid}.part`;
    const r = spawnSync('tar', ['czf', part, '-C', tmp, 'rg'], { stdio: 'inherit' });
    if (r.status !== 0) fail('tar of the ripgrep cache failed');
    fs.renameSync(part, RG_TARBALL);
  } finally { fs.rmSync(tmp, { recursive: true, force: true }); }
  log(`ripgrep cache created from ${rg}: ${RG_TARBALL}`);
}

/** Node headers for node-gyp: use the local ones when they match this node, so no download is needed. */
function nodedirEnv() {
  if (process.env.npm_config_nodedir) return {};
  const prefix = path.dirname(path.dirname(process.execPath));
  try {
    const h = fs.readFileSync(path.join(prefix, 'include/node/node_version.h'), 'utf8');
    const v = ['MAJOR', 'MINOR', 'PATCH'].map((k) => (h.match(new RegExp(`#define NODE_${k}_VERSION (\\d+)`)) || [])[1]).join('.');
    if (`v${v}` === process.version) return { npm_config_nodedir: prefix };
  } catch { /* no local headers: node-gyp downloads them */ }
  return {};
}

async function npmInstall() {
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  fs.rmSync(MARKER, { force: true });
  fs.writeFileSync(path.join(CACHE_DIR, 'package.json'), JSON.stringify({
    name: 'projects-chat-e2e-tools', private: true, description: 'code-server + playwright-core for test/e2e (generated by setup.mjs)',
    dependencies: { 'code-server': CODE_SERVER_VERSION, 'playwright-core': PLAYWRIGHT_VERSION },
    // Both need their install scripts: code-server's postinstall installs and builds VS Code's own
    // node_modules (lib/vscode), argon2 builds its native module. (npm 11 warns about scripts not listed.)
    allowScripts: { 'code-server': true, argon2: true },
  }, null, 2) + '\n');
  const logFile = path.join(CACHE_DIR, 'install.log');
  const out = fs.openSync(logFile, 'w');
  log(`npm install code-server@${CODE_SERVER_VERSION} playwright-core@${PLAYWRIGHT_VERSION} into ${CACHE_DIR} (a few minutes; log: ${logFile})`);
  const t0 = Date.now();
  const child = spawn('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', '--foreground-scripts'], {
    cwd: CACHE_DIR, stdio: ['ignore', out, out],
    env: { ...process.env, ...nodedirEnv(), npm_config_yes: 'true', npm_config_unsafe_perm: 'true', npm_config_update_notifier: 'false' },
  });
  const tick = setInterval(() => {
    const tail = fs.readFileSync(logFile, 'utf8').trim().split('\n').pop() || '';
    log(`… ${Math.round((Date.now() - t0) / 1000)} s: ${tail.slice(0, 120)}`);
  }, 30_000);
  const code = await new Promise((resolve) => child.on('close', resolve));
  clearInterval(tick);
  fs.closeSync(out);
  if (code !== 0) {
    const tail = fs.readFileSync(logFile, 'utf8').trim().split('\n').slice(-15).join('\n');
    fail(`npm install failed (exit ${code}) after ${Math.round((Date.now() - t0) / 1000)} s; last lines of ${logFile}:\n${tail}`);
  }
  fs.writeFileSync(MARKER, JSON.stringify({ codeServer: CODE_SERVER_VERSION, playwright: PLAYWRIGHT_VERSION, at: new Date().toISOString() }) + '\n');
  if (!isInstalled()) fail(`npm install finished but ${CODE_SERVER_BIN} or VS Code's node_modules is missing; see ${logFile}`);
  log(`installed in ${Math.round((Date.now() - t0) / 1000)} s`);
}

/** Install everything that is missing. Throws SetupError with a one-line reason on failure. */
export async function setup({ force = false } = {}) {
  const t0 = Date.now();
  if (!force && isInstalled() && fs.existsSync(CHROMIUM)) {
    log(`code-server ${CODE_SERVER_VERSION} and playwright-core ${PLAYWRIGHT_VERSION} already installed in ${CACHE_DIR}`);
    return;
  }
  if (process.platform !== 'linux') fail('the e2e suite runs on Linux (Debian/Ubuntu) only');
  if (!process.version.startsWith('v20.')) fail(`code-server ${CODE_SERVER_VERSION} needs Node 20; this is ${process.version}`);
  aptPackages();
  ripgrepCache();
  await npmInstall();
  log(`ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  setup({ force: process.argv.includes('--force') }).catch((e) => {
    console.error(`[e2e setup] FAILED: ${e instanceof SetupError ? e.message : e?.stack || e}`);
    process.exit(1);
  });
}
