// The `vscode` section of `npm run bench`, driven in a real VS Code (code-server 4.100.3 = VS Code 1.100.3)
// through the e2e harness (test/e2e/harness.mjs). Run by bench/vscode.ts as `node bench/vscode.mjs`; it can
// also be run alone. Progress lines go to stderr; one JSON object (VscodeBenchResult) goes to stdout.
//
//   cold start   code-server answering /healthz → workbench ready → extension activated (exthost log) → hub
//                connected (status bar) → the chat view showing the project's default CI; each run with a
//                fresh code-server profile, a fresh browser context and a fresh CIHUB_HOME
//   chat         Enter in the chat input → the demo agent's reply in the webview DOM (timed inside the webview)
//   reload       "Developer: Reload Window" with an agent terminal attached → the terminal shows the agent's
//                screen again; also → workbench ready and → chat view ready
//
// Environment: BENCH_VSCODE_COLD_RUNS (default 5), BENCH_VSCODE_RELOADS (5), BENCH_VSCODE_MESSAGES (30).
// No fixed sleeps: everything waits for an observable condition with a deadline.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isInstalled } from '../test/e2e/setup.mjs';
import {
  startCodeServer, launchBrowser, openWorkbench, openViewContainer, waitForWorkbench, webviewFrames, runCommand,
  waitFor, terminalText,
} from '../test/e2e/harness.mjs';

/**
 * @typedef {import('playwright-core').Page} Page
 * @typedef {import('playwright-core').Frame} Frame
 * @typedef {import('playwright-core').Browser} Browser
 * @typedef {Awaited<ReturnType<typeof startCodeServer>>} CodeServer
 *
 * All times in ms. Cold-start times are from code-server answering /healthz.
 * @typedef {{ workbench: number, activated?: number, activationEvent?: string, hubConnected?: number, view: number }} ColdRun
 * @typedef {{ workbench: number, activated?: number, hubConnected?: number, view: number, terminal: number }} ReloadRun
 * @typedef {{ skipped?: string, error?: string, cold: ColdRun[], chat: number[], reload: ReloadRun[], leftovers: string[], seconds: number }} VscodeBenchResult
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const VSIX = path.join(ROOT, 'projects-chat.vsix');
const CIHUB = path.join(ROOT, 'dist', 'cihub.js');
const DEMO_AGENT = path.join(ROOT, 'test', 'fixtures', 'demo-agent.js');
const EXTENSION_ID = 'projects-chat.projects-chat';

/** @param {string} name @param {number} fallback */
const count = (name, fallback) => Math.max(1, Number(process.env[name]) || fallback);
const COLD_RUNS = count('BENCH_VSCODE_COLD_RUNS', 5);
const RELOADS = count('BENCH_VSCODE_RELOADS', 5);
const MESSAGES = count('BENCH_VSCODE_MESSAGES', 30);

const started = Date.now();
/** @param {string} line */
const progress = (line) => process.stderr.write(`  [vscode ${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s] ${line}\n`);
/** @param {number} ms */
const sec = (ms) => `${(ms / 1000).toFixed(2)} s`;

/** @type {VscodeBenchResult} */
const result = { cold: [], chat: [], reload: [], leftovers: [], seconds: 0 };

/** Every CIHUB_HOME and code-server profile this run made, to stop and check for leftovers. */
const homes = /** @type {string[]} */ ([]);
const profiles = /** @type {string[]} */ ([]);
const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'cibv-ws-'));
const app = path.join(workspace, 'app');
fs.mkdirSync(app);
fs.writeFileSync(path.join(app, 'index.js'), '\n');

/** @param {string} home */
function stopHub(home) {
  /** @type {NodeJS.ProcessEnv} */
  const env = { ...process.env, CIHUB_HOME: home };
  delete env.CIHUB_SOCKET;
  delete env.CIHUB_CI;
  try {
    execFileSync(process.execPath, [CIHUB, 'stop'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
  } catch {
    // no hub (or it did not answer: the leftover check below says so)
  }
}

/** A fresh CIHUB_HOME and code-server (profile, extension installed, settings) serving `app`. */
async function freshServer() {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'cibv-'));
  homes.push(home);
  const server = await startCodeServer({
    vsix: VSIX,
    folder: app,
    env: { CIHUB_HOME: home, CIHUB_SOCKET: undefined, CIHUB_CI: undefined },
    settings: { 'projectsChat.defaultCi': `${process.execPath} ${DEMO_AGENT}` },
  });
  profiles.push(server.profileDir);
  return { home, server };
}

/** @param {CodeServer} server @param {string} home */
async function stopAll(server, home) {
  await server.stop();
  stopHub(home);
}

/** Local-time log timestamp "2026-11-21 08:11:21.996" → ms since epoch. */
const logTime = (/** @type {string} */ s) => new Date(s.replace(' ', 'T')).getTime();

/** @param {string} dir @returns {string[]} */
function filesUnder(dir) {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]));
  } catch {
    return [];
  }
}

/**
 * The extension host's own log (`<user-data>/logs/<session>/exthostN/remoteexthost.log`) has
 * "ExtensionService#_doActivateExtension projects-chat.projects-chat, startup: …, activationEvent: '…'": the
 * latest such activation at or after `since` (ms since epoch), once the log has been flushed to disk.
 * @param {CodeServer} server @param {number} since
 * @returns {{ at: number, event: string } | undefined}
 */
function activation(server, since) {
  /** @type {{ at: number, event: string } | undefined} */
  let latest;
  for (const file of filesUnder(path.join(server.userDataDir, 'logs')).filter((f) => /exthost\.log$/.test(f))) {
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      const m = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \[\w+\] ExtensionService#_doActivateExtension ([\w.-]+), .*activationEvent: '([^']*)'/.exec(line);
      if (!m || m[2] !== EXTENSION_ID) continue;
      const at = logTime(m[1]);
      // The log has ms resolution; a whole-ms rounding earlier than `since` still counts.
      if (at >= since - 1 && (!latest || at > latest.at)) latest = { at, event: m[3] };
    }
  }
  return latest;
}

/** The chat webview frame whose visible text passes `test`, if there is one now. */
async function chatFrameNow(/** @type {Page} */ page, /** @type {(text: string) => boolean} */ test) {
  for (const f of webviewFrames(page)) {
    const text = await f.evaluate(() => (document.body ? document.body.innerText : '')).catch(() => null);
    if (text !== null && test(text)) return f;
  }
  return null;
}

const statusItem = (/** @type {Page} */ page) => page.locator('.part.statusbar [id$="projectsChat.status"]').first();

/**
 * Polls (every 50 ms, until all are seen or `ms` passes) for named conditions, concurrently, and returns
 * when each first held (ms since epoch).
 * @template {string} K
 * @param {Record<K, () => Promise<unknown>>} conditions @param {number} ms @param {NoInfer<K>[]} [required] conditions that
 *   must be seen (the others are best effort)
 * @returns {Promise<Partial<Record<K, number>>>}
 */
async function firstSeen(conditions, ms, required) {
  /** @type {Partial<Record<K, number>>} */
  const seen = {};
  const keys = /** @type {K[]} */ (Object.keys(conditions));
  await waitFor(async () => {
    await Promise.all(keys.filter((k) => seen[k] === undefined).map(async (k) => {
      if (await conditions[k]().catch(() => false)) seen[k] = Date.now();
    }));
    return keys.every((k) => seen[k] !== undefined);
  }, ms, `${keys.filter((k) => seen[k] === undefined).join(', ')}`, 50).catch((e) => {
    const missing = (required ?? keys).filter((k) => seen[k] === undefined);
    if (missing.length) throw new Error(`${e instanceof Error ? e.message : e} (not seen: ${missing.join(', ')})`);
  });
  return seen;
}

/**
 * One cold start: a fresh code-server profile and CIHUB_HOME, a new browser context; code-server ready → the
 * workbench → the Projects Chat view (clicked in the activity bar as soon as the workbench is ready) showing
 * project-app-ai. Leaves the server running when `keep` (for the chat and reload measurements).
 * @param {Browser} browser @param {number} n @param {boolean} keep
 */
async function coldStart(browser, n, keep) {
  const { home, server } = await freshServer();
  const ready = Date.now(); // startCodeServer resolves when /healthz answers
  let page;
  try {
    page = await openWorkbench(browser, server.url(app));
    const workbench = Date.now();
    await openViewContainer(page, 'Projects Chat');
    const p = page;
    const seen = await firstSeen({
      hubConnected: async () => /^\d+/.test((await statusItem(p).innerText({ timeout: 200 })).trim()),
      view: async () => !!(await chatFrameNow(p, (t) => t.includes('project-app-ai'))),
    }, 60_000, ['view']);
    const view = /** @type {number} */ (seen.view);
    // The exthost log is flushed a little after the fact.
    const act = await waitFor(() => activation(server, ready), 10_000, 'the activation line in the extension host log').catch(() => undefined);
    /** @type {ColdRun} */
    const run = {
      workbench: workbench - ready,
      view: view - ready,
      ...(act ? { activated: act.at - ready, activationEvent: act.event } : {}),
      ...(seen.hubConnected ? { hubConnected: seen.hubConnected - ready } : {}),
    };
    result.cold.push(run);
    progress(`cold start ${n}/${COLD_RUNS}: workbench ${sec(run.workbench)}, activated ${run.activated === undefined ? '?' : sec(run.activated)} (${run.activationEvent ?? '?'}), `
      + `hub connected ${run.hubConnected === undefined ? '?' : sec(run.hubConnected)}, chat view ${sec(run.view)}`);
    if (keep) return { home, server, page };
    await page.close();
    await stopAll(server, home);
    return undefined;
  } catch (e) {
    await page?.close().catch(() => undefined);
    await stopAll(server, home);
    throw e;
  }
}

/** The chat frame showing project-app-ai. */
const chatFrame = (/** @type {Page} */ page) => waitFor(() => chatFrameNow(page, (t) => t.includes('project-app-ai')), 30_000, 'the chat view', 50);

/**
 * Types `text` into the chat and presses Enter; resolves with the ms from that Enter's keydown to `expect`
 * appearing in the webview's DOM, both timed inside the webview (performance.now, a MutationObserver).
 * @param {Frame} frame @param {string} text @param {string} expect
 */
async function timedMessage(frame, text, expect) {
  await frame.evaluate((want) => {
    const w = /** @type {Window & { __benchReply?: Promise<number> }} */ (window);
    w.__benchReply = new Promise((resolve, reject) => {
      let t0 = 0;
      const onKey = (/** @type {KeyboardEvent} */ e) => { if (e.key === 'Enter' && !t0) t0 = performance.now(); };
      window.addEventListener('keydown', onKey, true);
      const done = () => { observer.disconnect(); clearTimeout(deadline); window.removeEventListener('keydown', onKey, true); };
      const observer = new MutationObserver(() => {
        if (t0 && (document.body.textContent ?? '').includes(want)) {
          const t1 = performance.now();
          done();
          resolve(t1 - t0);
        }
      });
      observer.observe(document.body, { childList: true, subtree: true, characterData: true });
      const deadline = setTimeout(() => { done(); reject(new Error(`no "${want}" in the chat within 20 s`)); }, 20_000);
    });
  }, expect);
  const input = frame.locator('textarea');
  await input.fill(text);
  await input.press('Enter');
  return frame.evaluate(() => /** @type {Window & { __benchReply?: Promise<number> }} */ (window).__benchReply ?? Promise.reject(new Error('not armed')));
}

/** @param {Frame} frame @param {string} text @param {string} expect @param {number} [ms] */
async function sendAndWait(frame, text, expect, ms = 30_000) {
  const input = frame.locator('textarea');
  await input.fill(text);
  await input.press('Enter');
  await waitFor(async () => (await frame.evaluate(() => document.body.innerText)).includes(expect), ms, `"${expect}" in the chat`, 50);
}

/** Whether any terminal in the window shows `text` in its visible rows. */
function terminalsShow(/** @type {Page} */ page, /** @type {string} */ text) {
  return page.evaluate((want) => [...document.querySelectorAll('.terminal-wrapper .xterm-rows')]
    .some((rows) => (rows.textContent ?? '').replace(/\u00a0/g, ' ').includes(want)), text);
}

/**
 * Opens the palette on "Developer: Reload Window" with its row focused, so that only Enter is left.
 * @param {Page} page
 */
async function armReload(page) {
  const title = 'Developer: Reload Window';
  const input = page.locator('.quick-input-widget .quick-input-box input');
  const visible = () => page.locator('.quick-input-widget').isVisible().catch(() => false);
  await waitFor(async () => {
    if (!(await visible())) await page.keyboard.press('F1');
    if (!(await input.isVisible()) || !(await input.inputValue()).startsWith('>')) return false;
    if ((await input.inputValue()) !== `>${title}`) await input.fill(`>${title}`, { timeout: 1000 });
    const focused = await page.locator('.quick-input-widget .quick-input-list .monaco-list-row.focused .label-name').first().textContent({ timeout: 500 }).catch(() => null);
    return focused === title;
  }, 15_000, `the palette on "${title}"`, 100);
}

/**
 * With an agent terminal attached: reload the window `RELOADS` times; each time the agent has printed a new
 * line first (sent from the chat), and the reload counts until the terminal shows that line again.
 * @param {CodeServer} server @param {Page} page
 */
async function reloads(server, page) {
  for (let i = 1; i <= RELOADS; i++) {
    const mark = `mark-${String(i).padStart(3, '0')}`;
    const frame = await chatFrame(page);
    await sendAndWait(frame, mark, `you said: ${mark}`);
    await waitFor(() => terminalsShow(page, `you said: ${mark}`), 15_000, `"${mark}" in the agent terminal`, 50);

    await armReload(page);
    await page.evaluate(() => { /** @type {Window & { __benchBeforeReload?: boolean }} */ (window).__benchBeforeReload = true; });
    const t0 = Date.now();
    await page.keyboard.press('Enter');
    await waitFor(() => page.evaluate(() => !(/** @type {Window & { __benchBeforeReload?: boolean }} */ (window).__benchBeforeReload)).catch(() => false),
      30_000, 'the window to reload', 20);
    /** @type {number | undefined} */
    let workbench;
    const [seen] = await Promise.all([
      firstSeen({
        terminal: () => terminalsShow(page, `you said: ${mark}`),
        view: async () => !!(await chatFrameNow(page, (t) => t.includes('project-app-ai'))),
        hubConnected: async () => /^\d+/.test((await statusItem(page).innerText({ timeout: 200 })).trim()),
      }, 60_000, ['terminal', 'view']),
      waitForWorkbench(page, 60_000).then(() => { workbench = Date.now(); }),
    ]);
    const act = await waitFor(() => activation(server, t0), 10_000, 'the activation line in the extension host log').catch(() => undefined);
    /** @type {ReloadRun} */
    const run = {
      workbench: /** @type {number} */ (workbench) - t0,
      view: /** @type {number} */ (seen.view) - t0,
      terminal: /** @type {number} */ (seen.terminal) - t0,
      ...(act ? { activated: act.at - t0 } : {}),
      ...(seen.hubConnected ? { hubConnected: seen.hubConnected - t0 } : {}),
    };
    result.reload.push(run);
    progress(`reload ${i}/${RELOADS}: workbench ${sec(run.workbench)}, activated ${run.activated === undefined ? '?' : sec(run.activated)}, `
      + `hub connected ${run.hubConnected === undefined ? '?' : sec(run.hubConnected)}, chat view ${sec(run.view)}, agent terminal back ${sec(run.terminal)}`);
  }
}

/**
 * Processes of this run still alive: our own descendants (the browser, code-server), and anything with one of
 * our CIHUB_HOMEs or code-server profiles (hubs and agents, which run detached from us).
 */
function leftovers() {
  /** @type {Map<number, { ppid: number, environ: string[], cmdline: string }>} */
  const procs = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue; // exited, not yet reaped
      procs.set(Number(d), {
        ppid: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]),
        environ: fs.readFileSync(`/proc/${d}/environ`, 'utf8').split('\0'),
        cmdline: fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ').trim(),
      });
    } catch {
      // gone, or not ours to read
    }
  }
  const ours = (/** @type {number} */ pid) => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
      const info = procs.get(p);
      if (!info) return false;
      if (info.ppid === process.pid) return true;
      p = info.ppid;
    }
    return false;
  };
  return [...procs].filter(([pid, { environ, cmdline }]) => ours(pid)
    || homes.some((h) => environ.includes(`CIHUB_HOME=${h}`)) || profiles.some((p) => cmdline.includes(p)))
    .map(([pid, { cmdline }]) => `${pid} ${cmdline.slice(0, 160)}`);
}

async function main() {
  if (!isInstalled()) {
    result.skipped = 'code-server is not installed: run `node test/e2e/setup.mjs`';
    return;
  }
  if (!fs.existsSync(VSIX)) {
    result.skipped = `${path.relative(ROOT, VSIX)} does not exist: run \`npm run package\``;
    return;
  }
  if (!fs.existsSync(CIHUB)) {
    result.skipped = 'dist/cihub.js does not exist: run `npm run package`';
    return;
  }
  progress(`${COLD_RUNS} cold starts, ${MESSAGES} chat messages, ${RELOADS} reloads`);
  const browser = await launchBrowser();
  /** @type {{ home: string, server: CodeServer, page: Page } | undefined} */
  let kept;
  try {
    for (let n = 1; n <= COLD_RUNS; n++) kept = await coldStart(browser, n, n === COLD_RUNS);
    if (!kept) throw new Error('no window kept');
    const { page } = kept;

    // The default CI starts with the first message; that one is not timed.
    let frame = await chatFrame(page);
    await sendAndWait(frame, 'hello', 'Hello! I am project-app-ai', 60_000);
    progress(`chat: the default CI answers; timing ${MESSAGES} messages`);
    for (let i = 1; i <= MESSAGES; i++) {
      const text = `ping-${String(i).padStart(3, '0')}`;
      frame = await chatFrame(page);
      result.chat.push(await timedMessage(frame, text, `you said: ${text}`));
    }
    const sorted = [...result.chat].sort((a, b) => a - b);
    progress(`chat: Enter → reply shown p50 ${sorted[Math.floor(sorted.length / 2)].toFixed(0)} ms, max ${sorted[sorted.length - 1].toFixed(0)} ms`);

    await runCommand(page, 'Projects Chat: Attach Terminal to CI…');
    const row = page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: 'project-app-ai' }).first();
    await waitFor(() => row.isVisible(), 10_000, 'project-app-ai in the pick');
    await row.click();
    await waitFor(async () => (await terminalText(page)).includes('demo>'), 20_000, "the agent's screen in the terminal");
    progress('reload: agent terminal attached');
    await reloads(kept.server, page);
  } finally {
    await browser.close().catch(() => undefined);
    if (kept) await stopAll(kept.server, kept.home);
  }
}

try {
  await main();
} catch (e) {
  result.error = e instanceof Error ? (e.stack ?? e.message) : String(e);
  progress(`failed: ${result.error.split('\n')[0]}`);
} finally {
  // Hubs a reload reparented to init are no longer code-server's descendants: stop them through the product.
  for (const h of homes) stopHub(h);
  result.leftovers = leftovers();
  for (const l of result.leftovers) {
    const pid = Number(l.split(' ')[0]);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  for (const dir of [...homes, workspace]) fs.rmSync(dir, { recursive: true, force: true });
  result.seconds = (Date.now() - started) / 1000;
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
