// Smoke test of the e2e harness in a real VS Code (code-server), with a throwaway extension generated on
// the fly (probe-extension.mjs). Run: node test/e2e/setup.mjs && node --test test/e2e/smoke.test.mjs
// Screenshots go to test/e2e/artifacts/ (smoke-dark.png, smoke-light.png, and smoke-failure-*.png).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  launchBrowser, notifications, openTerminal, openViewContainer, openWorkbench, reloadWindow, runCommand, screenshot, setTheme,
  startCodeServer, terminalText, terminalType, waitFor, webviewFrame,
} from './harness.mjs';
import { buildProbeExtension } from './probe-extension.mjs';
import { setup } from './setup.mjs';

describe('e2e harness smoke (code-server + probe extension)', { timeout: 300_000 }, () => {
  const token = `tok-${crypto.randomBytes(4).toString('hex')}`;
  /** @type {string} */ let tmp;
  /** @type {string} */ let folder;
  /** @type {import('./harness.mjs').CodeServer} */ let server;
  /** @type {import('playwright-core').Browser} */ let browser;
  /** @type {import('playwright-core').Page} */ let page;

  /** A step that leaves a screenshot behind when it fails. @param {string} name @param {() => Promise<void>} fn */
  const step = (name, fn) => test(name, { timeout: 90_000 }, async () => {
    try { await fn(); } catch (e) {
      if (page && !page.isClosed()) await screenshot(page, `smoke-failure-${name}`).catch(() => {});
      throw e;
    }
  });

  before(async () => {
    await setup(); // no-op (milliseconds) when already installed
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-smoke-'));
    folder = path.join(tmp, 'workspace-folder');
    fs.mkdirSync(folder);
    fs.writeFileSync(path.join(folder, 'notes.txt'), 'hello from the smoke test\n');
    let t = Date.now();
    const lap = () => { const ms = Date.now() - t; t = Date.now(); return `${ms} ms`; };
    const vsix = buildProbeExtension(tmp);
    console.log(`probe .vsix packaged: ${lap()}`);
    server = await startCodeServer({
      vsix, folder, theme: 'dark',
      env: { E2E_PROBE_TOKEN: token, CIHUB_HOME: path.join(tmp, 'cihub') },
    });
    console.log(`code-server installed the .vsix and answers HTTP: ${lap()}`);
    browser = await launchBrowser();
    console.log(`chromium launched: ${lap()}`);
    page = await openWorkbench(browser, server.url());
    console.log(`workbench ready: ${lap()}`);
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await server?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  step('the workbench shows the opened folder', async () => {
    assert.match(await page.title(), /workspace-folder/);
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'notes.txt' }).waitFor({ timeout: 15_000 });
  });

  step('a palette command of the extension runs', async () => {
    await runCommand(page, 'E2E Probe: Say Hello');
    await waitFor(async () => (await notifications(page)).includes('Hello from the E2E probe #1'), 15_000, 'the hello notification');
  });

  step('the webview view opens from the activity bar and shows the extension host env', async () => {
    await openViewContainer(page, 'E2E Probe');
    const frame = await webviewFrame(page, 'E2E probe webview');
    assert.equal(await frame.locator('#token').textContent(), token, 'env passed to startCodeServer reaches the extension host');
    assert.equal(await frame.locator('#count').textContent(), '1');
    await runCommand(page, 'E2E Probe: Say Hello');
    await waitFor(async () => (await frame.locator('#count').textContent()) === '2', 10_000, 'the webview to receive the message');
  });

  step('a terminal opens and its text can be read', async () => {
    await openTerminal(page);
    await terminalType(page, 'echo "sum=$((40+2)) $E2E_PROBE_TOKEN"');
    const text = await waitFor(async () => { const t = await terminalText(page); return t.includes(`sum=42 ${token}`) ? t : ''; },
      10_000, 'the echo output in the terminal');
    assert.match(text, /echo "sum=\$\(\(40\+2\)\) \$E2E_PROBE_TOKEN"/, 'the typed command line is in the text too');
    await screenshot(page, 'smoke-dark');
  });

  step('the window reloads and the extension comes back', async () => {
    await reloadWindow(page);
    // A new extension host: the count starts again, the webview view is restored where it was.
    const frame = await webviewFrame(page, 'E2E probe webview', { timeoutMs: 30_000 });
    assert.equal(await frame.locator('#token').textContent(), token);
    assert.equal(await frame.locator('#count').textContent(), '0');
    await runCommand(page, 'E2E Probe: Say Hello');
    await waitFor(async () => (await frame.locator('#count').textContent()) === '1', 15_000, 'the command after reload');
  });

  step('the light theme applies and a terminal works after reload', async () => {
    await setTheme(page, 'light');
    await openTerminal(page);
    await terminalType(page, 'echo "after reload: $((6*7))"');
    await waitFor(async () => (await terminalText(page)).includes('after reload: 42'), 10_000, 'the echo after reload');
    await screenshot(page, 'smoke-light');
  });

  step('stop() leaves no process behind', async () => {
    await browser.close();
    const { pid } = server;
    const shells = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
      try { return fs.readFileSync(`/proc/${d}/environ`, 'utf8').includes(`E2E_PROBE_TOKEN=${token}`); } catch { return false; }
    }).map(Number);
    assert.ok(shells.length >= 3, `code-server, extension host and shells carry the env (found ${shells.length})`);
    const t0 = Date.now();
    await server.stop();
    const left = shells.filter((p) => { try { process.kill(p, 0); return true; } catch { return false; } });
    assert.deepEqual(left, [], `processes left after stop(): ${left.join(' ')}`);
    assert.throws(() => process.kill(-pid, 0), 'the process group is gone');
    assert.ok(Date.now() - t0 < 10_000, 'stop() is bounded');
    assert.ok(!fs.existsSync(server.profileDir), 'the profile dir is removed');
  });
});
