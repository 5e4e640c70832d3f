/**
 * Talking to the hub from outside it: finding its socket, starting it detached when nobody answers, and
 * a typed JSON-RPC client that validates what comes back. Used by the `cihub` CLI; the VS Code
 * extension uses the same launcher under `vscode-languageclient`.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { createMessageConnection, ErrorCodes, ResponseError, type MessageConnection } from 'vscode-jsonrpc/node';
import { SocketReader, SocketWriter } from '../server/transport';
import type { z } from 'zod';
import { describeZodError, type NotificationDef, type RequestDef } from '../server/protocol';
import { hubLaunchEnv } from '../server/env';
import { hubPaths } from '../server/paths';
import { LOG_MAX_BYTES } from '../server/log';

/** How long to wait for a hub we started to answer. */
export const HUB_START_TIMEOUT_MS = 15_000;
/**
 * V8 flags for the hub. A 1 MiB semi-space (the default is 16) keeps a flood of output from leaving tens
 * of MiB of young generation committed; scavenges get more frequent (~200 per 100 MiB of output, ~1.3 ms
 * each; 4 MiB halved their total time but moved throughput by less than the noise: docs/RELIABILITY.md).
 * `--expose-gc` lets the hub collect its garbage once a burst of output is over (server/memory.ts).
 */
const HUB_NODE_FLAGS = ['--max-semi-space-size=1', '--expose-gc'];

/** The hub socket for this environment: `CIHUB_SOCKET` inside a CI, else from the hub paths. */
export function hubSocket(env: NodeJS.ProcessEnv = process.env): string {
  return env.CIHUB_SOCKET ?? hubPaths(env).socket;
}

/** Connects to a Unix socket, or resolves undefined if nobody listens. */
export function connectSocket(socketPath: string, timeoutMs = 2000): Promise<net.Socket | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(undefined);
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
}

export interface LaunchOptions {
  /** Path of the hub bundle (`dist/server.js`). */
  readonly serverScript: string;
  /** The environment it starts from (default: this process's); {@link hubLaunchEnv} adds to a copy. */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * What runs the hub bundle `serverScript` — this process's executable (Node, or the extension host's
 * Electron), its arguments, and `env` with {@link hubLaunchEnv}'s additions.
 */
export function hubCommand(serverScript: string, env: NodeJS.ProcessEnv = process.env): { file: string; args: string[]; env: NodeJS.ProcessEnv } {
  const launchEnv = hubLaunchEnv(env);
  // Under Electron (VS Code's extension host, or cihub run by its shim) scripts run as plain Node only so.
  if (process.versions.electron) launchEnv.ELECTRON_RUN_AS_NODE = '1';
  return { file: process.execPath, args: [...HUB_NODE_FLAGS, serverScript], env: launchEnv };
}

/**
 * Starts the hub detached (it outlives this process) with stderr appended to `hub.log`, and waits until
 * its socket answers. A hub that exits at once because another one won the race is fine: the socket
 * answers all the same. Throws with the hub's own last words if it fails to start.
 */
export async function startHub(options: LaunchOptions): Promise<void> {
  const { file, args, env } = hubCommand(options.serverScript, options.env);
  const paths = hubPaths(env);
  fs.mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
  const logFile = paths.log;
  try {
    if (fs.statSync(logFile).size > LOG_MAX_BYTES) fs.renameSync(logFile, `${logFile}.1`);
  } catch {
    // No log yet.
  }
  const logFd = fs.openSync(logFile, 'a', 0o600);
  const logStart = fs.fstatSync(logFd).size;
  const child = spawn(file, args, {
    detached: true,
    stdio: ['ignore', logFd, logFd],
    env,
    cwd: '/',
  });
  fs.closeSync(logFd);
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  child.unref();
  const socket = hubSocket(env);
  const deadline = Date.now() + HUB_START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const s = await connectSocket(socket, 500);
    if (s) {
      s.destroy();
      return;
    }
    if (exited !== undefined && exited !== 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const said = readTail(logFile, logStart).trim().split('\n').slice(-3).join('\n');
  throw new Error(
    exited !== undefined && exited !== null
      ? `the hub exited with code ${exited}: ${said || 'no message'} (log: ${logFile})`
      : `the hub did not answer on ${socket} within ${HUB_START_TIMEOUT_MS / 1000} s (log: ${logFile})`,
  );
}

function readTail(file: string, from: number): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const start = Math.max(from, size - 4096);
      const buffer = Buffer.alloc(size - start);
      fs.readSync(fd, buffer, 0, buffer.length, start);
      return buffer.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** Validates a hub's answer to `def` against the protocol's result schema. */
export function parseResult<P extends z.ZodType, R extends z.ZodType>(def: RequestDef<P, R>, raw: unknown): z.output<R> {
  const parsed = def.result.safeParse(raw);
  if (!parsed.success) throw new Error(`the hub answered ${def.method} with an unexpected shape: ${describeZodError(parsed.error)}`);
  return parsed.data;
}

/** A failed request, with the hub's code and message. */
export class HubRequestError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** A typed JSON-RPC connection to the hub. */
export class HubClient {
  private closed = false;

  private constructor(
    readonly connection: MessageConnection,
    private readonly socket: net.Socket,
  ) {
    // A reset connection surfaces through onClose; without a listener it would crash the process.
    socket.on('error', () => undefined);
    // Requests still waiting when the hub goes away would otherwise wait forever (and a CLI would exit
    // as if it had succeeded): disposing rejects them.
    connection.onClose(() => {
      this.closed = true;
      connection.dispose();
    });
  }

  static fromSocket(socket: net.Socket): HubClient {
    const connection = createMessageConnection(new SocketReader(socket), new SocketWriter(socket));
    connection.listen();
    return new HubClient(connection, socket);
  }

  /** Sends a request and validates the answer against the protocol's result schema. */
  async call<P extends z.ZodType, R extends z.ZodType>(def: RequestDef<P, R>, params: z.input<P>): Promise<z.output<R>> {
    if (this.closed) throw new Error('the connection to the hub is closed');
    let raw: unknown;
    try {
      raw = await this.connection.sendRequest(def.method, params);
    } catch (error) {
      if (error instanceof ResponseError && error.code === ErrorCodes.PendingResponseRejected) {
        throw new Error(`the connection to the hub closed before it answered ${def.method}`);
      }
      if (error instanceof ResponseError) throw new HubRequestError(error.code, error.message);
      throw error;
    }
    return parseResult(def, raw);
  }

  /** Sends a notification; one sent after the connection closed goes nowhere. */
  notify<P extends z.ZodType>(def: NotificationDef<P>, params: z.input<P>): Promise<void> {
    if (this.closed) return Promise.resolve();
    return this.connection.sendNotification(def.method, params).catch(() => undefined);
  }

  /** Handles a notification from the hub; ones that fail validation are ignored. */
  on<P extends z.ZodType>(def: NotificationDef<P>, handler: (params: z.output<P>) => void): void {
    this.connection.onNotification(def.method, (raw: unknown) => {
      const parsed = def.params.safeParse(raw);
      if (parsed.success) handler(parsed.data);
    });
  }

  onClose(listener: () => void): void {
    this.connection.onClose(listener);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.connection.dispose();
    this.socket.destroy();
  }
}
