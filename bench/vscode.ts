/**
 * VS Code benchmarks, in a real VS Code (code-server, driven by bench/vscode.mjs through the e2e harness):
 * cold start to the chat view, reload to the agent terminal back, extension activation to the chat view,
 * and a chat message to the fixture agent's reply shown in the webview — the last against the same agent
 * in a bare node-pty and through the hub without VS Code, measured here in the same run.
 * Skipped (with what to run) when code-server or the .vsix is missing.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as pty from 'node-pty';
import { z } from 'zod';
import { ChatSend, Event, RegisterProjects, Spawn, Watch } from '../server/protocol';
import { within } from '../test/helpers';
import { ROOT, benchHub, percentile, report } from './common';

/** Chat messages timed, in each of: bare node-pty, hub without VS Code, VS Code. */
const MESSAGES = 30;
const DEMO_AGENT = path.join(ROOT, 'test', 'fixtures', 'demo-agent.js');
const VSIX = path.join(ROOT, 'projects-chat.vsix');
const SCRIPT = path.join(ROOT, 'bench', 'vscode.mjs');
/** The whole VS Code part must finish within this (it takes ≈ 1.5–2 min on 2 cores). */
const CHILD_DEADLINE_MS = 6 * 60_000;
const INFO = 'informational';

/** What bench/vscode.mjs prints (all times in ms). */
const VscodeResult = z.object({
  skipped: z.string().optional(),
  error: z.string().optional(),
  cold: z.array(z.object({ workbench: z.number(), activated: z.number().optional(), activationEvent: z.string().optional(), hubConnected: z.number().optional(), view: z.number() })),
  chat: z.array(z.number()),
  reload: z.array(z.object({ workbench: z.number(), activated: z.number().optional(), hubConnected: z.number().optional(), view: z.number(), terminal: z.number() })),
  leftovers: z.array(z.string()),
  seconds: z.number(),
});
type VscodeResult = z.infer<typeof VscodeResult>;

const progress = (line: string): void => void process.stdout.write(`  [vscode] ${line}\n`);
const ms = (v: number): string => `${v.toFixed(1)} ms`;
const s = (v: number): string => `${(v / 1000).toFixed(2)} s`;
const p50 = (v: number[]): number => percentile(v, 0.5);
const p95 = (v: number[]): number => percentile(v, 0.95);
const times = (a: number, b: number): string => `×${a / b >= 100 ? (a / b).toFixed(0) : (a / b).toFixed(1)}`;
const load = (): string => os.loadavg().map((l) => l.toFixed(1)).join(' ');

/** A project folder named like the one VS Code opens (the agent names itself after it). */
function projectDir(): { root: string; app: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cibv-base-'));
  const app = path.join(root, 'app');
  fs.mkdirSync(app);
  return { root, app };
}

/** Raw baseline: the demo agent in a bare node-pty; `text\r` written → "you said: text" read back. */
async function rawReplies(app: string): Promise<number[]> {
  const p = pty.spawn(process.execPath, [DEMO_AGENT], { cwd: app, cols: 80, rows: 24, env: { ...process.env, CIHUB_CI: 'project-app-ai' } });
  let seen = '';
  let waiting: { want: string; resolve: () => void } | undefined;
  p.onData((d) => {
    seen += d;
    if (waiting && seen.includes(waiting.want)) waiting.resolve();
  });
  const expect = (want: string, write?: string): Promise<void> =>
    within(
      new Promise<void>((resolve) => {
        waiting = { want, resolve };
        if (write !== undefined) p.write(write);
        else if (seen.includes(want)) resolve();
      }),
      10_000,
      `"${want}" from the agent in node-pty`,
    );
  try {
    await expect('demo>');
    const lat: number[] = [];
    for (let i = 1; i <= MESSAGES; i++) {
      const text = `ping-${String(i).padStart(3, '0')}`;
      seen = '';
      const t0 = process.hrtime.bigint();
      await expect(`you said: ${text}`, `${text}\r`);
      lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return lat;
  } finally {
    p.kill();
  }
}

/** Through the hub without VS Code: ChatSend to the project's default CI → its `ci` chat entry has the reply. */
async function hubReplies(app: string): Promise<number[]> {
  const hub = await benchHub();
  try {
    await hub.client.call(RegisterProjects, { window: 'bench', folders: [{ path: app, name: 'app' }] });
    await hub.client.call(Watch, {});
    let waiting: { want: string; resolve: () => void } | undefined;
    hub.client.on(Event, (e) => {
      if (waiting && e.type === 'chat' && e.entry.role === 'ci' && e.entry.text.includes(waiting.want)) waiting.resolve();
    });
    await hub.client.call(Spawn, { kind: 'process', name: 'project-app-ai', command: [process.execPath, DEMO_AGENT], cwd: app, project: app, defaultCi: true });
    const send = (text: string, want: string): Promise<void> =>
      within(
        new Promise<void>((resolve, reject) => {
          waiting = { want, resolve };
          hub.client.call(ChatSend, { project: app, to: 'project-app-ai', text }).catch(reject);
        }),
        15_000,
        `"${want}" in the hub's chat`,
      );
    await send('hello', 'Hello! I am project-app-ai'); // the agent is up; not timed
    const lat: number[] = [];
    for (let i = 1; i <= MESSAGES; i++) {
      const text = `ping-${String(i).padStart(3, '0')}`;
      const t0 = process.hrtime.bigint();
      await send(text, `you said: ${text}`);
      lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return lat;
  } finally {
    await hub.stop();
  }
}

/** Newest modification time under the folders the .vsix is built from. */
function newestSource(): number {
  let newest = 0;
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  for (const dir of ['extension', 'server', 'client', 'media']) if (fs.existsSync(path.join(ROOT, dir))) walk(path.join(ROOT, dir));
  return newest;
}

/** Runs bench/vscode.mjs, passing its progress (stderr) through; resolves with its JSON result. */
function runVscode(): Promise<VscodeResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, BENCH_VSCODE_MESSAGES: String(MESSAGES) };
    delete env.CIHUB_HOME;
    delete env.CIHUB_SOCKET;
    delete env.CIHUB_CI;
    const child = spawn(process.execPath, [SCRIPT], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => process.stdout.write(d));
    // The child stops its code-servers, browser and hubs on SIGTERM (the harness's handlers).
    const timer = setTimeout(() => child.kill('SIGTERM'), CHILD_DEADLINE_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').pop() ?? '';
      try {
        resolve(VscodeResult.parse(JSON.parse(last)));
      } catch {
        reject(new Error(`bench/vscode.mjs ended (${signal ?? `exit ${code}`}) without a result${signal === 'SIGTERM' ? ` within ${CHILD_DEADLINE_MS / 1000} s` : ''}: ${last.slice(0, 300)}`));
      }
    });
  });
}

function skip(why: string, todo: string): void {
  report({ section: 'vscode', metric: `skipped: ${why}`, target: todo });
}

export async function vscodeBenchmarks(): Promise<void> {
  // Quick checks first (the child checks code-server's install fully).
  const tools = process.env.E2E_CODE_SERVER_DIR || path.join(ROOT, 'test', 'e2e', '.code-server');
  if (!fs.existsSync(path.join(tools, 'installed.json'))) return skip('code-server is not installed', 'run: node test/e2e/setup.mjs');
  if (!fs.existsSync(VSIX)) return skip('projects-chat.vsix does not exist', 'run: npm run package');
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cihub.js'))) return skip('dist/cihub.js does not exist', 'run: npm run package');
  if (newestSource() > fs.statSync(VSIX).mtimeMs) progress('note: projects-chat.vsix is older than the sources; `npm run package` to measure the current code');

  progress(`load average ${load()} (other work on the machine inflates these timings)`);
  // Baselines first, so they do not share the CPU with VS Code.
  const { root, app } = projectDir();
  let raw: number[] = [];
  let viaHub: number[] = [];
  try {
    progress(`baselines: ${MESSAGES} messages to the demo agent in node-pty, then through the hub without VS Code`);
    raw = await rawReplies(app);
    viaHub = await hubReplies(app);
  } catch (error) {
    report({ section: 'vscode', metric: 'chat baselines failed', target: error instanceof Error ? error.message : String(error), ok: false });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }

  let r: VscodeResult;
  try {
    r = await runVscode();
  } catch (error) {
    report({ section: 'vscode', metric: 'VS Code run failed', target: error instanceof Error ? error.message : String(error), ok: false });
    return;
  }
  if (r.skipped) return skip(r.skipped, '');
  if (r.error) {
    process.stdout.write(`  [vscode] error: ${r.error}\n`);
    report({ section: 'vscode', metric: `failed: ${r.error.split('\n')[0].slice(0, 80)}`, target: 'see the error above', ok: false });
  }

  const cold = r.cold;
  if (cold.length) {
    const wb = cold.map((c) => c.workbench);
    const view = cold.map((c) => c.view);
    const all = (k: 'activated' | 'hubConnected'): number[] => cold.flatMap((c) => c[k] ?? []);
    report({
      section: 'vscode',
      metric: `cold start → chat view p50 (${cold.length} runs)`,
      raw: `${s(p50(wb))} (wb)`,
      hub: s(p50(view)),
      ratio: `+${s(p50(view) - p50(wb))}`,
      target: INFO,
    });
    report({ section: 'vscode', metric: 'cold start → chat view p95 / max', raw: `${s(p95(wb))} (wb)`, hub: `${s(p95(view))} / ${s(Math.max(...view))}`, target: INFO });
    const activated = all('activated');
    const connected = all('hubConnected');
    if (activated.length) report({ section: 'vscode', metric: '  cold: extension activated p50', hub: s(p50(activated)), target: `${INFO} (${[...new Set(cold.map((c) => c.activationEvent))].join(', ')})` });
    if (connected.length) report({ section: 'vscode', metric: '  cold: hub connected (status bar) p50', hub: s(p50(connected)), target: INFO });
    const actToView = cold.flatMap((c) => (c.activated === undefined ? [] : [c.view - c.activated]));
    if (actToView.length) {
      report({ section: 'vscode', metric: 'activation → chat view p50 (cold)', hub: s(p50(actToView)), target: INFO });
      report({ section: 'vscode', metric: 'activation → chat view p95 (cold)', hub: s(p95(actToView)), target: INFO });
    }
  }

  const reload = r.reload;
  if (reload.length) {
    const wb = reload.map((x) => x.workbench);
    const term = reload.map((x) => x.terminal);
    const view = reload.map((x) => x.view);
    report({
      section: 'vscode',
      metric: `reload → agent terminal back p50 (${reload.length})`,
      raw: `${s(p50(wb))} (wb)`,
      hub: s(p50(term)),
      ratio: `+${s(p50(term) - p50(wb))}`,
      target: INFO,
    });
    report({ section: 'vscode', metric: 'reload → agent terminal back p95 / max', raw: `${s(p95(wb))} (wb)`, hub: `${s(p95(term))} / ${s(Math.max(...term))}`, target: INFO });
    report({ section: 'vscode', metric: 'reload → chat view p50', raw: `${s(p50(wb))} (wb)`, hub: s(p50(view)), ratio: `+${s(p50(view) - p50(wb))}`, target: INFO });
    const actToView = reload.flatMap((x) => (x.activated === undefined ? [] : [x.view - x.activated]));
    if (actToView.length) report({ section: 'vscode', metric: 'activation → chat view p50 (reload)', hub: s(p50(actToView)), target: INFO });
  }

  // The hub's own share is mostly by design: it types Enter 30 ms after the text (INJECT_ENTER_DELAY_MS) and
  // streams a reply's first text 150 ms after the CI's first output (REPLY_UPDATE_MS).
  if (raw.length && viaHub.length) {
    report({ section: 'vscode', metric: `chat → reply, hub, no VS Code p50 (${viaHub.length})`, raw: `${ms(p50(raw))} (pty)`, hub: ms(p50(viaHub)), ratio: times(p50(viaHub), p50(raw)), target: INFO });
    report({ section: 'vscode', metric: 'chat → reply, hub, no VS Code p95', raw: `${ms(p95(raw))} (pty)`, hub: ms(p95(viaHub)), ratio: times(p95(viaHub), p95(raw)), target: INFO });
  }
  if (r.chat.length) {
    const vs = r.chat;
    const against = (p: (v: number[]) => number) => (raw.length ? { raw: `${ms(p(raw))} (pty)`, ratio: times(p(vs), p(raw)) } : {});
    report({ section: 'vscode', metric: `chat Enter → reply shown p50 (${vs.length})`, hub: ms(p50(vs)), ...against(p50), target: `${INFO} (report p50/p95)` });
    report({ section: 'vscode', metric: 'chat Enter → reply shown p95', hub: ms(p95(vs)), ...against(p95), target: `${INFO} (report p50/p95)` });
    if (viaHub.length) {
      const added = (p: (v: number[]) => number): string => `${p(vs) >= p(viaHub) ? '+' : ''}${ms(p(vs) - p(viaHub))}`;
      report({ section: 'vscode', metric: '  VS Code over the hub alone, p50', raw: `${ms(p50(viaHub))} (hub)`, hub: ms(p50(vs)), ratio: added(p50), target: INFO });
      report({ section: 'vscode', metric: '  VS Code over the hub alone, p95', raw: `${ms(p95(viaHub))} (hub)`, hub: ms(p95(vs)), ratio: added(p95), target: INFO });
    }
  }

  report({
    section: 'vscode',
    metric: 'processes left behind',
    hub: String(r.leftovers.length),
    target: 'none',
    ok: r.leftovers.length === 0,
  });
  for (const l of r.leftovers) progress(`left behind (killed): ${l}`);
  progress(`VS Code part took ${r.seconds.toFixed(0)} s; load average now ${load()}`);
}
