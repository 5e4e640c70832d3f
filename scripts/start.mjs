#!/usr/bin/env node
// `npm start`: Projects Chat in a real VS Code, on a fresh machine, offline.
//  1. installs the npm packages if needed, builds and packages the .vsix;
//  2. installs code-server (VS Code 1.100.3 from npm) once, cached in test/e2e/.code-server;
//  3. installs the extension into a private extensions and user-data dir;
//  4. opens a demo workspace — two projects whose default CI is a scripted demo agent (works offline),
//     plus whatever real agent CLIs or Ollama this machine has — and prints the URL to open.
// Ctrl-C stops code-server and the hub it started.
//   npm start [-- --port 8080] [-- --theme light]
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { port: { type: 'string' }, theme: { type: 'string' } }, allowPositionals: false });
const log = (line) => process.stdout.write(`[start] ${line}\n`);

function run(command, args, what) {
  log(what);
  const r = spawnSync(command, args, { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`[start] ${what} failed (exit ${r.status ?? r.signal}); fix the error above and run npm start again\n`);
    process.exit(1);
  }
}

// 1. npm packages (node-pty compiles here), build and package.
const lock = path.join(ROOT, 'package-lock.json');
const installed = path.join(ROOT, 'node_modules', '.package-lock.json');
if (!fs.existsSync(installed) || fs.statSync(installed).mtimeMs < fs.statSync(lock).mtimeMs) {
  run('npm', ['ci', '--no-audit', '--no-fund'], 'installing npm packages (node-pty compiles; a minute or two the first time)');
}
{
  log('building and packaging projects-chat.vsix');
  const r = spawnSync('npm', ['run', '--silent', 'package'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(`${r.stdout}${r.stderr}\n[start] packaging failed (exit ${r.status}); fix the error above and run npm start again\n`);
    process.exit(1);
  }
}

// 2. code-server, cached.
const { setup } = await import('../test/e2e/setup.mjs');
await setup();
const { startCodeServer } = await import('../test/e2e/harness.mjs');

// 3. The demo workspace: two small projects, each answered by the scripted demo agent.
const demo = path.join(ROOT, '.demo');
const workspace = path.join(demo, 'projects-chat-demo.code-workspace');
for (const [name, files] of Object.entries({
  app: { 'README.md': '# app\n\nA demo project. Ask its CI: `hello`, `files`, `ask project-web-ai hi`.\n', 'index.js': "console.log('app');\n" },
  web: { 'README.md': '# web\n\nAnother demo project, with a CI of its own.\n', 'index.html': '<h1>web</h1>\n' },
})) {
  fs.mkdirSync(path.join(demo, name), { recursive: true });
  for (const [file, text] of Object.entries(files)) {
    if (!fs.existsSync(path.join(demo, name, file))) fs.writeFileSync(path.join(demo, name, file), text);
  }
}
fs.writeFileSync(workspace, `${JSON.stringify({ folders: [{ path: 'app' }, { path: 'web' }] }, null, 2)}\n`);
const quote = (s) => (/^[\w./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`);
const demoAgent = `${quote(process.execPath)} ${quote(path.join(ROOT, 'test', 'fixtures', 'demo-agent.js'))}`;

// A hub of the demo's own, so it never touches your real agents (short path: Unix socket limits).
const hubHome = path.join(os.tmpdir(), `projects-chat-demo-${process.getuid?.() ?? 0}`);
fs.mkdirSync(hubHome, { recursive: true, mode: 0o700 });

// What else this machine has.
const onPath = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const agents = ['claude', 'codex', 'aider', 'gemini', 'goose', 'opencode'].filter(onPath);
let ollamaModels = [];
try {
  const r = await fetch('http://127.0.0.1:11434/api/tags', { signal: AbortSignal.timeout(1000) });
  if (r.ok) ollamaModels = ((await r.json()).models ?? []).map((m) => m.name);
} catch {
  // no Ollama here: the demo agents work without it
}

const cihub = (...args) => {
  try {
    return execFileSync(process.execPath, [path.join(ROOT, 'dist', 'cihub.js'), ...args], { env: { ...process.env, CIHUB_HOME: hubHome }, encoding: 'utf8' });
  } catch (error) {
    return String(error.stdout ?? '') + String(error.stderr ?? '');
  }
};

// Each demo project's default CI, ready before the window opens.
cihub('hub');
for (const name of ['app', 'web']) {
  cihub('spawn', `project-${name}-ai`, '--project', path.join(demo, name), '--default', '--', process.execPath, path.join(ROOT, 'test', 'fixtures', 'demo-agent.js'));
}

// 4. code-server with the extension.
const port = Number(values.port ?? process.env.PORT ?? 8080);
const theme = values.theme === 'light' ? 'light' : 'dark';
log(`starting code-server on 127.0.0.1:${port} (hub state in ${hubHome})`);
const server = await startCodeServer({
  vsix: path.join(ROOT, 'projects-chat.vsix'),
  folder: workspace,
  theme,
  port,
  env: { CIHUB_HOME: hubHome },
  settings: { 'projectsChat.defaultCi': demoAgent, 'workbench.startupEditor': 'none' },
});

process.stdout.write(`
  Projects Chat is running in VS Code ${'1.100.3'} (code-server):

      ${server.url(workspace)}

  Open it in a browser, click the Projects Chat icon in the activity bar, and say "hello".
  The demo projects app and web each have a scripted demo agent as their default CI; try
  "ask project-web-ai hi" in app's chat, /status, /jobs, /attach project-app-ai, /spawn shell -- bash.
${agents.length ? `  Agent CLIs on this machine: ${agents.join(', ')} — start one with /spawn <name> -- ${agents[0]}\n` : ''}${
  ollamaModels.length ? `  Ollama answers here with ${ollamaModels.length} model(s): /spawn helper --provider ollama --model ${ollamaModels[0]}\n` : ''
}  The hub's CLI for this demo: CIHUB_HOME=${hubHome} node dist/cihub.js status

  Ctrl-C stops code-server and the demo's hub.
`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  log('stopping code-server and the hub…');
  await server.stop();
  log(cihub('stop').trim());
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
process.on('SIGHUP', stop);
// Keep running until stopped.
setInterval(() => undefined, 1 << 30);
