#!/usr/bin/env node
// Development preview of the chat webview (not shipped): renders dist/webview.js with media/chat/chat.css
// in Chromium under a CSP like the host's, with a fake acquireVsCodeApi, in three themes; plays a scripted
// conversation and saves screenshots. `npm run build` first, then:
//   node media/chat/preview/preview.mjs [outDir]      (default /tmp/webview-shots)
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { defaultWebviewStyles, themeCss, themes } from './themes.mjs';
import { scenario } from './scenario.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const outDir = resolve(process.argv[2] ?? '/tmp/webview-shots');
const pageDir = '/tmp/webview-preview';
const NONCE = 'preview-nonce';

function loadPlaywright() {
  const candidates = [join(root, 'test/e2e/.code-server/node_modules'), join(root, 'test/e2e/node_modules'), root, '/tmp/pw/node_modules'];
  for (const dir of candidates) {
    try {
      return createRequire(join(dir, 'noop.js'))('playwright-core');
    } catch {
      // try the next place
    }
  }
  throw new Error('playwright-core not found: npm install --no-save --prefix /tmp/pw playwright-core');
}

/** The page the host would produce, with file: as the webview's resource origin. */
function page(theme) {
  const file = (path) => pathToFileURL(join(root, path)).href;
  return `<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src file: 'nonce-${NONCE}'; font-src file:; img-src file: data:; script-src 'nonce-${NONCE}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<style nonce="${NONCE}">${themeCss(theme)}\n${defaultWebviewStyles}</style>
<script nonce="${NONCE}">
  window.__posted = [];
  window.__state = window.__restore;
  window.__violations = [];
  document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
  window.acquireVsCodeApi = () => ({
    postMessage: (message) => { window.__posted.push(message); console.log('posted ' + JSON.stringify(message)); },
    getState: () => window.__state,
    setState: (state) => { window.__state = state; },
  });
</script>
<link rel="stylesheet" href="${file('dist/codicons/codicon.css')}" nonce="${NONCE}">
<link rel="stylesheet" href="${file('media/chat/chat.css')}" nonce="${NONCE}">
</head><body class="${theme.bodyClass}" data-vscode-theme-kind="${theme.kind}"><div id="app"></div><script nonce="${NONCE}" src="${file('dist/webview.js')}"></script></body></html>`;
}

const LAUNCH = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'];

/** Opens the view; `state` is what VS Code would give back to getState() (a view shown again). */
async function open(browser, themeName, width, state) {
  const html = join(pageDir, `${themeName}.html`);
  writeFileSync(html, page(themes[themeName]));
  const context = await browser.newContext({ viewport: { width, height: 900 }, deviceScaleFactor: 1 });
  if (state !== undefined) await context.addInitScript((saved) => (window.__restore = saved), state);
  const tab = await context.newPage();
  const problems = [];
  tab.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
  });
  tab.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  tab.on('dialog', (d) => {
    problems.push(`DIALOG (XSS!): ${d.message()}`);
    void d.dismiss();
  });
  await tab.goto(pathToFileURL(html).href);
  await tab.waitForFunction(() => window.__posted.length > 0);
  return { tab, problems, context };
}

const send = (tab, message) => tab.evaluate((m) => window.postMessage(m, '*'), message);
const settle = (tab) => tab.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));

async function play(tab, s) {
  await send(tab, s.init);
  for (const update of s.streamUpdates.slice(0, 2)) await send(tab, update);
  for (const bad of s.invalid) await send(tab, bad);
  await tab.evaluate(() => document.fonts.ready);
  await settle(tab);
}

async function checks(tab) {
  return tab.evaluate(() => ({
    firstPosted: window.__posted[0],
    images: document.querySelectorAll('.log img').length,
    scripts: document.querySelectorAll('.log script').length,
    javascriptLinks: [...document.querySelectorAll('.log a')].filter((a) => !/^(https?|mailto):/.test(a.getAttribute('href') ?? '')).length,
    violations: window.__violations,
  }));
}

/** Clicks every button kind, checks what is posted, and hides and shows the view again. */
async function interactions(browser, shoot) {
  const { tab, problems, context } = await open(browser, 'dark', 380);
  const s = scenario();
  await play(tab, s);
  await tab.click('.entry-bus summary');
  await tab.hover('.markdown .code-block');
  await tab.focus('.held .primary');
  await tab.keyboard.press('Shift+Tab');
  await tab.keyboard.press('Tab');
  await settle(tab);
  await shoot(tab, 'dark-expanded-focus');
  await tab.click('.held .primary');
  await tab.click('.held .secondary');
  await tab.click('.entry-ci [data-action="terminal"]');
  await tab.click('button.chip');
  await tab.click('[data-action="stop"]');
  await tab.click('.chip-add');
  const afterAdd = await tab.inputValue('.input');
  await tab.fill('.input', 'unsent draft');
  await tab.evaluate(() => (document.querySelector('.log').scrollTop = 300));
  await tab.waitForTimeout(400);
  const state = await tab.evaluate(() => window.__state);
  for (const m of s.selectWeb) await send(tab, m);
  await tab.click('.card-option');
  await send(tab, { type: 'cis', project: s.WEB, cis: [{ name: 'project-web-ai', kind: 'process', state: 'starting', detail: 'claude', unread: 0, held: 0, isDefault: true, hasTerminal: true }] });
  await settle(tab);
  await shoot(tab, 'dark-welcome');
  await tab.click('text=Open settings').catch(() => undefined);
  const posted = await tab.evaluate(() => window.__posted.slice(1));
  await context.close();

  // The view hidden and shown again: a new page, given the saved state back.
  const again = await open(browser, 'dark', 380, state);
  await play(again.tab, s);
  await settle(again.tab);
  const restored = await again.tab.evaluate(() => ({ draft: document.querySelector('.input').value, scrollTop: document.querySelector('.log').scrollTop }));
  await shoot(again.tab, 'dark-restored');
  await again.context.close();
  return { afterAdd, posted, state, restored, problems: [...problems, ...again.problems] };
}

async function main() {
  mkdirSync(outDir, { recursive: true });
  mkdirSync(pageDir, { recursive: true });
  const { chromium } = loadPlaywright();
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: LAUNCH });
  const shots = [];
  const shoot = async (tab, name) => {
    const path = join(outDir, `${name}.png`);
    await tab.screenshot({ path });
    shots.push(path);
  };
  const report = {};
  try {
    for (const themeName of ['dark', 'light', 'hc']) {
      const { tab, problems, context } = await open(browser, themeName, 380);
      const s = scenario();
      await play(tab, s);
      await shoot(tab, `${themeName}-bottom`);
      await tab.evaluate(() => (document.querySelector('.log').scrollTop = 0));
      await settle(tab);
      await shoot(tab, `${themeName}-top`);
      await tab.evaluate(() => (document.querySelector('.log').scrollTop = 700));
      await send(tab, s.streamUpdates[2]);
      await settle(tab);
      await shoot(tab, `${themeName}-middle-jump`);
      await tab.click('.jump');
      await tab.focus('.input');
      await tab.keyboard.type('/');
      await tab.keyboard.press('ArrowDown');
      await settle(tab);
      await shoot(tab, `${themeName}-suggestions`);
      await tab.keyboard.press('Escape');
      await tab.fill('.input', '');
      await send(tab, s.hubDown);
      await settle(tab);
      await shoot(tab, `${themeName}-hub-down`);
      await send(tab, s.hubConnected);
      for (const m of s.selectWeb) await send(tab, m);
      await settle(tab);
      await shoot(tab, `${themeName}-choose-default`);
      report[themeName] = { problems, ...(await checks(tab)) };
      await context.close();
    }
    // Narrow sidebar, and the keyboard: history recall, completion, send.
    const { tab, problems, context } = await open(browser, 'dark', 250);
    const s = scenario();
    await play(tab, s);
    await send(tab, s.streamUpdates[2]);
    await send(tab, s.hubRestarting);
    await settle(tab);
    await shoot(tab, 'dark-narrow-250');
    await tab.focus('.input');
    await tab.keyboard.type('/st');
    await tab.keyboard.press('Tab');
    await tab.keyboard.press('Enter');
    await tab.keyboard.type('hello\nworld', { delay: 0 });
    await tab.keyboard.press('Shift+Enter');
    await tab.keyboard.type('third line');
    const multi = await tab.inputValue('.input');
    await tab.keyboard.press('Enter');
    await tab.keyboard.press('ArrowUp');
    const recalled = await tab.inputValue('.input');
    await tab.fill('.input', 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk');
    await settle(tab);
    await shoot(tab, 'dark-narrow-tall-input');
    const posted = await tab.evaluate(() => window.__posted);
    report.keyboard = { multi, recalled, posted, problems };
    await context.close();
    report.interactions = await interactions(browser, shoot);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(report, null, 2));
  console.log(shots.join('\n'));
}

await main();
