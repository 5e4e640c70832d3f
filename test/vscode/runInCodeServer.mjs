// Runs the extension-host tests (index.cjs → extension.test.cjs) inside code-server 4.100.3 (VS Code 1.100.3's
// server and its remote extension host), with no desktop VS Code and no download:
//
//   npm run test:vscode                       # build, then this file
//   node test/vscode/runInCodeServer.mjs [--grep REGEXP]
//   node --test test/e2e/extensionHost.test.mjs     # the same, as a node:test suite
//
// How: code-server's own CLI rejects --extensionDevelopmentPath / --extensionTestsPath ("Unknown option"),
// but VS Code's web workbench takes them from its URL, as `payload` entries:
//   /?folder=<workspace>&payload=[["extensionDevelopmentPath","vscode-remote://<host:port>/<repo>"],
//                                  ["extensionTestsPath","vscode-remote://<host:port>/<repo>/test/vscode/index.cjs"]]
// The workbench passes both to the remote extension host (the URIs become file paths on the server), which
// loads the repository as the extension under development and awaits the tests' run(). The remote extension
// host only starts once a browser window connects, so a headless chromium (test/e2e/harness.mjs) opens that
// URL. Outcome, two ways: index.cjs writes a JSON result file (path in PROJECTS_CHAT_TEST_RESULT, passed to
// code-server's environment like CIHUB_HOME), and VS Code reports run()'s exit code to the page through
// `window.codeAutomationExit(code)` (as @vscode/test-web does), which playwright exposes here.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startCodeServer, launchBrowser, waitFor } from '../e2e/harness.mjs';
import { ROOT, TESTS_ENTRY, requireBuild, makeRun, readResult, stopHub, formatResult } from './common.mjs';

/**
 * @typedef {object} CodeServerRun
 * @property {import('./common.mjs').RunResult} result  what the tests reported
 * @property {number | undefined} exitCode  the extension host's exit code as VS Code reported it (0: run() resolved)
 * @property {number} ms                    wall time: start of code-server to the hub stopped
 * @property {string[]} notes               what the runner did (startup times, hub stop)
 */

/** @param {string} file @param {number} lines */
const tail = (file, lines) => { try { return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n'); } catch { return ''; } };

/**
 * @param {object} [opts]
 * @param {string} [opts.grep]       only the tests whose name matches (a RegExp source)
 * @param {number} [opts.timeoutMs]  deadline for the tests, from the page load (default 180 s)
 * @param {(line: string) => void} [opts.log]  progress: the tests' own log lines, as they run
 * @returns {Promise<CodeServerRun>}
 */
export async function runInCodeServer(opts = {}) {
  const { timeoutMs = 180_000, log = () => {} } = opts;
  requireBuild();
  const t0 = Date.now();
  const run = makeRun({ grep: opts.grep });
  /** @type {string[]} */
  const notes = [];
  /** @type {CodeServerRun | undefined} */
  let outcome;
  /** @type {Awaited<ReturnType<typeof startCodeServer>> | undefined} */
  let server;
  /** @type {import('playwright-core').Browser | undefined} */
  let browser;
  try {
    server = await startCodeServer({ folder: run.workspace, env: { ...run.env, CIHUB_SOCKET: undefined, CIHUB_CI: undefined } });
    notes.push(`code-server on port ${server.port} after ${Date.now() - t0} ms`);
    browser = await launchBrowser();
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    /** @type {number | undefined} */
    let exitCode;
    await page.exposeFunction('codeAutomationExit', (/** @type {number} */ code) => { exitCode = code; });
    // The extension host's console reaches the page's console (VS Code forwards it); show the tests' lines.
    page.on('console', (m) => {
      const text = m.text();
      const at = text.indexOf('[projects-chat tests]');
      if (at >= 0) log(text.slice(at).replace(/\s*\(?at console\.log.*$/s, '').trimEnd());
    });
    const remote = (/** @type {string} */ p) => `vscode-remote://127.0.0.1:${server?.port}${encodeURI(p)}`;
    const payload = [['extensionDevelopmentPath', remote(ROOT)], ['extensionTestsPath', remote(TESTS_ENTRY)]];
    await page.goto(`${server.url(run.workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`, { waitUntil: 'domcontentloaded' });
    const loaded = Date.now();
    const exited = () => exitCode !== undefined;
    try {
      await waitFor(() => readResult(run.resultFile) || exited(), timeoutMs, 'the extension-host tests to report (result file or exit code)', 100);
      // run() writes the file before it settles, so the exit code follows within moments.
      if (!exited()) await waitFor(exited, 15_000, 'VS Code to report the extension host\'s exit code').catch((e) => notes.push(e.message));
      if (!readResult(run.resultFile)) await waitFor(() => readResult(run.resultFile), 5000, 'the result file').catch(() => undefined);
    } catch (e) {
      throw new Error(`${e instanceof Error ? e.message : e}; code-server log ${server.logFile}:\n${tail(server.logFile, 30)}`);
    }
    notes.push(`the tests reported ${Date.now() - loaded} ms after the page load; extension host exit code ${exitCode ?? '(not reported)'}`);
    const result = readResult(run.resultFile);
    if (!result) throw new Error(`the extension host exited with code ${exitCode} without writing ${run.resultFile} (did run() start? code-server log:\n${tail(server.logFile, 30)})`);
    outcome = { result, exitCode, ms: 0, notes };
    return outcome;
  } finally {
    // Order: the extension host has exited on the normal path, so the hub it spawned is no longer its child:
    // stop it through the product first; then code-server; then make sure nothing restarted a hub meanwhile.
    notes.push(await stopHub(run.home));
    await browser?.close().catch(() => undefined);
    await server?.stop({ keepProfile: !!process.env.E2E_KEEP_PROFILE });
    const again = await stopHub(run.home);
    if (again !== 'no hub running') notes.push(`after code-server stopped: ${again}`);
    run.cleanup();
    if (outcome) outcome.ms = Date.now() - t0; // the returned object: filled in after the cleanup
  }
}

// CLI: node test/vscode/runInCodeServer.mjs [--grep REGEXP]
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const i = process.argv.indexOf('--grep');
  const grep = i > 0 ? process.argv[i + 1] : process.env.PROJECTS_CHAT_TEST_GREP;
  try {
    let live = false;
    const { result, exitCode, ms, notes } = await runInCodeServer({ grep, log: (l) => { live = true; console.log(l); } });
    const ok = result.ok && exitCode === 0;
    if (!live || !ok) console.log(formatResult(result, 'code-server')); // the per-test lines, unless already shown live
    for (const n of notes) console.log(`  · ${n}`);
    console.log(`${ok ? 'PASS' : 'FAIL'}: ${result.passed} passed, ${result.failed} failed; ${ms} ms from starting code-server to its hub stopped`);
    process.exitCode = ok ? 0 : 1;
  } catch (e) {
    console.error(`extension-host tests in code-server: ${e instanceof Error ? e.message : e}`);
    process.exitCode = 1;
  }
}
