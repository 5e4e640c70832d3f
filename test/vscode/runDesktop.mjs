// Runs the extension-host tests (index.cjs → extension.test.cjs, the same files runInCodeServer.mjs uses) in a
// desktop VS Code through @vscode/test-electron, for machines that can download one (or have one):
//
//   npm run test:desktop                              # build, then this file
//   node test/vscode/runDesktop.mjs [--grep REGEXP]
//
// Environment:
//   VSCODE_TEST_VERSION      which VS Code to download: 'stable' (default), 'insiders', or a version (1.100.3)
//   VSCODE_EXECUTABLE_PATH   use this installed VS Code instead of downloading one
//   PROJECTS_CHAT_TEST_GREP  only the tests whose name matches
// The download goes to .vscode-test/ in the repository (@vscode/test-electron's cache). On Linux without a
// display, run it under a virtual one: `xvfb-run -a npm run test:desktop`.
// Exit codes: 0 all passed; 1 a test failed or VS Code failed; 2 VS Code could not be downloaded (no network).
import fs from 'node:fs';
import path from 'node:path';
import { runTests, TestRunFailedError } from '@vscode/test-electron';
import { ROOT, TESTS_ENTRY, requireBuild, makeRun, readResult, stopHub, formatResult } from './common.mjs';

/** Error codes of a download that failed for want of a network (DNS, refused, reset, timed out, offline proxy). */
const NETWORK_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENETUNREACH', 'EHOSTUNREACH', 'EPROTO', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET', 'CERT_HAS_EXPIRED', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN']);

/**
 * Why a download failed, when it was the network: the first network error code or message in the error's chain.
 * @param {unknown} error
 * @returns {string | undefined}
 */
function networkCause(error) {
  for (let e = error, depth = 0; e && depth < 10; depth++) {
    if (typeof e === 'string') return /Failed to get VS Code archive location|getaddrinfo|network|timed? ?out/i.test(e) ? e : undefined;
    if (typeof e !== 'object') return undefined;
    const code = 'code' in e && typeof e.code === 'string' ? e.code : undefined;
    const message = 'message' in e && typeof e.message === 'string' ? e.message : '';
    if ((code && NETWORK_CODES.has(code)) || /getaddrinfo|socket hang up|fetch failed|Failed to get VS Code archive location|TimeoutError|timed out/i.test(message)) {
      return `${code ? `${code}: ` : ''}${message}`.trim();
    }
    e = 'cause' in e ? e.cause : undefined;
  }
  return undefined;
}

/** @param {unknown} error */
const messageOf = (error) => (error instanceof Error ? error.message : String(error));

async function main() {
  const i = process.argv.indexOf('--grep');
  const grep = i > 0 ? process.argv[i + 1] : process.env.PROJECTS_CHAT_TEST_GREP;
  const version = process.env.VSCODE_TEST_VERSION || 'stable';
  const executable = process.env.VSCODE_EXECUTABLE_PATH || undefined;
  requireBuild();
  if (executable && !fs.existsSync(executable)) throw new Error(`VSCODE_EXECUTABLE_PATH=${executable} does not exist`);
  const t0 = Date.now();
  const run = makeRun({ grep });
  /** @type {number | undefined} */
  let code;
  /** @type {unknown} */
  let failure;
  try {
    code = await runTests({
      ...(executable ? { vscodeExecutablePath: executable } : { version }),
      cachePath: path.join(ROOT, '.vscode-test'),
      extensionDevelopmentPath: ROOT,
      extensionTestsPath: TESTS_ENTRY,
      launchArgs: [
        run.workspace,
        '--disable-extensions', // only the extension under development
        `--user-data-dir=${path.join(run.dir, 'user-data')}`,
        `--extensions-dir=${path.join(run.dir, 'extensions')}`,
        '--disable-telemetry',
        '--disable-gpu',
      ],
      extensionTestsEnv: { ...run.env, CIHUB_SOCKET: undefined, CIHUB_CI: undefined },
    });
  } catch (error) {
    failure = error;
  } finally {
    const stopped = await stopHub(run.home);
    if (stopped !== 'no hub running') console.log(`  · ${stopped}`);
  }
  const result = readResult(run.resultFile);
  run.cleanup();

  if (!result) {
    const network = failure !== undefined && !executable ? networkCause(failure) : undefined;
    if (network) {
      console.error(`test:desktop: cannot download VS Code (${version}) from update.code.visualstudio.com — no network access here (${network}). ` +
        'Run the same tests in code-server instead: `npm run test:vscode` (or `node --test test/e2e/extensionHost.test.mjs`); ' +
        'or point VSCODE_EXECUTABLE_PATH at an installed VS Code.');
      return 2;
    }
    const headless = process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY;
    console.error(`test:desktop: VS Code ran no tests${failure === undefined ? '' : `: ${messageOf(failure)}`}` +
      (headless ? ' (there is no DISPLAY: a desktop VS Code needs one on Linux; try `xvfb-run -a npm run test:desktop`)' : ''));
    if (failure instanceof Error && !(failure instanceof TestRunFailedError)) console.error(failure.stack);
    return 1;
  }
  console.log(formatResult(result, 'desktop VS Code'));
  const ok = result.ok && failure === undefined && code === 0;
  console.log(`${ok ? 'PASS' : 'FAIL'} in ${Date.now() - t0} ms${failure === undefined ? '' : ` (${messageOf(failure)})`}`);
  return ok ? 0 : 1;
}

try {
  process.exitCode = await main();
} catch (error) {
  console.error(`test:desktop: ${messageOf(error)}`);
  process.exitCode = 1;
}
// The cache dir is created before the download starts; leave no empty one behind when nothing was downloaded.
try { fs.rmdirSync(path.join(ROOT, '.vscode-test')); } catch { /* not empty, or not there */ }
