// Drive a real VS Code (code-server 4.100.3 = VS Code 1.100.3) from node:test with playwright-core and
// Debian's chromium. Install the tools first: `node test/e2e/setup.mjs` (idempotent, cached).
//
//   const server = await startCodeServer({ vsix, folder, theme: 'dark', env: { CIHUB_HOME } });
//   const browser = await launchBrowser();
//   const page = await openWorkbench(browser, server.url());
//   await runCommand(page, 'Some Extension: Some Command');   // palette title
//   await openViewContainer(page, 'Projects Chat');           // activity-bar item
//   const frame = await webviewFrame(page, 'text shown in the webview');
//   …
//   await browser.close(); await server.stop();
//
// Everything waits on something observable, with a deadline; see README.md for the few exceptions.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CACHE_DIR, CHROMIUM, CODE_SERVER_BIN, E2E_DIR, isInstalled } from './setup.mjs';

export { E2E_DIR, CACHE_DIR };
export const ARTIFACTS_DIR = process.env.E2E_ARTIFACTS_DIR || path.join(E2E_DIR, 'artifacts');
export const THEMES = { dark: 'Default Dark Modern', light: 'Default Light Modern', hc: 'Default High Contrast' };

const requireTools = createRequire(path.join(CACHE_DIR, 'package.json'));
/** @returns {typeof import('playwright-core')} */
function playwright() {
  if (!isInstalled()) throw new Error(`code-server/playwright-core are not installed in ${CACHE_DIR}: run \`node test/e2e/setup.mjs\``);
  return requireTools('playwright-core');
}

const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `fn` until it returns something truthy (or resolves to it); returns that value.
 * Exceptions thrown by `fn` count as "not yet" and the last one is reported on timeout.
 * @template T
 * @param {() => T | Promise<T>} fn
 * @param {number} [ms] deadline in milliseconds
 * @param {string} [what] what we are waiting for, for the error message
 * @param {number} [interval] polling interval in milliseconds
 * @returns {Promise<NonNullable<Awaited<T>>>}
 */
export async function waitFor(fn, ms = 10_000, what = 'condition', interval = 100) {
  const deadline = Date.now() + ms;
  /** @type {unknown} */
  let lastErr;
  for (;;) {
    try {
      const v = await fn();
      if (v) return /** @type {any} */ (v);
    } catch (e) { lastErr = e; }
    if (Date.now() >= deadline) {
      const why = lastErr ? ` (last error: ${lastErr instanceof Error ? lastErr.message.split('\n')[0] : lastErr})` : '';
      throw new Error(`timed out after ${ms} ms waiting for ${what}${why}`);
    }
    await sleep(interval);
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = /** @type {net.AddressInfo} */ (s.address());
      s.close(() => resolve(addr.port));
    });
  });
}

/** @param {number} pid @returns {number[]} every live descendant of pid (from /proc) */
function descendants(pid) {
  /** @type {Map<number, number[]>} */
  const children = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      /** @type {number[]} */ (children.get(ppid)).push(Number(d));
    } catch { /* gone */ }
  }
  const out = [];
  const todo = [pid];
  while (todo.length) {
    for (const c of children.get(/** @type {number} */ (todo.pop())) || []) { out.push(c); todo.push(c); }
  }
  return out;
}
/** Paths of Unix sockets some live process has bound (from /proc/net/unix). */
function boundSockets() {
  try {
    return new Set(fs.readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)
      .map((l) => l.trim().split(/\s+/)[7]).filter(Boolean));
  } catch { return new Set(); }
}
/** @param {string} dir */
const ipcSockets = (dir) => { try { return fs.readdirSync(dir).filter((f) => /^vscode-ipc-.*\.sock$/.test(f)); } catch { return []; } };

const alive = (/** @type {number} */ pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };
const groupAlive = (/** @type {number} */ pgid) => { try { process.kill(-pgid, 0); return true; } catch { return false; } };

/** @type {Set<() => void>} synchronous last-resort killers, for a test process that dies without stop() */
const onExitKillers = new Set();
const killAll = () => { for (const k of onExitKillers) k(); };
process.on('exit', killAll);
// Ctrl-C / the test runner's SIGTERM: kill the servers, then die of the signal as we would have.
for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) {
  process.once(sig, () => { killAll(); process.kill(process.pid, sig); });
}

/**
 * @param {string} file @param {number} [lines]
 */
function tail(file, lines = 20) {
  try { return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n'); } catch { return ''; }
}

/**
 * @typedef {object} CodeServer
 * @property {(folderOrWorkspace?: string) => string} url  workbench URL for a folder or a .code-workspace file (default: the `folder` given)
 * @property {number} port
 * @property {number} pid               code-server's pid (also its process group id)
 * @property {string} profileDir        temp dir holding extensions/, user-data/, code-server.log
 * @property {string} extensionsDir
 * @property {string} userDataDir
 * @property {string} settingsFile      user settings.json
 * @property {string} logFile           code-server's stdout+stderr
 * @property {(settings: Record<string, unknown>) => void} updateSettings  merge into settings.json; code-server
 *   does not watch that file, so this applies at the next window load (reloadWindow) — use the UI for live changes
 * @property {(opts?: { keepProfile?: boolean, descendants?: boolean }) => Promise<void>} stop  SIGTERM, then
 *   SIGKILL after 5 s, to code-server's process group and (unless descendants: false) to every process
 *   descended from it — terminal shells run in their own sessions, and a hub the extension spawned detached is
 *   still a descendant until its extension host exits; then removes the profile dir (unless keepProfile)
 */

/**
 * Installs the given .vsix file(s) into a private extensions dir, writes user settings and serves VS Code on
 * 127.0.0.1. Resolves once code-server answers HTTP.
 * @param {object} opts
 * @param {string | string[]} [opts.vsix]     extension package(s) to install
 * @param {string} [opts.folder]              folder (or .code-workspace) url() opens by default
 * @param {'dark'|'light'|'hc'} [opts.theme]  color theme (default dark)
 * @param {Record<string, string | undefined>} [opts.env]  extra environment for code-server and so for the
 *   extension host, terminals and anything the extension spawns (e.g. CIHUB_HOME); undefined deletes a variable
 * @param {Record<string, unknown>} [opts.settings]  extra user settings
 * @param {number} [opts.port]                default: a free port
 * @param {number} [opts.timeoutMs]           deadline for install + start (default 90 s)
 * @param {boolean} [opts.isolateXdg]         point XDG_DATA_HOME/XDG_CONFIG_HOME into the profile so code-server
 *   writes nothing under ~ (default true; explicit values in opts.env win)
 * @returns {Promise<CodeServer>}
 */
export async function startCodeServer(opts = {}) {
  if (!isInstalled()) throw new Error(`code-server is not installed in ${CACHE_DIR}: run \`node test/e2e/setup.mjs\``);
  const { folder, theme = 'dark', settings = {}, timeoutMs = 90_000, isolateXdg = true } = opts;
  const deadline = Date.now() + timeoutMs;
  const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-vscode-'));
  const extensionsDir = path.join(profileDir, 'extensions');
  const userDataDir = path.join(profileDir, 'user-data');
  const settingsFile = path.join(userDataDir, 'User', 'settings.json');
  const logFile = path.join(profileDir, 'code-server.log');
  const configFile = path.join(profileDir, 'config.yaml');
  fs.mkdirSync(extensionsDir, { recursive: true });
  fs.mkdirSync(path.dirname(settingsFile), { recursive: true });
  // An explicit config file: otherwise code-server writes ~/.config/code-server/config.yaml with a password.
  fs.writeFileSync(configFile, 'auth: none\ncert: false\n');

  /** @type {NodeJS.ProcessEnv} */
  const env = { ...process.env };
  // Variables of an enclosing VS Code (when the tests run in its terminal) would make the server talk to it.
  for (const k of Object.keys(env)) if (/^(VSCODE_|ELECTRON_RUN_AS_NODE$|CODE_SERVER_)/.test(k)) delete env[k];
  if (isolateXdg) {
    env.XDG_DATA_HOME = path.join(profileDir, 'xdg-data'); // code-server's own logs (coder-logs/)
    env.XDG_CONFIG_HOME = path.join(profileDir, 'xdg-config');
  }
  for (const [k, v] of Object.entries(opts.env || {})) { if (v === undefined) delete env[k]; else env[k] = v; }

  const baseArgs = [CODE_SERVER_BIN, '--config', configFile, '--extensions-dir', extensionsDir, '--user-data-dir', userDataDir];
  for (const vsix of [opts.vsix || []].flat()) {
    const r = spawnSync(process.execPath, [...baseArgs, '--force', '--install-extension', path.resolve(vsix)], {
      env, encoding: 'utf8', timeout: Math.max(1000, deadline - Date.now()),
    });
    if (r.status !== 0 || /Failed Installing/.test(`${r.stdout}${r.stderr}`)) {
      fs.rmSync(profileDir, { recursive: true, force: true });
      throw new Error(`installing ${vsix} into code-server failed (exit ${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
    }
  }

  /** @type {Record<string, unknown>} */
  let current = {
    'workbench.colorTheme': THEMES[theme],
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'telemetry.telemetryLevel': 'off',
    'security.workspace.trust.enabled': false,
    'update.mode': 'none',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'extensions.ignoreRecommendations': true,
    'git.enabled': false,
    'chat.commandCenter.enabled': false,
    'window.commandCenter': false,
    'terminal.integrated.gpuAcceleration': 'off', // DOM renderer: terminal text is in .xterm-rows
    'terminal.integrated.enablePersistentSessions': false,
    'terminal.integrated.showExitAlert': false,
    'terminal.integrated.defaultProfile.linux': 'bash',
    ...settings,
  };
  const writeSettings = () => {
    const tmp = `${settingsFile}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(current, null, 2) + '\n');
    fs.renameSync(tmp, settingsFile);
  };
  writeSettings();

  // Each extension host leaves a vscode-ipc-<uuid>.sock (its VSCODE_IPC_HOOK_CLI) in its tmpdir when killed.
  const ipcDir = env.TMPDIR || os.tmpdir();
  const ipcBefore = new Set(ipcSockets(ipcDir));
  const port = opts.port || await freePort();
  const out = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, [...baseArgs,
    '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`,
    '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
    '--disable-getting-started-override', '--ignore-last-opened',
  ], { env, stdio: ['ignore', out, out], detached: true /* own process group, for stop() */ });
  fs.closeSync(out);
  const pid = /** @type {number} */ (child.pid);
  let exited = false;
  child.on('exit', () => { exited = true; });
  const killer = () => {
    const tree = descendants(pid);
    try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
    for (const p of tree) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
    if (!process.env.E2E_KEEP_PROFILE) { try { fs.rmSync(profileDir, { recursive: true, force: true }); } catch { /* best effort */ } }
  };
  onExitKillers.add(killer);

  let stopped = false;
  /** @param {{ keepProfile?: boolean, descendants?: boolean }} [o] */
  const stop = async (o = {}) => {
    if (stopped) return;
    stopped = true;
    // Terminal shells run in their own sessions (node-pty calls setsid): collect them before the tree goes.
    const tree = o.descendants === false ? [] : descendants(pid);
    for (const sig of /** @type {const} */ (['SIGTERM', 'SIGKILL'])) {
      try { process.kill(-pid, sig); } catch { /* group gone */ }
      for (const p of tree) { try { process.kill(p, sig); } catch { /* gone */ } }
      const until = Date.now() + (sig === 'SIGTERM' ? 5000 : 3000);
      while (Date.now() < until && (groupAlive(pid) || tree.some(alive))) await sleep(50);
      if (!groupAlive(pid) && !tree.some(alive)) break;
    }
    onExitKillers.delete(killer);
    // Remove the IPC sockets that appeared since start and that no live process has bound (a concurrent
    // code-server's are bound, so they stay).
    const bound = boundSockets();
    for (const f of ipcSockets(ipcDir)) {
      const p = path.join(ipcDir, f);
      if (!ipcBefore.has(f) && !bound.has(p)) fs.rmSync(p, { force: true });
    }
    if (!o.keepProfile && !process.env.E2E_KEEP_PROFILE) fs.rmSync(profileDir, { recursive: true, force: true });
  };

  try {
    await waitFor(async () => exited
      || (await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) })).ok,
    Math.max(1000, deadline - Date.now()), `code-server on port ${port}`, 100).catch((e) => {
      throw new Error(`${e.message}; log ${logFile}:\n${tail(logFile)}`);
    });
    if (exited) throw new Error(`code-server exited during start; log ${logFile}:\n${tail(logFile)}`);
  } catch (e) {
    await stop({ keepProfile: true });
    throw e;
  }

  return {
    port, pid, profileDir, extensionsDir, userDataDir, settingsFile, logFile, stop,
    url(target = folder) {
      const base = `http://127.0.0.1:${port}/`;
      if (!target) return `${base}?ew=true`; // empty window
      const abs = path.resolve(target);
      return `${base}?${abs.endsWith('.code-workspace') ? 'workspace' : 'folder'}=${encodeURIComponent(abs)}`;
    },
    updateSettings(s) { current = { ...current, ...s }; writeSettings(); },
  };
}

/**
 * Chromium (Debian's, /usr/bin/chromium) under playwright-core. `npx playwright install` is not needed.
 * @param {{ headless?: boolean, args?: string[] }} [opts]
 * @returns {Promise<import('playwright-core').Browser>}
 */
export async function launchBrowser(opts = {}) {
  const { chromium } = playwright();
  // Chromium keeps its crash database under $XDG_CONFIG_HOME/chromium even with playwright's temp profile:
  // give it a throwaway XDG_CONFIG_HOME so nothing lands in ~/.config.
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-chromium-'));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: opts.headless ?? true,
    env: { ...process.env, XDG_CONFIG_HOME: home },
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--disable-quic', '--disable-sync', '--disable-dev-shm-usage', ...(opts.args || [])],
  }).catch((e) => { fs.rmSync(home, { recursive: true, force: true }); throw e; });
  browser.on('disconnected', () => fs.rmSync(home, { recursive: true, force: true }));
  return browser;
}

/**
 * Opens the workbench in a new page (1400x900 by default) and waits until it is usable (see waitForWorkbench).
 * Page errors are collected in `page.e2eErrors`.
 * @param {import('playwright-core').Browser} browser
 * @param {string} url from CodeServer.url()
 * @param {{ timeoutMs?: number, viewport?: { width: number, height: number } }} [opts]
 * @returns {Promise<import('playwright-core').Page>}
 */
export async function openWorkbench(browser, url, opts = {}) {
  const page = await browser.newPage({ viewport: opts.viewport || { width: 1400, height: 900 } });
  /** @type {string[]} */
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  /** @type {any} */ (page).e2eErrors = errors;
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: opts.timeoutMs || 60_000 });
  await waitForWorkbench(page, opts.timeoutMs || 60_000);
  return page;
}

/**
 * Waits for a (re)loaded workbench to be ready for input: rendered, its color theme loaded, the status bar
 * restored; then closes notification toasts. Extensions may still be activating: wait for their own signals.
 * @param {import('playwright-core').Page} page @param {number} [timeoutMs]
 */
export async function waitForWorkbench(page, timeoutMs = 60_000) {
  await page.waitForSelector('.monaco-workbench', { timeout: timeoutMs });
  await page.waitForSelector('.monaco-workbench .part.editor', { timeout: timeoutMs });
  // The workbench restores editors/views asynchronously; the title is set once the workspace is known.
  await waitFor(() => page.evaluate(() => document.title.length > 0 && !document.title.startsWith('http')), timeoutMs, 'workbench title');
  // The color theme is applied ~1 s after first paint (until then the workbench is the built-in light
  // 'vs'); the problems item joins the status bar once the workbench's contributions are restored.
  await waitForTheme(page, undefined, timeoutMs);
  await waitFor(() => page.evaluate(() => {
    const bar = /** @type {HTMLElement | null} */ (document.querySelector('.monaco-workbench .part.statusbar'));
    return (!!bar && bar.offsetParent === null) || !!document.getElementById('status.problems'); // hidden by settings, or restored
  }), timeoutMs, 'the status bar to be restored');
  await dismissNotifications(page);
}

/**
 * Closes notification toasts (they can cover the status bar and the bottom of views).
 * @param {import('playwright-core').Page} page
 */
export async function dismissNotifications(page) {
  for (let i = 0; i < 10; i++) {
    const close = page.locator('.notification-toast-container .codicon-notifications-clear').first();
    if (!(await close.isVisible().catch(() => false))) return;
    await close.click({ timeout: 2000 }).catch(() => {});
  }
}

/** @param {import('playwright-core').Page} page */
async function quickInputVisible(page) {
  return page.locator('.quick-input-widget').isVisible().catch(() => false);
}

/**
 * Runs a command from the command palette by its title, as a user would: F1, type, pick the row whose label
 * is exactly `title`, Enter. Waits for the palette to close; if the command opens its own quick input
 * (a prompt or a pick), resolves once that is showing and leaves it open for the caller.
 *
 * A focus change that lands while the row is being chosen (a panel a previous command opened taking the
 * focus late) closes the palette without running anything, which looks the same as running. Pass `until`,
 * a condition that shows the command ran (its own input showing), for a command that is harmless to run
 * twice: without it after `ranWithinMs` (default 5 s; more for a command that does work before it shows
 * anything), the palette is opened again (at most `RUN_ATTEMPTS` times).
 * @param {import('playwright-core').Page} page
 * @param {string} title full palette title, e.g. 'Developer: Reload Window'
 * @param {{ timeoutMs?: number, until?: () => unknown, ranWithinMs?: number }} [opts]
 */
export async function runCommand(page, title, opts = {}) {
  const { until, ranWithinMs = 5000 } = opts;
  if (!until) return choose(page, title, opts.timeoutMs);
  for (let attempt = 1; ; attempt++) {
    await choose(page, title, opts.timeoutMs);
    const ran = await waitFor(until, ranWithinMs, `"${title}" to show it ran`).then(() => true, (e) => {
      if (attempt >= RUN_ATTEMPTS) throw e;
      return false;
    });
    if (ran) return;
    console.log(`# "${title}" did not show it ran within ${ranWithinMs} ms (attempt ${attempt}); running it again`);
  }
}
const RUN_ATTEMPTS = 3;

/** @param {import('playwright-core').Page} page @param {string} title @param {number} [timeoutMs] */
async function choose(page, title, timeoutMs = 15_000) {
  const input = page.locator('.quick-input-widget .quick-input-box input');
  if (await quickInputVisible(page)) { await page.keyboard.press('Escape'); await waitFor(async () => !(await quickInputVisible(page)), 5000, 'quick input to close'); }
  // The list filters asynchronously; wait for a row labelled exactly `title`. Something taking the focus
  // (an editor or panel a previous command opened) can close the palette again, or leave it unfiltered:
  // open it and type the title again until the row shows.
  const row = page.locator('.quick-input-widget .quick-input-list .monaco-list-row')
    .filter({ has: page.locator('.label-name', { hasText: new RegExp(`^${escapeRegExp(title)}$`) }) }).first();
  await waitFor(async () => {
    if (!(await quickInputVisible(page))) await page.keyboard.press('F1');
    if (!(await input.isVisible()) || !(await input.inputValue()).startsWith('>')) return false;
    await input.fill(`>${title}`, { timeout: 1000 });
    if (await row.waitFor({ state: 'visible', timeout: 3000 }).then(() => true, () => false)) return true;
    await input.fill('>', { timeout: 1000 }).catch(() => undefined); // filter afresh next time
    return false;
  }, timeoutMs, `palette entry "${title}"`, 250);
  const firstRowLabel = await page.locator('.quick-input-widget .quick-input-list .monaco-list-row.focused .label-name').first().textContent().catch(() => null);
  if (firstRowLabel !== title) await row.click(); else await page.keyboard.press('Enter');
  // Closed, or replaced by the command's own quick input (its value no longer starts with '>').
  await waitFor(async () => !(await quickInputVisible(page)) || !(await input.inputValue().catch(() => '>')).startsWith('>'),
    timeoutMs, `the palette to close after "${title}"`);
}

/** @param {string} s */
const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Shows a view container from the activity bar (e.g. an extension's sidebar) by its title, and waits until it
 * is the selected one.
 * @param {import('playwright-core').Page} page @param {string} title the container's title (its tooltip)
 */
export async function openViewContainer(page, title) {
  // aria-label is the title, plus " (keybinding)" for built-in containers.
  const item = page.locator('.part.activitybar .action-item', {
    has: page.locator(`a.action-label[aria-label="${title}"], a.action-label[aria-label^="${title} ("]`),
  }).first();
  await item.waitFor({ timeout: 20_000 });
  if (!(await item.evaluate((e) => e.classList.contains('checked')))) await item.click();
  await waitFor(() => item.evaluate((e) => e.classList.contains('checked')), 10_000, `the "${title}" view container to open`);
}

/**
 * The content frame of a webview (VS Code nests it: iframe.webview > iframe#active-frame; the extension's HTML
 * is the inner one). Polls until a webview frame matches.
 * @param {import('playwright-core').Page} page
 * @param {string | RegExp | ((frame: import('playwright-core').Frame, text: string) => boolean | Promise<boolean>)} match
 *   text the webview's body contains, a RegExp over that text, or a predicate given the frame and its text
 * @param {{ timeoutMs?: number }} [opts]
 * @returns {Promise<import('playwright-core').Frame>}
 */
export async function webviewFrame(page, match, opts = {}) {
  const test = typeof match === 'string' ? (/** @type {any} */ _f, /** @type {string} */ t) => t.includes(match)
    : match instanceof RegExp ? (/** @type {any} */ _f, /** @type {string} */ t) => match.test(t) : match;
  return waitFor(async () => {
    for (const f of webviewFrames(page)) {
      const text = await f.evaluate(() => document.body ? document.body.innerText : '').catch(() => null);
      if (text !== null && await test(f, text)) return f;
    }
    return null;
  }, opts.timeoutMs ?? 20_000, `a webview frame matching ${typeof match === 'function' ? 'the predicate' : match}`, 200);
}

/**
 * Every webview content frame currently in the page.
 * @param {import('playwright-core').Page} page
 */
export function webviewFrames(page) {
  return page.frames().filter((f) => {
    const parent = f.parentFrame();
    return !!parent && parent !== page.mainFrame() && /\/webview\//.test(parent.url()) && !f.isDetached();
  });
}

/**
 * Saves a screenshot of the page into the artifacts dir; returns its path.
 * @param {import('playwright-core').Page} page @param {string} name file name without .png
 */
export async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const file = path.join(ARTIFACTS_DIR, `${name.replace(/[^\w.-]+/g, '_')}.png`);
  await page.screenshot({ path: file });
  return file;
}

/**
 * Switches the color theme as a user does ("Preferences: Color Theme", pick, Enter) and waits until the
 * workbench shows it. (Editing settings.json while the window is open does not apply it in code-server:
 * the user-settings file is not watched there; edits apply on the next reload.)
 * @param {import('playwright-core').Page} page @param {'dark'|'light'|'hc'} theme
 */
export async function setTheme(page, theme) {
  const label = THEMES[theme];
  await runCommand(page, 'Preferences: Color Theme');
  const input = page.locator('.quick-input-widget .quick-input-box input');
  await input.fill(label);
  // Rows show a short label ("Light Modern") and the theme id as description ("Default Light Modern").
  const row = page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: label }).first();
  await waitFor(() => row.isVisible(), 10_000, `theme "${label}" in the picker`);
  await row.click();
  await waitFor(async () => !(await quickInputVisible(page)), 10_000, 'the theme picker to close');
  await waitForTheme(page, theme);
}

/**
 * Waits until the workbench has loaded a color theme (of the given kind, if given).
 * @param {import('playwright-core').Page} page @param {'dark'|'light'|'hc'} [theme] @param {number} [timeoutMs]
 */
export async function waitForTheme(page, theme, timeoutMs = 15_000) {
  const kind = theme && { dark: 'vs-dark', light: 'vs', hc: 'hc-black' }[theme];
  await waitFor(() => page.evaluate((k) => {
    const cl = document.querySelector('.monaco-workbench')?.classList;
    return !!cl && [...cl].some((c) => c.startsWith('vscode-theme-')) && (!k || cl.contains(k));
  }, kind), timeoutMs, `the ${theme || ''} color theme to load`);
}

/**
 * "Developer: Reload Window", then waits for the new workbench.
 * @param {import('playwright-core').Page} page @param {{ timeoutMs?: number }} [opts]
 */
export async function reloadWindow(page, opts = {}) {
  await page.evaluate(() => { /** @type {any} */ (window).__e2eBeforeReload = true; });
  await runCommand(page, 'Developer: Reload Window');
  await waitFor(() => page.evaluate(() => !(/** @type {any} */ (window).__e2eBeforeReload)).catch(() => false),
    opts.timeoutMs ?? 30_000, 'the window to reload');
  await waitForWorkbench(page, opts.timeoutMs ?? 60_000);
}

/**
 * Opens a new integrated terminal and waits until its shell has printed something (the prompt).
 * @param {import('playwright-core').Page} page @param {{ timeoutMs?: number }} [opts]
 */
export async function openTerminal(page, opts = {}) {
  const before = await page.locator('.terminal-wrapper').count();
  await runCommand(page, 'Terminal: Create New Terminal');
  await waitFor(async () => (await page.locator('.terminal-wrapper').count()) > before, opts.timeoutMs ?? 20_000, 'a new terminal');
  await waitFor(async () => (await terminalText(page)).trim().length > 0, opts.timeoutMs ?? 20_000, 'the terminal prompt');
}

/**
 * Text of the visible rows of the active terminal (needs terminal.integrated.gpuAcceleration "off", which
 * startCodeServer sets: xterm then renders rows as DOM). Trailing blanks are trimmed per line.
 * @param {import('playwright-core').Page} page
 */
export async function terminalText(page) {
  return page.evaluate(() => {
    // The focused terminal, else the active one (each terminal has a .terminal-wrapper; the shown one is .active).
    const wrappers = /** @type {HTMLElement[]} */ ([...document.querySelectorAll('.terminal-wrapper')]);
    const w = wrappers.find((e) => e.contains(document.activeElement))
      || wrappers.find((e) => e.classList.contains('active') && e.offsetParent !== null)
      || wrappers.find((e) => e.offsetParent !== null);
    const rows = w?.querySelector('.xterm-rows');
    if (!rows) return '';
    return [...rows.children].map((r) => (r.textContent || '').replace(/\u00a0/g, ' ').replace(/\s+$/, '')).join('\n').replace(/\n+$/, '');
  });
}

/**
 * Types a line into the focused terminal and presses Enter.
 * @param {import('playwright-core').Page} page @param {string} line
 */
export async function terminalType(page, line) {
  const active = page.locator('.terminal-wrapper.active .xterm').first();
  await (await active.isVisible() ? active : page.locator('.terminal-wrapper .xterm').last()).click();
  await page.keyboard.type(line);
  await page.keyboard.press('Enter');
}

/**
 * Texts of the visible notification toasts.
 * @param {import('playwright-core').Page} page
 */
export async function notifications(page) {
  return page.$$eval('.notification-toast-container .notification-list-item-message', (els) => els.map((e) => e.textContent || ''));
}
