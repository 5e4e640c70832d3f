/** Shared pieces of the benchmarks: a private hub, percentiles, RSS, and a results table. */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import type * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { HubClient, connectSocket, startHub } from '../client/hubClient';
import { StopHub } from '../server/protocol';
import { hubPaths } from '../server/paths';
import { within } from '../test/helpers';

export const ROOT = path.resolve(__dirname, '..', '..');

interface BenchHub {
  env: NodeJS.ProcessEnv;
  pid: number;
  client: HubClient;
  connect(): Promise<HubClient>;
  stop(): Promise<void>;
}

/** Starts a hub in a fresh CIHUB_HOME. */
export async function benchHub(): Promise<BenchHub> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'cib-'));
  const env: NodeJS.ProcessEnv = { ...process.env, CIHUB_HOME: home };
  delete env.CIHUB_SOCKET;
  await startHub({ serverScript: path.join(ROOT, 'dist', 'server.js'), env });
  const paths = hubPaths(env);
  const pid = Number(fs.readFileSync(paths.lock, 'utf8').split(/\s+/)[0]);
  const connect = async () => {
    const socket = await connectSocket(paths.socket);
    if (!socket) throw new Error('hub not answering');
    return HubClient.fromSocket(socket);
  };
  const client = await connect();
  return {
    env,
    pid,
    client,
    connect,
    stop: async () => {
      await client.call(StopHub, {}).catch(() => undefined);
      client.close();
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline && fs.existsSync(`/proc/${pid}`)) await sleep(50);
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

/** A raw baseline: a Node script serving a Unix socket in a process of its own. */
export interface ScriptServer {
  readonly socket: string;
  stop(): void;
}

/**
 * Runs `script` with `node -e`, its arguments `args` and then the socket path it must listen on; it says
 * it is listening with `process.send('ready')`.
 */
export async function scriptServer(script: string, args: string[] = []): Promise<ScriptServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cibr-'));
  const socket = path.join(dir, 'server.sock');
  const child = spawn(process.execPath, ['-e', script, ...args, socket], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const stop = () => {
    child.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await within(new Promise<void>((resolve) => child.once('message', () => resolve())), 10_000, 'the baseline server to listen');
  } catch (error) {
    stop();
    throw error;
  }
  return { socket, stop };
}

/** Connects to a Unix socket that must be listening. */
export async function connectTo(socketPath: string): Promise<net.Socket> {
  const socket = await connectSocket(socketPath);
  if (!socket) throw new Error(`nothing listens on ${socketPath}`);
  return socket;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The value below which a share `p` (0…1) of `values` lies (nearest rank); NaN for no values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/** A difference with its sign (`+0.250`, `-0.120`): what the hub added can come out below raw's own. */
export function signed(value: number, digits = 3): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(digits)}`;
}

/** Resident memory of a process, bytes (VmRSS). */
export function rssOf(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb * 1024;
}

export const MB = 1024 * 1024;

interface Row {
  section: string;
  metric: string;
  raw?: string;
  hub?: string;
  ratio?: string;
  target?: string;
  ok?: boolean;
}

export const rows: Row[] = [];

export function report(row: Row): void {
  rows.push(row);
  const mark = row.ok === undefined ? ' ' : row.ok ? '✓' : '✗';
  process.stdout.write(
    `${mark} ${row.section.padEnd(10)} ${row.metric.padEnd(44)} ${(row.raw ?? '').padEnd(16)} ${(row.hub ?? '').padEnd(16)} ${(row.ratio ?? '').padEnd(14)} ${row.target ?? ''}\n`,
  );
}

export function header(): void {
  process.stdout.write(`  ${'section'.padEnd(10)} ${'metric'.padEnd(44)} ${'raw baseline'.padEnd(16)} ${'through hub'.padEnd(16)} ${'ratio/added'.padEnd(14)} target\n`);
}

/** A file of text lines of at least `bytes`, made once per run. */
export function bigFile(bytes: number): string {
  const file = path.join(os.tmpdir(), `cihub-bench-${bytes}.txt`);
  if (!fs.existsSync(file) || fs.statSync(file).size < bytes) {
    const line = 'the quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ\n';
    const block = line.repeat(Math.ceil((1024 * 1024) / line.length));
    const fd = fs.openSync(file, 'w');
    for (let written = 0; written < bytes; written += block.length) fs.writeSync(fd, block);
    fs.closeSync(fd);
  }
  return file;
}

/** Runs a command to completion, returning its stdout. */
export function run(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: env ?? process.env });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} exited ${code}`))));
  });
}
