/**
 * Test helpers: a private CIHUB_HOME per test, the real `cihub` CLI and hub bundles from dist/, and
 * waiting for conditions with a deadline (never a fixed sleep).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { HubClient, connectSocket } from '../client/hubClient';
import { hubPaths } from '../server/paths';
import { List, type CiInfo } from '../server/protocol';
import { Pty } from '../server/pty';
import { processEnv } from '../server/env';

export const ROOT = path.resolve(__dirname, '..', '..');
export const CIHUB = path.join(ROOT, 'dist', 'cihub.js');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');

export interface Home {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  readonly paths: ReturnType<typeof hubPaths>;
  /** Stops the hub (if any) and removes the directory. */
  cleanup(): Promise<void>;
}

/** A fresh CIHUB_HOME under /tmp (short, for Unix socket path limits). */
export function makeHome(): Home {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cih-'));
  const env: NodeJS.ProcessEnv = { ...process.env, CIHUB_HOME: dir };
  delete env.CIHUB_SOCKET;
  delete env.CIHUB_CI;
  const paths = hubPaths(env);
  return {
    dir,
    env,
    paths,
    cleanup: async () => {
      const pid = hubPid(paths.lock);
      await cihub(['stop'], { env }).catch(() => undefined);
      if (pid) {
        await waitFor(() => !alive(pid), 15_000, `hub ${pid} to exit`).catch(() => {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone already
          }
        });
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function hubPid(lockFile: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(lockFile, 'utf8').split(/\s+/)[0]);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** True while `pid` runs (a zombie, exited but not yet reaped by its parent, does not count). */
export function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI. */
export function cihub(args: string[], options: { env: NodeJS.ProcessEnv; input?: string; cwd?: string; timeoutMs?: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CIHUB, ...args], { env: options.env, cwd: options.cwd ?? ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`cihub ${args.join(' ')} timed out\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Runs the CLI and fails with its output unless it exits 0. */
export async function ok(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const r = await cihub(args, { env });
  if (r.code !== 0) throw new Error(`cihub ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

/** Polls `condition` until it holds, failing after `timeoutMs` with `what`. */
export async function waitFor<T>(condition: () => T | Promise<T>, timeoutMs: number, what: string): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Rejects after `limit` ms unless `promise` settled first; the timer is cleared either way. */
export function within<T>(promise: Promise<T>, limit: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${limit} ms waiting for ${what}`)), limit);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Starts the hub for `home` and returns a connected client. */
export async function startHub(home: Home): Promise<HubClient> {
  await ok(['hub'], home.env);
  return connect(home);
}

/** Runs `fn` against a hub of its own (in `home`), then stops the hub and removes the home. */
export async function withHub(fn: (home: Home, client: HubClient) => Promise<void>, home = makeHome()): Promise<void> {
  const client = await startHub(home);
  try {
    await fn(home, client);
  } finally {
    client.close();
    await home.cleanup();
  }
}

/** Closes `client`, stops the hub of `home`, starts it again and returns a client of the new hub. */
export async function restartHub(home: Home, client: HubClient): Promise<HubClient> {
  client.close();
  await ok(['stop'], home.env);
  return startHub(home);
}

/** The CI called `name`, as the hub lists it, or undefined (for polling until it appears). */
export async function findCi(client: HubClient, name: string): Promise<CiInfo | undefined> {
  return (await client.call(List, {})).cis.find((c) => c.name === name);
}

/** The CI called `name`, as the hub lists it; fails if there is none. */
export async function ciInfo(client: HubClient, name: string): Promise<CiInfo> {
  const found = await findCi(client, name);
  if (!found) throw new Error(`no CI ${name}`);
  return found;
}

/** The hub's log (hub.log in the state dir); empty while there is none. */
export function hubLog(home: Home): string {
  try {
    return fs.readFileSync(path.join(home.paths.stateDir, 'hub.log'), 'utf8');
  } catch {
    return '';
  }
}

/** A loopback port nobody listens on. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const address = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  return typeof address === 'object' && address ? address.port : 1;
}

/** Every regular file under `dir`, recursively (unreadable dirs skipped). */
export function walkFiles(dir: string): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => (e.isDirectory() ? walkFiles(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

export async function connect(home: Home): Promise<HubClient> {
  const socket = await connectSocket(home.paths.socket);
  if (!socket) throw new Error('hub not answering');
  return HubClient.fromSocket(socket);
}

/** Every process: its pid, state letter, parent and session (from /proc/<pid>/stat). */
function processes(): { pid: number; state: string; ppid: number; sid: number }[] {
  const out: { pid: number; state: string; ppid: number; sid: number }[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.push({ pid: Number(name), state: fields[0], ppid: Number(fields[1]), sid: Number(fields[3]) });
    } catch {
      // exited while we looked
    }
  }
  return out;
}

/** Processes whose session id is `sid` (what a CI leaves behind). */
export function sessionMembers(sid: number): number[] {
  return processes().filter((p) => p.sid === sid).map((p) => p.pid);
}

/** Zombie children of `pid` (exited but not reaped). */
export function zombieChildren(pid: number): number[] {
  return processes().filter((p) => p.state === 'Z' && p.ppid === pid).map((p) => p.pid);
}

export function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
}

/** Runs a program in a PTY (asciinema insists on a terminal) with output post-processing off. */
export function inPty(command: string): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    Pty.spawn(
      { file: 'sh', args: ['-c', `stty raw -echo; ${command}`], cwd: os.tmpdir(), env: processEnv(), cols: 120, rows: 30 },
      (d) => (text += d.toString()),
      () => resolve(text),
    );
  });
}

/** Parses an asciicast v2 file into its header and events. */
export function readCast(file: string): { header: Record<string, unknown>; events: [number, string, string][] } {
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const header: Record<string, unknown> = JSON.parse(lines[0]);
  const events: [number, string, string][] = lines.slice(1).map((l) => JSON.parse(l));
  return { header, events };
}

export function castOutput(file: string): string {
  return readCast(file)
    .events.filter((e) => e[1] === 'o')
    .map((e) => e[2])
    .join('');
}

export function sessionsOf(home: Home, ci: string): string[] {
  const dir = path.join(home.paths.stateDir, 'captures', ci);
  try {
    return fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.cast'))
      .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
      .map((f) => path.join(dir, f));
  } catch {
    return [];
  }
}

/** Waits until the output captured in CI `ci`'s first session includes `text`; returns that output. */
export function capturedOutput(home: Home, ci: string, text: string, timeoutMs = 15_000): Promise<string> {
  return waitFor(() => {
    const session = sessionsOf(home, ci)[0];
    const output = session ? castOutput(session) : '';
    return output.includes(text) ? output : undefined;
  }, timeoutMs, `"${text}" in the output of ${ci}`);
}
