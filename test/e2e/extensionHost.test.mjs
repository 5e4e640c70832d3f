// The extension-host tests (test/vscode/extension.test.cjs) inside code-server, as a node:test suite: they run
// in VS Code's (remote) extension host with the real `vscode` API, the real extension and a real hub in their
// own CIHUB_HOME; each of them is reported here as a subtest. Needs the extension built (`npm run build` or
// `npm run package`: the tests load this repository as the extension under development, with its dist/) and
// `node test/e2e/setup.mjs`. The same tests run in a desktop VS Code with `npm run test:desktop`.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { runInCodeServer } from '../vscode/runInCodeServer.mjs';

test('extension-host tests in code-server (VS Code 1.100.3 server, remote extension host)', { timeout: 300_000 }, async (t) => {
  const { result, exitCode, ms, notes } = await runInCodeServer({ log: (line) => t.diagnostic(line) });
  for (const r of result.tests) {
    await t.test(r.name, () => {
      if (!r.ok) assert.fail(r.error ?? 'failed');
    });
  }
  for (const n of notes) t.diagnostic(n);
  t.diagnostic(`${result.passed} passed, ${result.failed} failed; ${result.ms} ms in the extension host, ${ms} ms in all`);
  assert.equal(result.error, undefined, result.error);
  assert.ok(result.tests.length > 0, 'no extension-host test ran');
  assert.equal(exitCode, 0, `VS Code reported the extension host's exit code as ${exitCode}`);
});
