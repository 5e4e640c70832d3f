// What both extension-host runners (runInCodeServer.mjs, runDesktop.mjs) share: the paths, a fresh run
// directory (its own CIHUB_HOME, a workspace folder, the result file), stopping the run's hub through the
// product (`cihub stop`), and reading and printing the result the tests wrote (see index.cjs).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '..', '..');
/** The `extensionTestsPath` both runners give VS Code. */
export const TESTS_ENTRY = path.join(HERE, 'index.cjs');
const CIHUB = path.join(ROOT, 'dist', 'cihub.js');

/**
 * @typedef {object} TestResult
 * @property {string} name @property {boolean} ok @property {number} ms @property {string} [error]
 */
/**
 * @typedef {object} RunResult  written by index.cjs inside the extension host
 * @property {boolean} ok @property {number} passed @property {number} failed @property {number} ms
 * @property {{ version: string, appName: string, appHost: string, remoteName?: string, uiKind: string }} vscode
 * @property {TestResult[]} tests @property {string} [error]
 */

/** Fails with what to do when the extension has not been built (the extension under test is ROOT with its dist/). */
export function requireBuild() {
  const missing = ['extension.js', 'server.js', 'cihub.js'].map((f) => path.join(ROOT, 'dist', f)).filter((f) => !fs.existsSync(f));
  if (missing.length) throw new Error(`the extension is not built (${missing.map((f) => path.relative(ROOT, f)).join(', ')} missing): run \`npm run build\` or \`npm run package\` first`);
}

/**
 * @typedef {object} Run
 * @property {string} dir        the run's temp dir (removed by cleanup)
 * @property {string} home       CIHUB_HOME: the run's own hub (short, for Unix socket paths)
 * @property {string} workspace  the folder the test window opens
 * @property {string} resultFile where index.cjs writes its RunResult
 * @property {Record<string, string>} env  for the extension host: CIHUB_HOME, PROJECTS_CHAT_TEST_RESULT[, _GREP]
 * @property {() => void} cleanup
 */

/**
 * A fresh run: /tmp/pcvt-XXXXXX/{h (CIHUB_HOME), project (the workspace), result.json}.
 * @param {{ grep?: string }} [opts]
 * @returns {Run}
 */
export function makeRun(opts = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcvt-'));
  const home = path.join(dir, 'h');
  const workspace = path.join(dir, 'project');
  fs.mkdirSync(workspace);
  fs.writeFileSync(path.join(workspace, 'README.md'), '# A project for the extension-host tests\n');
  const resultFile = path.join(dir, 'result.json');
  /** @type {Record<string, string>} */
  const env = { CIHUB_HOME: home, PROJECTS_CHAT_TEST_RESULT: resultFile };
  if (opts.grep) env.PROJECTS_CHAT_TEST_GREP = opts.grep;
  return {
    dir, home, workspace, resultFile, env,
    cleanup: () => { if (!process.env.E2E_KEEP_PROFILE) fs.rmSync(dir, { recursive: true, force: true }); },
  };
}

/** @param {string} file @returns {RunResult | undefined} the result, once the tests have written it */
export function readResult(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** @param {string} home @returns {number | undefined} the pid in the hub's lock file */
function hubPid(home) {
  try {
    return Number(fs.readFileSync(path.join(home, 'run', 'hub.lock'), 'utf8').trim().split(/\s+/)[0]) || undefined;
  } catch {
    return undefined;
  }
}
const alive = (/** @type {number} */ pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };

/**
 * Stops the run's hub with `cihub stop` (the product's way: its CIs get SIGHUP/SIGTERM, sockets and lock are
 * removed) and waits for its process to be gone; SIGKILLs it after 10 s. Returns what it did, for the log.
 * @param {string} home CIHUB_HOME
 * @returns {Promise<string>}
 */
export async function stopHub(home) {
  const pid = hubPid(home);
  if (pid === undefined || !alive(pid)) return 'no hub running';
  /** @type {NodeJS.ProcessEnv} */
  const env = { ...process.env, CIHUB_HOME: home };
  delete env.CIHUB_SOCKET;
  delete env.CIHUB_CI;
  const r = spawnSync(process.execPath, [CIHUB, 'stop'], { env, encoding: 'utf8', timeout: 15_000 });
  const said = `${r.stdout}${r.stderr}`.trim();
  const until = Date.now() + 10_000;
  while (alive(pid) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
  if (!alive(pid)) return `cihub stop: ${said}`;
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  return `cihub stop did not stop hub ${pid} within 10 s (${said}); SIGKILLed it`;
}

/**
 * The result as lines: one per test, failures with their error.
 * @param {RunResult} result @param {string} where e.g. "code-server"
 */
export function formatResult(result, where) {
  const lines = [`${where}: ${result.vscode.appName} ${result.vscode.version} (${result.vscode.appHost}${result.vscode.remoteName ? `, remote ${result.vscode.remoteName}` : ''})`];
  for (const t of result.tests) {
    lines.push(`  ${t.ok ? 'ok  ' : 'FAIL'} ${t.name} (${t.ms} ms)`);
    if (t.error) lines.push(...t.error.split('\n').map((l) => `         ${l}`));
  }
  if (result.error) lines.push(`  ERROR ${result.error}`);
  lines.push(`${result.passed} passed, ${result.failed} failed, ${result.ms} ms in the extension host`);
  return lines.join('\n');
}
