// @ts-check
// The `extensionTestsPath` entry point, for both runners: VS Code's extension host `require`s this file and
// awaits `run()`; a rejection makes the extension host exit with code 1, a resolution with 0. No mocha: the
// tests are a list of async functions (extension.test.cjs) run in order, each with a deadline.
//
// Environment (set by runInCodeServer.mjs / runDesktop.mjs):
//   CIHUB_HOME                  this run's own hub directory (required: the tests never touch the user's hub)
//   PROJECTS_CHAT_TEST_RESULT   where to write the results as JSON (optional)
//   PROJECTS_CHAT_TEST_GREP     run only the tests whose name matches this regular expression (optional)
'use strict';

const fs = require('node:fs');
const path = require('node:path');

/**
 * @typedef {object} TestResult
 * @property {string} name
 * @property {boolean} ok
 * @property {number} ms
 * @property {string} [error]   the message (and stack) of a failure
 */
/**
 * @typedef {object} RunResult  what PROJECTS_CHAT_TEST_RESULT receives
 * @property {boolean} ok
 * @property {number} passed
 * @property {number} failed
 * @property {number} ms
 * @property {{ version: string, appName: string, appHost: string, remoteName: string | undefined, uiKind: string }} vscode
 * @property {TestResult[]} tests
 * @property {string} [error]   a failure outside any test (loading the tests, the environment)
 */

const DEFAULT_TIMEOUT_MS = 30_000;
const log = (/** @type {string} */ line) => console.log(`[projects-chat tests] ${line}`);

/**
 * @param {() => Promise<void>} fn @param {number} ms @param {string} name
 * @returns {Promise<void>}
 */
function withDeadline(fn, ms, name) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`"${name}" did not finish within ${ms} ms`)), ms);
  });
  return /** @type {Promise<void>} */ (Promise.race([fn(), deadline])).finally(() => clearTimeout(timer));
}

/** @param {unknown} error */
const describe = (error) => (error instanceof Error ? error.stack || error.message : String(error));

/** @param {RunResult} result */
function writeResult(result) {
  const file = process.env.PROJECTS_CHAT_TEST_RESULT;
  if (!file) return;
  const tmp = `${file}.${process.pid}.tmp`;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(tmp, `${JSON.stringify(result, null, 2)}\n`);
  fs.renameSync(tmp, file); // the runner polls for the file: it only ever sees it whole
}

async function run() {
  const started = Date.now();
  const vscode = require('vscode');
  /** @type {RunResult} */
  const result = {
    ok: false, passed: 0, failed: 0, ms: 0, tests: [],
    vscode: { version: vscode.version, appName: vscode.env.appName, appHost: vscode.env.appHost, remoteName: vscode.env.remoteName, uiKind: vscode.UIKind[vscode.env.uiKind] },
  };
  log(`${vscode.env.appName} ${vscode.version} (${result.vscode.appHost}${vscode.env.remoteName ? `, remote ${vscode.env.remoteName}` : ''}), CIHUB_HOME=${process.env.CIHUB_HOME ?? '(unset)'}`);
  try {
    if (!process.env.CIHUB_HOME) throw new Error('CIHUB_HOME is not set: refusing to run against the user\'s own hub');
    const grep = process.env.PROJECTS_CHAT_TEST_GREP ? new RegExp(process.env.PROJECTS_CHAT_TEST_GREP) : undefined;
    /** @type {{ tests: import('./extension.test.cjs').TestCase[] }} */
    const { tests } = require('./extension.test.cjs');
    for (const test of tests) {
      if (grep && !grep.test(test.name)) continue;
      const t0 = Date.now();
      try {
        await withDeadline(test.fn, test.timeoutMs ?? DEFAULT_TIMEOUT_MS, test.name);
        result.tests.push({ name: test.name, ok: true, ms: Date.now() - t0 });
        log(`ok   ${test.name} (${Date.now() - t0} ms)`);
      } catch (error) {
        result.tests.push({ name: test.name, ok: false, ms: Date.now() - t0, error: describe(error) });
        log(`FAIL ${test.name} (${Date.now() - t0} ms)\n${describe(error)}`);
      }
    }
    if (result.tests.length === 0) throw new Error(`no test matches PROJECTS_CHAT_TEST_GREP=${process.env.PROJECTS_CHAT_TEST_GREP}`);
  } catch (error) {
    result.error = describe(error);
    log(`ERROR ${result.error}`);
  }
  result.passed = result.tests.filter((t) => t.ok).length;
  result.failed = result.tests.length - result.passed;
  result.ok = !result.error && result.failed === 0;
  result.ms = Date.now() - started;
  writeResult(result);
  log(`${result.passed} passed, ${result.failed} failed in ${result.ms} ms`);
  if (!result.ok) throw new Error(result.error ?? `${result.failed} of ${result.tests.length} extension-host tests failed: ${result.tests.filter((t) => !t.ok).map((t) => t.name).join('; ')}`);
}

module.exports = { run };
