/**
 * The environment a process CI runs in, and what of it may be written to disk.
 *
 * A CI inherits the environment of the client that started it (so `cihub spawn x -- claude` finds the
 * `claude` the user's shell finds), plus `CIHUB_CI`, `CIHUB_SOCKET` and the `cihub` launcher on `PATH`.
 * Variables that look like secrets are kept in memory only: the registry records their names, and after
 * a hub restart their values come from the hub's own environment.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errnoCode } from './errors';

const SECRET_NAME = /(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE_?KEY|AUTH)/i;

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** Splits an environment into what may be persisted and the names of what may not. */
export function splitSecrets(env: Readonly<Record<string, string>>): { plain: Record<string, string>; secretNames: string[] } {
  const plain: Record<string, string> = {};
  const secretNames: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (isSecretName(name)) secretNames.push(name);
    else plain[name] = value;
  }
  return { plain, secretNames };
}

/** The process environment as a plain record (dropping undefined values). */
export function processEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

/**
 * glibc malloc settings the hub starts with, where the environment does not set them (other C libraries
 * ignore them). A fixed mmap threshold returns big buffers — a flood's ~128 KiB chunks, encoded for a
 * socket, the capture, the screen thread — to the system when they are freed: by default glibc raises
 * the threshold after the first such free and serves them from heaps it cannot shrink. Two arenas instead
 * of eight per core keep each thread from holding freed memory of its own. With both, 100 MiB of output
 * left the hub +11–13 MB larger instead of +17–28 MB when this was measured (after its garbage
 * collection, server/memory.ts).
 */
const HUB_MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_ARENA_MAX: '2' };
/** Names of the {@link HUB_MALLOC_ENV} variables a launcher added, for the hub to remove again. */
const MALLOC_ADDED = 'CIHUB_MALLOC_ADDED';

/** The environment to start the hub in: `env` with {@link HUB_MALLOC_ENV} where `env` has no value of its own. */
export function hubLaunchEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  const added = Object.keys(HUB_MALLOC_ENV).filter((name) => out[name] === undefined);
  for (const name of added) out[name] = HUB_MALLOC_ENV[name];
  out[MALLOC_ADDED] = added.join(',');
  return out;
}

/**
 * In the hub, at start: forgets what {@link hubLaunchEnv} added (glibc has read it), so that CIs started
 * with the hub's environment run with the user's own.
 */
export function dropLaunchEnv(env: NodeJS.ProcessEnv = process.env): void {
  for (const name of (env[MALLOC_ADDED] ?? '').split(',')) if (name in HUB_MALLOC_ENV) delete env[name];
  delete env[MALLOC_ADDED];
}

/**
 * What belongs to VS Code's own processes (the hub itself runs with ELECTRON_RUN_AS_NODE when VS Code
 * starts it): never passed to a CI, or an agent that runs `code` or any Electron app would start as
 * plain Node. Git's askpass variables (`VSCODE_GIT_*`) stay, so git in an agent can still ask.
 */
const VSCODE_INTERNAL = /^(ELECTRON_RUN_AS_NODE|ELECTRON_NO_ATTACH_CONSOLE|VSCODE_(?!GIT_)\w+|APPLICATION_INSIGHTS_\w+)$/;

/** The environment of a CI process: its base plus the hub's variables and `cihub` on `PATH`. */
export function ciEnvironment(
  base: Readonly<Record<string, string>>,
  name: string,
  socket: string,
  launcherDir: string,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(base)) if (!VSCODE_INTERNAL.test(key)) env[key] = value;
  env.CIHUB_CI = name;
  env.CIHUB_SOCKET = socket;
  const pathList = (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(path.delimiter).filter((p) => p && p !== launcherDir);
  env.PATH = [launcherDir, ...pathList].join(path.delimiter);
  env.TERM = env.TERM && env.TERM !== 'dumb' ? env.TERM : 'xterm-256color';
  env.COLORTERM ??= 'truecolor';
  return env;
}

/**
 * Finds the program a CI would run, as execvp would, so that a missing command or cwd is reported as a
 * readable reason instead of a PTY that prints "execvp(3) failed" and exits.
 */
export function resolveCommand(file: string, cwd: string, env: Readonly<Record<string, string>>): { path: string } | { error: string } {
  let cwdStat: fs.Stats;
  try {
    cwdStat = fs.statSync(cwd);
  } catch {
    return { error: `working directory ${cwd} does not exist` };
  }
  if (!cwdStat.isDirectory()) return { error: `working directory ${cwd} is not a directory` };
  const candidates = file.includes('/')
    ? [path.resolve(cwd, file)]
    : (env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.resolve(cwd, dir, file));
  let notExecutable: string | undefined;
  for (const candidate of candidates) {
    try {
      const st = fs.statSync(candidate);
      if (!st.isFile()) continue;
      fs.accessSync(candidate, fs.constants.X_OK);
      return { path: candidate };
    } catch (error) {
      if (errnoCode(error) === 'EACCES') notExecutable ??= candidate;
    }
  }
  if (notExecutable) return { error: `${notExecutable} is not executable (chmod +x it)` };
  return file.includes('/')
    ? { error: `command not found: ${file} (no such file)` }
    : { error: `command not found: ${file} (not on the CI's PATH; give a full path or fix PATH)` };
}
