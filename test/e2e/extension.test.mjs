// Projects Chat in a real VS Code (code-server 4.100.3 = VS Code 1.100.3), driven as a user would: the
// activity bar, the chat, slash commands, terminals, reloads, a second window, a killed hub, the palette,
// and the themes. Needs `npm run package` (projects-chat.vsix) and `node test/e2e/setup.mjs`.
import { test, before, after, afterEach } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  startCodeServer, launchBrowser, openWorkbench, openViewContainer, webviewFrame, runCommand, reloadWindow,
  terminalText, screenshot, waitFor, setTheme,
} from './harness.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const VSIX = path.join(ROOT, 'projects-chat.vsix');
const CIHUB = path.join(ROOT, 'dist', 'cihub.js');
const DEMO_AGENT = path.join(ROOT, 'test', 'fixtures', 'demo-agent.js');

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'cie-'));
const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'cie-ws-'));
const app = path.join(workspace, 'app');
const web = path.join(workspace, 'web');
/** @type {NodeJS.ProcessEnv} */
const env = { ...process.env, CIHUB_HOME: home };
delete env.CIHUB_SOCKET;
delete env.CIHUB_CI;

/** @type {Awaited<ReturnType<typeof startCodeServer>>} */ let server;
/** @type {import('playwright-core').Browser} */ let browser;
/** @type {import('playwright-core').Page} */ let page;

/** @param {string[]} args */
function cihub(...args) {
  return execFileSync(process.execPath, [CIHUB, ...args], { env, encoding: 'utf8' });
}
/** @typedef {{ name: string, state: string, pid?: number, session?: string, attached?: number, queue?: { depth: number } }} CiRow */
/** @returns {CiRow[]} */
function ciList() {
  return JSON.parse(cihub('list', '--json'));
}
/**
 * @param {string} name
 * @returns {CiRow}
 */
function ci(name) {
  const found = ciList().find((c) => c.name === name);
  if (!found) throw new Error(`no CI ${name}`);
  return found;
}
function hubPid() {
  try {
    return Number(fs.readFileSync(path.join(home, 'run', 'hub.lock'), 'utf8').split(/\s+/)[0]) || undefined;
  } catch {
    return undefined;
  }
}

/** The chat webview's frame (opens the view first). */
async function chat(p = page, project = 'app') {
  await openViewContainer(p, 'Projects Chat');
  return webviewFrame(p, (f, text) => text.includes(`project-${project}-ai`), { timeoutMs: 30_000 });
}
/** @param {import('playwright-core').Frame} frame */
const chatText = (frame) => frame.evaluate(() => document.body.innerText);
/**
 * @param {import('playwright-core').Frame} frame
 * @param {string} text
 */
async function send(frame, text) {
  const input = frame.locator('textarea');
  await input.fill(text);
  await input.press('Enter');
}
/**
 * @param {import('playwright-core').Frame} frame
 * @param {string | RegExp} pattern
 * @param {string} what
 */
async function waitChat(frame, pattern, what, ms = 20_000) {
  return waitFor(async () => {
    const text = await chatText(frame);
    return (typeof pattern === 'string' ? text.includes(pattern) : pattern.test(text)) ? text : null;
  }, ms, what);
}

before(async () => {
  for (const [dir, file] of [[app, 'index.js'], [web, 'index.html']]) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, file), '\n');
  }
  server = await startCodeServer({
    vsix: VSIX,
    folder: app,
    env: { CIHUB_HOME: home },
    settings: { 'projectsChat.defaultCi': `${process.execPath} ${DEMO_AGENT}` },
  });
  browser = await launchBrowser();
  page = await openWorkbench(browser, server.url(app));
});

// The screen as each test left it, for the artifacts (a failing test's last state included).
afterEach(async (t) => {
  if (page && !page.isClosed()) await screenshot(page, `after-${t.name.slice(0, 60)}`).catch(() => undefined);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  try {
    cihub('stop');
  } catch {
    // no hub
  }
  fs.rmSync(home, { recursive: true, force: true });
  fs.rmSync(workspace, { recursive: true, force: true });
});

test('the Projects Chat view opens from the activity bar and lists the workspace folder', async () => {
  const frame = await chat();
  const options = await frame.locator('select option').allTextContents();
  assert.deepEqual(options.map((o) => o.trim()), ['app']);
  assert.match(await chatText(frame), /project-app-ai/);
});

test('a message to the fixture CI shows its reply; /spawn, /status, /jobs, /kill work; a bad command explains itself', async () => {
  const frame = await chat();
  await send(frame, 'hello');
  await waitChat(frame, 'Hello! I am project-app-ai, the demo agent of app', 'the agent\'s reply');
  await send(frame, '/spawn helper -- bash --norc --noprofile');
  await waitChat(frame, /Started helper \(pid \d+\)/, 'the spawn result');
  assert.equal(ci('helper').state, 'running');
  await send(frame, '/status');
  await waitChat(frame, /hub: pid \d+, version [\d.]+/, 'the status');
  await send(frame, '/jobs');
  await waitChat(frame, /NAME\s+KIND\s+STATE\s+PID\s+PROJECT\s+UPTIME\s+CAPTURED\s+QUEUE/, 'the jobs table');
  await send(frame, '/kill helper');
  await waitChat(frame, /Stopped helper/, 'the kill result');
  assert.equal(ci('helper').state, 'stopped');
  await send(frame, '/frobnicate');
  await waitChat(frame, /unknown command \/frobnicate; commands: \/spawn/, 'the explanation');
  // Enter on a partial command completes it from the suggestions; a second Enter sends it as typed.
  const input = frame.locator('textarea');
  await input.fill('/kill');
  await input.press('Enter');
  assert.equal(await input.inputValue(), '/kill ');
  await input.press('Enter');
  await waitChat(frame, 'kill needs a CI name: /kill <name>', 'the usage');
  await screenshot(page, 'chat-dark');
});

test('agent output is shown as text, never run: markup in a reply stays inert, and the webview\'s CSP blocks inline script', async () => {
  const frame = await chat();
  // The demo agent echoes what it is told ("you said: …"): this markup comes back as agent output.
  await send(frame, 'echo <img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b id=bold>bold</b>');
  await waitChat(frame, 'you said: echo <img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>', 'the markup shown literally');
  const inert = await frame.evaluate(() => ({
    pwned: /** @type {{ __pwned?: number }} */ (/** @type {unknown} */ (window)).__pwned,
    injected: document.querySelectorAll('.entry img, .entry script, #bold').length,
  }));
  assert.deepEqual(inert, { pwned: undefined, injected: 0 });
  // Even markup that got into the DOM could not run: inline script is not allowed by the CSP.
  const ran = await frame.evaluate(() => {
    const w = /** @type {{ __inline?: boolean }} */ (/** @type {unknown} */ (window));
    const script = document.createElement('script');
    script.textContent = 'window.__inline = true';
    document.body.append(script); // an allowed inline script runs right here, synchronously
    script.remove();
    return w.__inline === true;
  });
  assert.equal(ran, false, 'an inline script ran in the chat webview');
});

test('"Attach Terminal to CI…" opens a terminal on the agent\'s screen; typed input reaches it and its output appears', async () => {
  const row = page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: 'project-app-ai' }).first();
  await runCommand(page, 'Projects Chat: Attach Terminal to CI…', { until: () => row.isVisible(), ranWithinMs: 10_000 });
  await row.click();
  await waitFor(async () => (await terminalText(page)).includes('demo agent for project app'), 20_000, "the agent's screen in the terminal");
  await page.locator('.terminal-wrapper.active .xterm').first().click();
  await page.keyboard.type('count 3');
  await page.keyboard.press('Enter');
  await waitFor(async () => /line 1\s+line 2\s+line 3/.test(await terminalText(page)), 15_000, 'the output of typed input');
  assert.equal(ci('project-app-ai').attached, 1);
});

test('Developer: Reload Window: the history is still there, the agent was not restarted, its terminal is back', async () => {
  const before = ci('project-app-ai');
  await reloadWindow(page);
  const frame = await chat();
  await waitChat(frame, 'Hello! I am project-app-ai', 'the history after the reload');
  const afterReload = ci('project-app-ai');
  assert.equal(afterReload.pid, before.pid, 'same agent process');
  assert.equal(afterReload.session, before.session, 'same capture session');
  await waitFor(async () => (await page.locator('.terminal-wrapper').count()) > 0, 20_000, 'a terminal after the reload');
  await waitFor(async () => (await terminalText(page)).includes('line 3'), 20_000, 'the terminal re-attached with the screen');
  await waitFor(() => ci('project-app-ai').attached === 1, 20_000, 'one attachment again');
});

test('a second window on another folder: both projects listed in both; a message from one project\'s CI to the other\'s arrives', async () => {
  const second = await openWorkbench(browser, server.url(web));
  try {
    const webFrame = await chat(second, 'web');
    const frame = await chat();
    await waitFor(async () => (await frame.locator('select option').allTextContents()).length === 2, 20_000, 'web in the first window');
    assert.deepEqual((await webFrame.locator('select option').allTextContents()).map((o) => o.replace(/\s*\(.*\)$/, '').trim()).sort(), ['app', 'web']);
    // Each project's default CI exists once it is messaged.
    await send(webFrame, 'hello');
    await waitChat(webFrame, 'the demo agent of web', "web's agent");
    // app's agent messages web's agent over the bus; web's chat shows it.
    const frameApp = await chat();
    await send(frameApp, 'ask project-web-ai hello from app');
    await waitChat(webFrame, 'hello from app', 'the message in the web window');
    const webText = await chatText(webFrame);
    assert.match(webText, /project-app-ai\s*→\s*project-web-ai/);
    await screenshot(second, 'second-window');
  } finally {
    await second.close();
  }
});

const statusItem = () => page.locator('.part.statusbar [id$="projectsChat.status"]').first();
const statusText = () => statusItem().innerText().catch(() => '');

test('the hub is killed: the UI says so, recovers when it is back, and nothing acknowledged is lost', async () => {
  // Acknowledged messages, waiting in a CI's inbox.
  for (let i = 0; i < 5; i++) cihub('send', 'project-app-ai', `kept ${i}`);
  const pid = hubPid();
  assert.ok(pid);
  // Keep the hub from coming back at once (it refuses a runtime dir open to others), so the outage shows.
  const runtime = path.join(home, 'run');
  fs.chmodSync(runtime, 0o755);
  try {
    process.kill(pid, 'SIGKILL');
    const frame = await chat();
    await waitChat(frame, /Hub is (down|restarting)/, 'the chat banner', 20_000);
    await waitFor(async () => /hub (down|restarting)/.test(await statusText()), 20_000, 'the status bar saying so');
    await screenshot(page, 'hub-down');
  } finally {
    fs.chmodSync(runtime, 0o700);
  }
  await waitFor(() => {
    const now = hubPid();
    return now && now !== pid;
  }, 30_000, 'a new hub');
  // Connected, it shows the running CIs' count ("$(hubot) 1").
  await waitFor(async () => /^\d+/.test((await statusText()).trim()), 30_000, 'the status bar to recover');
  const frame = await chat();
  await waitFor(async () => !(await frame.locator('.banner').isVisible()), 30_000, 'the banner to go');
  const inbox = cihub('recv', 'project-app-ai');
  for (let i = 0; i < 5; i++) assert.match(inbox, new RegExp(`kept ${i}`));
  // The agent is back too (a new process: the old one's terminal died with the hub).
  await waitFor(() => ci('project-app-ai').state === 'running', 20_000, 'the agent running again');
  await send(frame, 'hello');
  await waitChat(frame, /(Hello! I am project-app-ai[\s\S]*){2}/, 'a reply after the recovery', 30_000);
});

test('the command palette: every Projects Chat command is registered and runs', async () => {
  /** @type {{ contributes: { commands: { command: string, title: string, category: string }[] } }} */
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const titles = manifest.contributes.commands.map((c) => `${c.category}: ${c.title}`).sort();
  // What the palette lists.
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget .quick-input-box input');
  await input.fill('>Projects Chat: ');
  await waitFor(async () => (await page.locator('.quick-input-widget .quick-input-list .monaco-list-row').count()) >= titles.length, 10_000, 'the commands');
  const listed = await page.$$eval('.quick-input-widget .quick-input-list .monaco-list-row .label-name', (els) => els.map((e) => e.textContent ?? ''));
  await page.keyboard.press('Escape');
  for (const title of titles) assert.ok(listed.includes(title), `${title} is in the palette (listed: ${listed.join(' | ')})`);

  const quick = page.locator('.quick-input-widget .quick-input-box input');
  const quickTitle = page.locator('.quick-input-widget .quick-input-title');
  // Each step of a multi-step input has its own title: wait for it, so an answer never lands in the last step.
  const shows = (/** @type {string} */ title) => async () => (await quick.isVisible()) && (await quickTitle.innerText()).includes(title);
  const step = (/** @type {string} */ title) => waitFor(shows(title), 10_000, `the "${title}" input`);
  // A command whose first step is an input: run again if that input does not show (see runCommand). Most
  // ask the hub for its CIs before their pick shows, so they get the 10 s a step waits.
  const open = (/** @type {string} */ command, /** @type {string} */ title) => runCommand(page, command, { until: shows(title), ranWithinMs: 10_000 });
  const pick = async (/** @type {string} */ title, /** @type {string} */ text) => {
    await step(title);
    const row = page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: text }).first();
    await waitFor(() => row.isVisible(), 10_000, `"${text}" in the pick`);
    await row.click();
  };
  const answer = async (/** @type {string} */ title, /** @type {string} */ text) => {
    await step(title);
    await quick.fill(text);
    await quick.press('Enter');
  };

  await runCommand(page, 'Projects Chat: Open Chat');
  await chat();

  await open('Projects Chat: Spawn CI…', 'Spawn CI (1/2)');
  await answer('Spawn CI (1/2)', 'palette');
  await answer('Spawn CI (2/2)', 'bash --norc');
  await waitFor(() => ci('palette').state === 'running', 15_000, 'palette to run');

  await open('Projects Chat: Send Message to CI…', 'Send a message to which CI?');
  await pick('Send a message to which CI?', 'palette');
  await answer('Message to palette', 'from the palette');
  await waitFor(() => ci('palette').queue?.depth === 1, 15_000, 'the message queued');

  const editorText = async () => (await page.locator('.editor-group-container.active .view-lines').first().innerText().catch(() => '')).replace(/\u00a0/g, ' ');
  // Commands that ask the hub before they show anything get the waits they had before `until`.
  await runCommand(page, 'Projects Chat: Show Hub Status', { until: async () => /hub: pid \d+/.test(await editorText()), ranWithinMs: 15_000 });

  await open('Projects Chat: Restart CI…', 'Restart which CI?');
  const pidBefore = ci('palette').pid;
  await pick('Restart which CI?', 'palette');
  await waitFor(() => ci('palette').pid !== pidBefore && ci('palette').state === 'running', 15_000, 'palette restarted');

  await open('Projects Chat: Attach Terminal to CI…', 'Attach a terminal to which CI?');
  await pick('Attach a terminal to which CI?', 'palette');
  await waitFor(() => (ci('palette').attached ?? 0) >= 1, 15_000, 'a terminal on palette');

  await open('Projects Chat: Export Transcript…', 'Export the transcript of which CI?');
  await pick('Export the transcript of which CI?', 'palette');
  await pick('Format', 'md');
  // VS Code's own save dialog (a quick input with a path): accept the suggested file.
  await waitFor(() => quick.isVisible(), 10_000, 'the save dialog');
  const target = path.join(app, 'palette-transcript.md');
  await quick.fill(target);
  await quick.press('Enter');
  await waitFor(() => fs.existsSync(target), 15_000, 'the transcript file');
  assert.match(fs.readFileSync(target, 'utf8'), /^# palette — session/);
  // It opens in an editor.
  await waitFor(() => page.locator('.tab.active', { hasText: 'palette-transcript.md' }).isVisible(), 15_000, 'the transcript in an editor');

  await open('Projects Chat: Kill CI…', 'Stop which CI?');
  await pick('Stop which CI?', 'palette');
  await waitFor(() => ci('palette').state === 'stopped', 15_000, 'palette stopped');

  // Done when the Output view is the panel's and has the focus: it takes the focus only after the command
  // fetched the hub's log, and a palette opened before that would lose it (the terminal's tab says "Projects
  // Chat" too, so the panel's text is no sign).
  await runCommand(page, 'Projects Chat: Show Logs', {
    until: () => page.evaluate(() => {
      const tab = document.querySelector('.part.panel .composite-bar .action-item.checked');
      return /output/i.test(`${tab?.textContent} ${tab?.querySelector('.action-label')?.getAttribute('aria-label')}`)
        && !!document.activeElement?.closest('.part.panel');
    }),
    ranWithinMs: 15_000,
  });

  await open('Projects Chat: Set API Key…', 'Set the API key of which provider?');
  await pick('Set the API key of which provider?', 'Anthropic');
  await step('API key for Anthropic');
  await page.keyboard.press('Escape');

  await open('Projects Chat: Spawn Model CI…', 'Model CI (1/3)');
  await pick('Model CI (1/3)', 'Ollama');
  await step('Model CI (2/3): base URL');
  await page.keyboard.press('Escape');

  const pid = hubPid();
  const confirm = page.locator('.monaco-dialog-box .monaco-button', { hasText: 'Restart Hub' }).first();
  await runCommand(page, 'Projects Chat: Restart Hub', { until: () => confirm.isVisible(), ranWithinMs: 10_000 });
  await confirm.click();
  await waitFor(() => {
    const now = hubPid();
    return now && now !== pid;
  }, 30_000, 'a restarted hub');
});

/** WCAG contrast ratio of two CSS colors "rgb(r, g, b)". */
/**
 * @param {string} a
 * @param {string} b
 */
function contrast(a, b) {
  const lum = (/** @type {string} */ c) => {
    const [r, g, bl] = (c.match(/\d+(\.\d+)?/g) ?? ['0', '0', '0']).slice(0, 3).map(Number).map((v) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

for (const theme of /** @type {const} */ (['light', 'dark'])) {
  test(`the ${theme} theme: the chat is visible and legible`, async () => {
    await setTheme(page, theme);
    const frame = await chat();
    await waitChat(frame, 'Hello! I am project-app-ai', 'the chat');
    const measured = await frame.evaluate(() => {
      // The webview is transparent; what shows through is the side bar's background.
      const transparent = (/** @type {string} */ c) => /^rgba\(\d+, \d+, \d+, 0\)$|^transparent$/.test(c);
      const probe = document.createElement('div');
      probe.style.backgroundColor = 'var(--vscode-sideBar-background)';
      document.body.append(probe);
      const viewBg = getComputedStyle(probe).backgroundColor;
      probe.remove();
      const backgroundOf = (/** @type {Element} */ el) => {
        for (let n = /** @type {Element | null} */ (el); n; n = n.parentElement) {
          const bg = getComputedStyle(n).backgroundColor;
          if (!transparent(bg)) return bg;
        }
        return viewBg;
      };
      const entries = [...document.querySelectorAll('.entry')].slice(-6).map((el) => {
        const text = el.querySelector('.entry-body, .markdown, pre') ?? el;
        const box = text.getBoundingClientRect();
        const inView = box.width > 0 && box.height > 8 && box.left >= 0 && box.right <= innerWidth + 1;
        return { text: text.textContent ?? '', color: getComputedStyle(text).color, bg: backgroundOf(text), inView, w: box.width };
      });
      const input = document.querySelector('textarea');
      return { viewBg, entries, input: input ? { color: getComputedStyle(input).color, bg: backgroundOf(input) } : undefined };
    });
    assert.ok(!/^rgba\(\d+, \d+, \d+, 0\)$/.test(measured.viewBg), `the view background is known (${measured.viewBg})`);
    const dark = contrast(measured.viewBg, 'rgb(0, 0, 0)') < contrast(measured.viewBg, 'rgb(255, 255, 255)');
    assert.equal(dark, theme === 'dark', `the view background ${measured.viewBg} suits the ${theme} theme`);
    assert.ok(measured.entries.length >= 3, 'entries are rendered');
    const reply = measured.entries.find((e) => e.text.includes('Hello! I am project-app-ai'));
    assert.ok(reply && reply.w > 150, "the agent's reply is shown at a readable width");
    for (const e of measured.entries) {
      assert.ok(e.inView, `the entry "${e.text.slice(0, 40)}" is laid out inside the view`);
      assert.ok(contrast(e.color, e.bg) >= 4.5, `text ${e.color} on ${e.bg} has contrast ${contrast(e.color, e.bg).toFixed(2)}`);
    }
    assert.ok(measured.input && contrast(measured.input.color, measured.input.bg) >= 4.5, 'the input is legible');
    await screenshot(page, `chat-${theme}`);
  });
}

