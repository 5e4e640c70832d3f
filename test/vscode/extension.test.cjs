// @ts-check
// Extension-host tests: they run INSIDE VS Code's extension host, with the real `vscode` API, against the
// real extension (this repository, loaded as the extension under development) and a real hub in the run's
// own CIHUB_HOME. The same file runs in code-server (runInCodeServer.mjs) and in a desktop VS Code
// (runDesktop.mjs, @vscode/test-electron). Tests run in order, and each can also run alone.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vscode = require('vscode');
const { ROOT, EXTENSION_ID, manifest, waitFor, hub, hubAnswers, hubSocket } = require('./support.cjs');

/** @typedef {{ name: string, timeoutMs?: number, fn: () => Promise<void> }} TestCase  one test: a name, a body, a deadline (default 30 s) */

/** The CI these tests spawn (a plain bash) and attach terminals to. */
const CI = 'vscode-test-sh';
const TERMINAL_NAME = `CI: ${CI}`;

/** The window's first folder (both runners open one). */
function workspaceFolder() {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'the test window has no workspace folder; the runner should open one');
  assert.equal(folder.uri.scheme, 'file', `the workspace folder is ${folder.uri.toString()}, not a local file`);
  return folder.uri.fsPath;
}

/** @param {string} name */
const terminalNamed = (name) => vscode.window.terminals.find((t) => t.name === name && t.exitStatus === undefined);

/**
 * Runs a command that shows a quick pick and accepts its first (active) item as a user pressing Enter
 * would, retrying until the command has settled (the pick appears only after the command asked the hub).
 * @param {string} command
 * @param {unknown[]} args
 * @param {number} ms
 */
async function runAcceptingPick(command, args, ms) {
  let settled = false;
  /** @type {unknown} */
  let failure;
  const run = Promise.resolve(vscode.commands.executeCommand(command, ...args)).then(
    () => { settled = true; },
    (error) => { settled = true; failure = error; },
  );
  try {
    await waitFor(async () => {
      if (!settled) await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
      return settled;
    }, ms, `${command} to finish after accepting its pick`, 250);
  } finally {
    if (!settled) await vscode.commands.executeCommand('workbench.action.closeQuickOpen');
  }
  await run;
  if (failure) throw failure;
}

/**
 * Types a shell line into an attached terminal and waits for the file it writes: proof that the keys went
 * from VS Code through the extension's Pseudoterminal and the hub into the CI's PTY, and ran there.
 * @param {vscode.Terminal} terminal
 * @param {string} marker
 */
async function typeAndExpectFile(terminal, marker) {
  const file = path.join(workspaceFolder(), `${marker}.txt`);
  fs.rmSync(file, { force: true });
  terminal.sendText(`echo ${marker} > ${JSON.stringify(file)}`);
  await waitFor(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8').trim() === marker, 15_000, `${file} written by the CI's shell`);
}

/**
 * The extension is active and its hub answers: what every test that talks to the hub starts with, so any
 * test can also run alone (PROJECTS_CHAT_TEST_GREP).
 */
async function hubReady() {
  await vscode.extensions.getExtension(EXTENSION_ID)?.activate();
  await waitFor(hubAnswers, 30_000, `the hub the extension starts, on ${hubSocket()}`);
}

/** Spawns the tests' CI (a plain bash in the workspace folder) unless it is already running. */
async function ensureCi() {
  await hubReady();
  if ((await hub.ci(CI))?.state === 'running') return;
  await hub.remove(CI).catch(() => undefined);
  const folder = workspaceFolder();
  const spawned = await hub.spawn({
    kind: 'process', name: CI, command: ['bash', '--noprofile', '--norc'], cwd: folder, project: folder,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? folder, TERM: 'xterm-256color' },
  });
  assert.notEqual(spawned.state, 'failed', `${CI} did not start: ${spawned.reason ?? spawned.state}`);
  await waitFor(async () => (await hub.ci(CI))?.state === 'running', 10_000, `${CI} to be running`);
}

/**
 * The pick shows the CIs `filter` admits; the tests accept its first row, so it must be the tests' CI alone.
 * @param {(ci: import('./support.cjs').CiInfo) => boolean} filter
 */
async function assertPickOffersOnlyTestCi(filter) {
  const offered = (await hub.list()).filter(filter).map((c) => c.name);
  assert.deepEqual(offered, [CI], `the pick would offer ${offered.join(', ')}; the test accepts its first row`);
}

/** @param {number} count */
async function waitAttached(count) {
  return waitFor(async () => (await hub.ci(CI))?.attached === count, 15_000, `${CI} to have ${count} attached terminal(s) in the hub`);
}

/** @type {TestCase[]} */
const tests = [
  {
    name: 'the extension under test is this repository and it activates',
    fn: async () => {
      const extension = vscode.extensions.getExtension(EXTENSION_ID);
      assert.ok(extension, `${EXTENSION_ID} is not installed in this extension host`);
      assert.equal(fs.realpathSync(extension.extensionPath), fs.realpathSync(ROOT), 'a different copy of the extension was loaded');
      await extension.activate();
      assert.equal(extension.isActive, true);
    },
  },
  {
    name: 'every command in contributes.commands is registered',
    fn: async () => {
      const registered = new Set(await vscode.commands.getCommands(true));
      const declared = manifest.contributes.commands.map((c) => c.command);
      assert.ok(declared.length > 0, 'package.json declares no commands');
      const missing = declared.filter((id) => !registered.has(id));
      assert.deepEqual(missing, [], `declared in package.json but not registered: ${missing.join(', ')}`);
    },
  },
  {
    name: 'every setting in contributes.configuration has its declared default',
    fn: async () => {
      const properties = Object.entries(manifest.contributes.configuration.properties);
      assert.ok(properties.length > 0, 'package.json declares no settings');
      const config = vscode.workspace.getConfiguration();
      for (const [key, schema] of properties) {
        const inspected = config.inspect(key);
        assert.ok(inspected, `VS Code does not know the setting ${key}`);
        assert.deepEqual(inspected.defaultValue, schema.default, `default of ${key}`);
        assert.deepEqual(config.get(key), schema.default, `${key} is set somewhere in the test profile`);
      }
    },
  },
  {
    name: "the extension starts the hub in CIHUB_HOME and registers this window's folder",
    timeoutMs: 45_000,
    fn: async () => {
      const folder = workspaceFolder();
      await hubReady();
      const project = await waitFor(async () => (await hub.projects()).find((p) => p.path === folder && p.windows >= 1), 15_000, `${folder} registered as a project`);
      assert.equal(project.name, path.basename(folder));
      const { hub: info } = await hub.status();
      assert.ok(info.clients >= 2, `the hub has ${info.clients} client(s); expected this window and the test's own connection`);
    },
  },
  {
    name: 'Show Hub Status opens a document with the running hub\'s pid and socket',
    fn: async () => {
      await hubReady();
      const { hub: info } = await hub.status();
      await vscode.commands.executeCommand('projectsChat.showStatus');
      const editor = await waitFor(() => {
        const e = vscode.window.activeTextEditor;
        return e && e.document.uri.scheme === 'projects-chat' ? e : undefined;
      }, 10_000, 'the status document to be the active editor');
      const text = editor.document.getText();
      assert.match(text, new RegExp(`^hub: pid ${info.pid}, version `), text);
      assert.ok(text.includes(info.socket), `the status does not name the socket ${info.socket}:\n${text}`);
      await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
    },
  },
  {
    name: 'a changed setting reaches the hub while it runs, and its default comes back',
    fn: async () => {
      const section = vscode.workspace.getConfiguration('projectsChat');
      const fallback = manifest.contributes.configuration.properties['projectsChat.inject.quietMs'].default;
      await hubReady();
      assert.equal((await hub.config()).injectQuietMs, fallback);
      try {
        await section.update('inject.quietMs', 2345, vscode.ConfigurationTarget.Global);
        await waitFor(async () => (await hub.config()).injectQuietMs === 2345, 10_000, 'the hub config to show injectQuietMs 2345');
      } finally {
        await section.update('inject.quietMs', undefined, vscode.ConfigurationTarget.Global);
      }
      await waitFor(async () => (await hub.config()).injectQuietMs === fallback, 10_000, `the hub config to show injectQuietMs ${fallback} again`);
    },
  },
  {
    name: 'Attach Terminal (with a CI name) types into the CI\'s PTY through the hub',
    timeoutMs: 40_000,
    fn: async () => {
      await ensureCi();
      await vscode.commands.executeCommand('projectsChat.attachTerminal', CI);
      const terminal = await waitFor(() => terminalNamed(TERMINAL_NAME), 10_000, `a terminal named "${TERMINAL_NAME}"`);
      await waitAttached(1);
      await typeAndExpectFile(terminal, 'typed-through-attach-terminal');
      terminal.dispose();
      await waitAttached(0);
    },
  },
  {
    name: 'the projectsChat.agent terminal profile attaches to the CI picked',
    timeoutMs: 40_000,
    fn: async () => {
      assert.equal(terminalNamed(TERMINAL_NAME), undefined, 'a terminal from the previous test is still open');
      await ensureCi();
      const profile = manifest.contributes.terminal.profiles.find((p) => p.id === 'projectsChat.agent');
      assert.ok(profile, 'package.json does not contribute the projectsChat.agent terminal profile');
      // What "Create New Terminal (With Profile)" → "Projects Chat: Attach to CI" does; its provider asks which CI.
      await runAcceptingPick('workbench.action.terminal.newWithProfile', [{ config: { extensionIdentifier: EXTENSION_ID, id: profile.id, title: profile.title } }], 20_000);
      const terminal = await waitFor(() => terminalNamed(TERMINAL_NAME), 10_000, `a terminal named "${TERMINAL_NAME}" from the profile`);
      await waitAttached(1);
      await typeAndExpectFile(terminal, 'typed-through-terminal-profile');
      terminal.dispose();
      await waitAttached(0);
    },
  },
  {
    name: 'Kill CI… stops the CI picked',
    timeoutMs: 40_000,
    fn: async () => {
      await ensureCi();
      await assertPickOffersOnlyTestCi((c) => c.kind !== 'external' && (c.state === 'running' || c.state === 'backoff' || c.state === 'starting'));
      await runAcceptingPick('projectsChat.killCi', [], 20_000);
      const ci = await waitFor(async () => {
        const c = await hub.ci(CI);
        return c && c.state !== 'running' ? c : undefined;
      }, 15_000, `${CI} to stop`);
      assert.equal(ci.state, 'stopped', `${CI} is ${ci.state}${ci.reason ? ` (${ci.reason})` : ''}`);
      await hub.remove(CI);
    },
  },
];

module.exports = { tests };
