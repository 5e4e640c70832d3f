/**
 * Where the hub keeps its sockets (runtime dir, 0700) and its durable state (registry, queues,
 * captures, chats), as DESIGN.md "Files and places" says.
 */
import * as os from 'node:os';
import * as path from 'node:path';

export interface HubPaths {
  readonly runtimeDir: string;
  readonly stateDir: string;
  readonly socket: string;
  readonly lock: string;
  readonly busDir: string;
  /** The hub's log (stderr of a daemonized hub goes here too). */
  readonly log: string;
}

/**
 * `CIHUB_HOME` overrides everything (tests use a temp dir each); otherwise the runtime dir is
 * `$XDG_RUNTIME_DIR/projects-chat` or `/tmp/projects-chat-<uid>`, and the state dir
 * `$XDG_STATE_HOME/projects-chat` or `~/.local/state/projects-chat`.
 */
export function hubPaths(env: NodeJS.ProcessEnv = process.env): HubPaths {
  const home = env.CIHUB_HOME;
  let runtimeDir: string;
  let stateDir: string;
  if (home) {
    runtimeDir = path.join(home, 'run');
    stateDir = path.join(home, 'state');
  } else {
    const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
    runtimeDir = env.XDG_RUNTIME_DIR ? path.join(env.XDG_RUNTIME_DIR, 'projects-chat') : path.join(os.tmpdir(), `projects-chat-${uid}`);
    stateDir = env.XDG_STATE_HOME ? path.join(env.XDG_STATE_HOME, 'projects-chat') : path.join(env.HOME ?? os.homedir(), '.local', 'state', 'projects-chat');
  }
  return {
    runtimeDir,
    stateDir,
    socket: path.join(runtimeDir, 'hub.sock'),
    lock: path.join(runtimeDir, 'hub.lock'),
    busDir: path.join(runtimeDir, 'bus'),
    log: path.join(stateDir, 'hub.log'),
  };
}

/** Unix socket paths longer than this (bytes) cannot be bound: 107 on Linux, 103 on macOS. */
export const MAX_SOCKET_PATH_BYTES = process.platform === 'darwin' ? 103 : 107;
