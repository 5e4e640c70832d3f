/**
 * `cihub wrap [--name N] -- CMD…`: runs CMD in a PTY in *this* terminal, passing keys and output through
 * unchanged, and registers it with the hub as a CI: captured, listed, attachable from elsewhere. The PTY
 * lives here, so the command survives a hub crash; the wrap reconnects and continues in a new session.
 */
import { constants } from 'node:os';
import * as path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { ciNameFrom, Wrap, WrapExit, WrapInput, WrapOutput, WrapResize, WrapSignal, WrapTyped } from '../server/protocol';
import { hubPaths } from '../server/paths';
import { Pty, type PtyExit } from '../server/pty';
import { ciEnvironment, processEnv } from '../server/env';
import { signalTree } from '../server/procstat';
import { HubRequestError, type HubClient } from '../client/hubClient';
import { takeTerminal } from './tty';

/** Output kept for the hub while it is unreachable; beyond this the oldest is dropped from the capture. */
const OFFLINE_BUFFER_BYTES = 8 * 1024 * 1024;
/** How often to try the hub again after losing it. */
const RECONNECT_INTERVAL_MS = 1000;

export interface WrapOptions {
  name: string;
  command: string[];
  project?: string;
  connect: () => Promise<HubClient | undefined>;
}

/** A CI name from a command: `bash` → `bash-<pid>`. */
export function defaultWrapName(command: string[]): string {
  return `${ciNameFrom(path.basename(command[0] ?? 'wrap'), 'wrap', 50)}-${process.pid}`;
}

export async function wrap(options: WrapOptions): Promise<number> {
  const env = processEnv();
  const paths = hubPaths(env);
  const ciEnv = ciEnvironment(env, options.name, env.CIHUB_SOCKET ?? paths.socket, path.join(paths.runtimeDir, 'bin'));
  const term = takeTerminal();
  const cwd = process.cwd();
  let client: HubClient | undefined;
  /** What the hub missed while unreachable (or not yet registered), in order: output and typed keys. */
  const offline: { typed: boolean; data: string }[] = [];
  let offlineBytes = 0;
  const decoder = new StringDecoder('utf8');
  let exited = false;
  /** The hub refused the registration: the command runs on, and nothing is kept for a hub that will not take it. */
  let refused = false;

  const toHub = (data: string, typed = false) => {
    if (refused) return;
    if (client) {
      void client.notify(typed ? WrapTyped : WrapOutput, { name: options.name, data });
      return;
    }
    offline.push({ typed, data });
    offlineBytes += data.length;
    while (offlineBytes > OFFLINE_BUFFER_BYTES && offline.length > 1) offlineBytes -= offline.shift()?.data.length ?? 0;
  };

  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => (finish = resolve));
  /** Tells the hub how the command ended (when registered), then lets `wrap` return. */
  const end = async (result: PtyExit): Promise<void> => {
    if (client) await client.notify(WrapExit, { name: options.name, ...result });
    client?.close();
    finish(result.signal ? 128 + signalNumber(result.signal) : (result.exitCode ?? 0));
  };
  /** The registration under way (or the last one): an exit is reported once it is done, so a new registration hears of it. */
  let attempt: Promise<void> = Promise.resolve();
  const size = term.size();
  const pty = Pty.spawn(
    { file: options.command[0], args: options.command.slice(1), cwd, env: ciEnv, ...size },
    (data) => {
      // The buffer is lent by the reader (see Pty.spawn): stdout may write it later.
      process.stdout.write(Buffer.from(data));
      const text = decoder.write(data);
      if (text) toHub(text);
    },
    (result) => {
      exited = true;
      const rest = decoder.end();
      if (rest) toHub(rest);
      term.restore(false);
      // register() handles its own failures; the catch only guarantees the end comes.
      void attempt.catch(() => undefined).then(() => end(result));
    },
  );

  process.stdin.on('data', (chunk: Buffer) => {
    pty.write(chunk);
    toHub(chunk.toString('utf8'), true);
  });
  term.onResize(() => {
    const { cols, rows } = term.size();
    pty.resize(cols, rows);
    if (client) void client.notify(WrapResize, { name: options.name, cols, rows });
  });

  const retryLater = () => {
    if (!exited) setTimeout(() => (attempt = register()), RECONNECT_INTERVAL_MS).unref();
  };
  const register = async (): Promise<void> => {
    if (exited) return;
    const c = await options.connect().catch(() => undefined);
    if (!c) {
      retryLater();
      return;
    }
    c.on(WrapInput, ({ name, data }) => {
      if (name === options.name) pty.write(data);
    });
    c.on(WrapSignal, ({ name, signal }) => {
      if (name === options.name) signalTree(pty.pid, signal);
    });
    c.onClose(() => {
      if (client !== c) return;
      client = undefined;
      retryLater();
    });
    try {
      await c.call(Wrap, { name: options.name, command: options.command, cwd, project: options.project, pid: pty.pid, ...term.size() });
    } catch (error) {
      c.close();
      if (error instanceof HubRequestError) {
        // The hub refused (a name clash): say so and keep running the command, unregistered.
        process.stderr.write(`[cihub] not registered with the hub: ${error.message}\r\n`);
        refused = true;
        offline.length = 0;
        offlineBytes = 0;
      } else {
        retryLater();
      }
      return;
    }
    client = c;
    for (const { typed, data } of offline.splice(0)) void c.notify(typed ? WrapTyped : WrapOutput, { name: options.name, data });
    offlineBytes = 0;
  };
  attempt = register();
  await attempt;
  return finished;
}

function signalNumber(name: string): number {
  return Object.entries(constants.signals).find(([k]) => k === name)?.[1] ?? 1;
}
