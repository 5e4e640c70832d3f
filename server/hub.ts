/**
 * The hub: one per user per machine (per `CIHUB_HOME`). It owns the runtime dir (sockets, lock), the
 * state dir (registry, captures), the CIs and the JSON-RPC server, and wires protocol requests to them.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  Attach,
  AttachResize,
  Detach,
  Event,
  Export,
  HubErrorCode,
  Input,
  Kill,
  List,
  MAX_SOCKET_PATH_BYTES,
  Remove,
  Resize,
  Restart,
  Spawn,
  Status,
  StopHub,
  Watch,
  Wrap,
  WrapExit,
  WrapOutput,
  WrapResize,
  WrapTyped,
  hubPaths,
  type HubEvent,
  type HubPaths,
  type ProcessStats,
} from './protocol';
import { Log } from './log';
import { acquireLock, releaseLock } from './lock';
import { ScreenMirrors } from './screen/mirror';
import { Cis } from './cis';
import type { ProcessCi } from './ci';
import { RpcServer, type Client } from './rpc';
import { hubError, notFound } from './errors';
import { processEnv } from './env';
import { allProcesses, treeUsage } from './procstat';
import { exportCapture } from './export';
import { VERSION } from './version';

/** However long CIs take to stop (each is bounded by 3 × STOP_STEP_MS), the hub stops within this. */
const STOP_DEADLINE_MS = 8000;

/** Default terminal size for a CI nobody has attached to yet. */
const DEFAULT_COLS = 120;
const DEFAULT_ROWS = 32;

/** Refuses a directory that another user owns or that others can read: sockets there would be exposed. */
export function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory; remove it or set CIHUB_HOME elsewhere`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new Error(`${dir} belongs to uid ${st.uid}, not to you (uid ${uid}); refusing to use it. Remove it, or set CIHUB_HOME`);
  }
  if (st.mode & 0o077) {
    throw new Error(`${dir} is open to other users (mode ${(st.mode & 0o777).toString(8)}); refusing to use it. Run: chmod 700 ${dir}`);
  }
}

/** The `cihub` launcher put first on every CI's PATH. */
function writeLauncher(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const cli = path.join(__dirname, 'cihub.js');
  const script = `#!/bin/sh\nELECTRON_RUN_AS_NODE=1 exec ${quote(process.execPath)} ${quote(cli)} "$@"\n`;
  const file = path.join(dir, 'cihub');
  fs.writeFileSync(`${file}.tmp`, script, { mode: 0o700 });
  fs.renameSync(`${file}.tmp`, file);
}

export type StartResult = { hub: Hub } | { alreadyRunning: number };

export class Hub {
  readonly log = new Log();
  readonly startedAt = Date.now();
  readonly launcherDir: string;
  private readonly mirrors: ScreenMirrors;
  private readonly cis: Cis;
  private readonly rpc: RpcServer;
  private readonly cpuSamples = new Map<string, { cpuSeconds: number; at: number }>();
  private stopping: Promise<void> | undefined;
  private markStopped: () => void = () => undefined;
  /** Resolves once the hub has stopped (by request, signal or `stop()`). */
  readonly stopped = new Promise<void>((resolve) => (this.markStopped = resolve));

  private constructor(readonly paths: HubPaths) {
    this.launcherDir = path.join(paths.runtimeDir, 'bin');
    this.mirrors = new ScreenMirrors((line) => this.log.error(line));
    this.cis = new Cis(
      { paths, launcherDir: this.launcherDir, log: this.log, mirrors: this.mirrors },
      (event) => this.emit(event),
    );
    this.rpc = new RpcServer(paths.socket, this.log, (client) => this.setup(client));
  }

  /** Starts the hub, or reports the pid of the one that already runs for these paths. */
  static async start(env: NodeJS.ProcessEnv = process.env): Promise<StartResult> {
    process.umask(0o077);
    const paths = hubPaths(env);
    if (Buffer.byteLength(path.join(paths.busDir, `${'x'.repeat(63)}.sock`)) > MAX_SOCKET_PATH_BYTES) {
      throw new Error(
        `the runtime dir ${paths.runtimeDir} is too long for Unix socket paths (limit ${MAX_SOCKET_PATH_BYTES} bytes); set CIHUB_HOME or XDG_RUNTIME_DIR to a shorter path`,
      );
    }
    ensurePrivateDir(paths.runtimeDir);
    ensurePrivateDir(paths.stateDir);
    const lock = acquireLock(paths.lock);
    if (!lock.acquired) return { alreadyRunning: lock.pid };
    const hub = new Hub(paths);
    try {
      writeLauncher(hub.launcherDir);
      await hub.rpc.listen();
    } catch (error) {
      releaseLock(paths.lock);
      throw error;
    }
    for (const problem of hub.cis.restore()) hub.log.warn(`restore: ${problem}`);
    hub.log.info(`hub ${VERSION} ready: pid ${process.pid}, socket ${paths.socket}, state ${paths.stateDir}`);
    return { hub };
  }

  private emit(event: HubEvent): void {
    for (const client of this.rpc.clients) if (client.watching) void client.send(Event, event);
  }

  private assertAccepting(): void {
    if (this.stopping) throw hubError(HubErrorCode.ShuttingDown, 'the hub is shutting down; start it again with `cihub hub`');
  }

  private setup(client: Client): void {
    const log = this.log;
    client.onClose(() => {
      for (const [attachId, ci] of client.attachments) ci.terminal.detach(client, attachId);
      client.attachments.clear();
      for (const ci of this.cis.all()) if (ci.wrappedBy === client) ci.wrapEnded(undefined);
    });

    client.handle(Status, () => this.status(), log);
    client.handle(StopHub, () => {
      setImmediate(() => void this.stop('requested by a client'));
      return null;
    }, log);
    client.handle(Watch, () => {
      client.watching = true;
      return null;
    }, log);

    client.handle(List, () => ({ cis: this.cis.list() }), log);
    client.handle(Spawn, (p) => {
      this.assertAccepting();
      const env = p.env ?? processEnv();
      const ci = this.cis.create({
        name: p.name,
        command: p.command,
        cwd: p.cwd ?? p.project ?? env.HOME ?? os.homedir(),
        env,
        project: p.project,
        restart: p.restart ?? 'never',
        policy: p.policy ?? 'inbox',
        cols: p.cols ?? DEFAULT_COLS,
        rows: p.rows ?? DEFAULT_ROWS,
        host: 'hub',
      });
      ci.start();
      return ci.info();
    }, log);
    client.handle(Kill, async ({ name }) => {
      const ci = this.cis.require(name);
      await ci.stop();
      return ci.info();
    }, log);
    client.handle(Restart, async ({ name }) => {
      this.assertAccepting();
      const ci = this.cis.require(name);
      if (ci.record.host === 'client') {
        throw hubError(HubErrorCode.InvalidState, `${name} is run by \`cihub wrap\` in another terminal; restart it there`);
      }
      await ci.restart();
      return ci.info();
    }, log);
    client.handle(Remove, async ({ name }) => {
      await this.cis.remove(name);
      return null;
    }, log);
    client.handle(Resize, ({ name, cols, rows }) => {
      const ci = this.cis.require(name);
      ci.terminal.resize(cols, rows);
      return ci.info();
    }, log);

    client.handle(Attach, ({ name, attachId, cols, rows, readOnly }) => {
      this.assertAccepting();
      const ci = this.cis.require(name);
      if (!ci.running && ci.state !== 'backoff') {
        throw hubError(
          HubErrorCode.InvalidState,
          `${name} is ${ci.state}${ci.record.reason ? ` (${ci.record.reason})` : ''}; start it with \`cihub restart ${name}\``,
        );
      }
      if (client.attachments.has(attachId)) {
        throw hubError(HubErrorCode.AlreadyExists, `attachment id ${attachId} is in use on this connection`);
      }
      client.attachments.set(attachId, ci);
      ci.terminal.attach(client, attachId, cols, rows, readOnly ?? false);
      this.emit({ type: 'ci', ci: ci.info() });
      return ci.info();
    }, log);
    client.on(Detach, ({ attachId }) => {
      const ci = client.attachments.get(attachId);
      if (!ci) return;
      client.attachments.delete(attachId);
      ci.terminal.detach(client, attachId);
      this.emit({ type: 'ci', ci: ci.info() });
    }, log);
    client.on(Input, ({ attachId, data }) => {
      client.attachments.get(attachId)?.terminal.typed(client, attachId, data);
    }, log);
    client.on(AttachResize, ({ attachId, cols, rows }) => {
      client.attachments.get(attachId)?.terminal.attachmentResized(client, attachId, cols, rows);
    }, log);

    client.handle(Wrap, (p) => {
      this.assertAccepting();
      let ci = this.cis.get(p.name);
      if (ci && (ci.record.host !== 'client' || ci.running)) {
        throw hubError(
          HubErrorCode.AlreadyExists,
          `a CI named "${p.name}" exists already${ci.running ? ' and is running' : ''}; pick another name with --name`,
        );
      }
      if (!ci) {
        ci = this.cis.create({
          name: p.name,
          command: p.command,
          cwd: p.cwd,
          env: {},
          project: p.project,
          restart: 'never',
          policy: 'inbox',
          cols: p.cols,
          rows: p.rows,
          host: 'client',
        });
      }
      ci.wrapStarted(client, p.pid, p.cols, p.rows);
      return ci.info();
    }, log);
    const wrapped = (name: string): ProcessCi | undefined => {
      const ci = this.cis.get(name);
      return ci?.wrappedBy === client ? ci : undefined;
    };
    client.on(WrapOutput, ({ name, data }) => wrapped(name)?.terminal.outputText(data), log);
    client.on(WrapTyped, ({ name, data }) => wrapped(name)?.terminal.inputSeen(data), log);
    client.on(WrapResize, ({ name, cols, rows }) => wrapped(name)?.terminal.resize(cols, rows), log);
    client.on(WrapExit, ({ name, exitCode, signal }) => wrapped(name)?.wrapEnded({ exitCode, signal }), log);

    client.handle(Export, async ({ name, format, session }) => {
      const ci = this.cis.get(name);
      if (!ci) throw notFound(name);
      const r = ci.record;
      return exportCapture(this.paths.stateDir, { name, command: r.command, cwd: r.cwd, project: r.project }, format, session, this.mirrors);
    }, log);
  }

  private status() {
    const all = allProcesses();
    const now = Date.now();
    const cis = this.cis.all().map((ci) => {
      const info = ci.info();
      if (info.pid === undefined || ci.record.host !== 'hub') return info;
      const usage = treeUsage(info.pid, all);
      const prev = this.cpuSamples.get(ci.name);
      this.cpuSamples.set(ci.name, { cpuSeconds: usage.cpuSeconds, at: now });
      const stats: ProcessStats = { ...usage };
      if (prev && now > prev.at) stats.cpuPercent = Math.max(0, ((usage.cpuSeconds - prev.cpuSeconds) / ((now - prev.at) / 1000)) * 100);
      return { ...info, stats };
    });
    return {
      hub: {
        pid: process.pid,
        version: VERSION,
        startedAt: this.startedAt,
        uptimeMs: now - this.startedAt,
        socket: this.paths.socket,
        busDir: this.paths.busDir,
        runtimeDir: this.paths.runtimeDir,
        stateDir: this.paths.stateDir,
        clients: this.rpc.clients.size,
        rssBytes: process.memoryUsage.rss(),
      },
      cis,
    };
  }

  /** Stops every CI (bounded), closes the socket and releases the lock. Idempotent. */
  stop(reason: string): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info(`stopping (${reason})`);
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.log.error(`CIs took longer than ${STOP_DEADLINE_MS} ms to stop; stopping anyway`);
          resolve();
        }, STOP_DEADLINE_MS);
      });
      await Promise.race([this.cis.shutdown(), deadline]);
      clearTimeout(timer);
      await this.rpc.close();
      await this.mirrors.dispose();
      fs.rmSync(this.launcherDir, { recursive: true, force: true });
      releaseLock(this.paths.lock);
      this.log.info('stopped');
      this.markStopped();
    })();
    return this.stopping;
  }
}
