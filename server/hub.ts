/**
 * The hub: one per user per machine (per `CIHUB_HOME`). It owns the runtime dir (sockets, lock), the
 * state dir (registry, queues, captures), the CIs, the message bus and the JSON-RPC server; request
 * handlers live in server/api/, by area.
 */
import * as fs from 'node:fs';
import { writeFileAtomic } from './writeAtomic';
import * as path from 'node:path';
import type { z } from 'zod';
import { HubErrorCode, type CiInfo, type HubEvent, type ProcessStats, type Status } from './protocol';
import { MAX_SOCKET_PATH_BYTES, hubPaths, type HubPaths } from './paths';
import { Log } from './log';
import { acquireLock, releaseLock } from './lock';
import { ScreenMirrors } from './screen/mirror';
import { Cis } from './cis';
import type { AnyCi } from './cis';
import { KeyStore } from './model/keys';
import { RpcServer } from './rpc';
import { hubError } from './errors';
import { allProcesses, treeUsage } from './procstat';
import { Bus } from './bus/bus';
import { Ports } from './bus/ports';
import { ConfigStore } from './config';
import { VERSION } from './version';
import type { HubContext } from './api/context';
import { registerCiRequests } from './api/cis';
import { registerTerminalRequests } from './api/terminals';
import { registerBusRequests } from './api/bus';
import { registerHubRequests } from './api/hub';
import { registerProjectRequests } from './api/projects';
import { registerModelRequests } from './api/models';
import { Projects } from './projects';
import { Chats } from './chat';
import { CaptureRetention } from './captureRetention';
import { DiskWatch } from './diskWatch';

/** However long CIs take to stop (each is bounded by 3 × STOP_STEP_MS), the hub stops within this. */
const STOP_DEADLINE_MS = 8000;

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
  writeFileAtomic(file, script, { mode: 0o700 });
}

/** Warnings and errors forwarded to clients per event-loop turn; more are counted in one line. */
const LOG_EVENTS_PER_TURN = 20;

export type StartResult = { hub: Hub } | { alreadyRunning: number };

export class Hub implements HubContext {
  readonly log: Log;
  readonly startedAt = Date.now();
  readonly launcherDir: string;
  readonly mirrors: ScreenMirrors;
  readonly cis: Cis;
  readonly bus: Bus;
  readonly config: ConfigStore;
  readonly keys: KeyStore;
  readonly projects: Projects;
  readonly chats: Chats;
  readonly captures: CaptureRetention;
  private readonly disk: DiskWatch;
  private readonly ports: Ports;
  private readonly rpc: RpcServer;
  private readonly cpuSamples = new Map<string, { cpuSeconds: number; at: number }>();
  private stopping: Promise<void> | undefined;
  private pendingLogLines: string[] = [];
  private droppedLogLines = 0;
  private markStopped: () => void = () => undefined;
  /** Resolves once the hub has stopped (by request, signal or `stop()`). */
  readonly stopped = new Promise<void>((resolve) => (this.markStopped = resolve));

  private constructor(
    readonly paths: HubPaths,
    umask: number,
  ) {
    this.log = new Log(paths.log);
    this.launcherDir = path.join(paths.runtimeDir, 'bin');
    this.mirrors = new ScreenMirrors((line) => this.log.error(line));
    this.config = new ConfigStore(paths.stateDir);
    this.keys = new KeyStore(this.log);
    this.captures = new CaptureRetention(
      path.join(paths.stateDir, 'captures'),
      () => this.config.current.retention,
      () => this.liveCaptures(),
      this.log,
      (message) => this.alert(message),
    );
    this.disk = new DiskWatch(paths.stateDir, () => this.config.current.diskLowMB, (message) => this.alert(message), this.log);
    this.cis = new Cis({
      paths,
      launcherDir: this.launcherDir,
      log: this.log,
      mirrors: this.mirrors,
      keys: this.keys,
      captures: this.captures,
      umask,
      alert: (message) => this.alert(message),
      record: (ci, turn, outcome) => this.bus.recordTurn(ci, turn, outcome),
    });
    this.bus = new Bus(paths.stateDir, paths.busDir, this.log, this.cis, () => this.config.current, (event) => {
      if (event.type === 'message') this.chats.busEvent(event, this.projectOf(event.mailbox) ?? this.projectOf(event.message.from));
      this.emit(event);
    });
    this.ports = new Ports(this.bus, this.log);
    this.projects = new Projects(this.cis, this.log, (projects) => this.emit({ type: 'projects', projects }), () => this.config.current.defaultCiGraceMs);
    this.chats = new Chats(path.join(paths.stateDir, 'chats'), (event) => this.emit(event), (message) => this.log.warn(`chat: ${message}`));
    this.rpc = new RpcServer(paths.socket, this.log, (client) => {
      registerHubRequests(client, this);
      registerCiRequests(client, this);
      registerTerminalRequests(client, this);
      registerBusRequests(client, this);
      registerProjectRequests(client, this);
      registerModelRequests(client, this);
    });
    this.log.onLine((line, level) => {
      if (level !== 'info') this.queueLogEvent(line);
    });
  }

  /** Starts the hub, or reports the pid of the one that already runs for these paths. */
  static async start(env: NodeJS.ProcessEnv = process.env): Promise<StartResult> {
    const userUmask = process.umask(0o077);
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
    const hub = new Hub(paths, userUmask);
    try {
      writeLauncher(hub.launcherDir);
      await hub.rpc.listen();
    } catch (error) {
      releaseLock(paths.lock);
      throw error;
    }
    if (hub.config.problem) hub.log.warn(hub.config.problem);
    for (const problem of hub.cis.restore()) hub.log.warn(`restore: ${problem}`);
    for (const problem of hub.bus.start()) hub.log.warn(`bus: ${problem}`);
    hub.cis.listen({
      added: (ci) => {
        hub.bus.ciAdded(ci);
        hub.updatePorts();
        hub.emit({ type: 'ci', ci: hub.info(ci) });
      },
      changed: (ci) => {
        hub.bus.ciChanged(ci.name);
        if (!ci.running) hub.chats.ciEnded(ci.name);
        hub.emit({ type: 'ci', ci: hub.info(ci) });
      },
      removed: (name) => {
        hub.chats.ciEnded(name);
        hub.bus.ciRemoved(name);
        hub.updatePorts();
        hub.emit({ type: 'ciRemoved', name });
      },
    });
    hub.updatePorts();
    hub.projects.start();
    hub.captures.start();
    hub.disk.start();
    hub.log.info(`hub ${VERSION} ready: pid ${process.pid}, socket ${paths.socket}, state ${paths.stateDir}`);
    return { hub };
  }

  /**
   * Warnings and errors go to watching clients in batches, one per event-loop turn: a warning about
   * sending an event must not synchronously cause another event (a closed client would otherwise keep
   * the loop busy forever), and a burst of warnings must not flood the clients.
   */
  private queueLogEvent(line: string): void {
    if (this.pendingLogLines.length === 0 && this.droppedLogLines === 0) setImmediate(() => this.flushLogEvents());
    if (this.pendingLogLines.length < LOG_EVENTS_PER_TURN) this.pendingLogLines.push(line);
    else this.droppedLogLines++;
  }

  private flushLogEvents(): void {
    const lines = this.pendingLogLines.splice(0);
    if (this.droppedLogLines > 0) lines.push(`… and ${this.droppedLogLines} more warnings; see ${this.paths.log}`);
    this.droppedLogLines = 0;
    for (const line of lines) this.emit({ type: 'log', line });
  }

  /** A problem the user must act on: logged, and shown in every window. */
  alert(message: string): void {
    this.log.warn(message);
    this.emit({ type: 'alert', message });
  }

  /** Capture files being written now. */
  private *liveCaptures(): Iterable<string> {
    for (const ci of this.cis.all()) {
      const file = ci.terminal.sessionPath;
      if (file) yield file;
    }
  }

  emit(event: HubEvent): void {
    let json: string | undefined; // serialized once, for the first client watching
    for (const client of this.rpc.clients) if (client.watching) client.sendEvent(event, (json ??= JSON.stringify(event)));
  }

  private projectOf(name: string): string | undefined {
    return this.cis.get(name)?.project;
  }

  clients() {
    return this.rpc.clients;
  }

  assertAccepting(): void {
    if (this.stopping) throw hubError(HubErrorCode.ShuttingDown, 'the hub is shutting down; start it again with `cihub hub`');
  }

  info(ci: AnyCi): CiInfo {
    const queue = this.bus.stats(ci.name);
    const port = this.ports.portOf(ci.name);
    const forwardedTo = this.bus.forwardedTo(ci.name);
    return { ...ci.info(), ...(queue ? { queue } : {}), ...(port ? { port } : {}), ...(forwardedTo ? { forwardedTo } : {}) };
  }

  /** Opens and closes TCP ports to match the settings and the CIs. */
  updatePorts(): void {
    this.ports.update(this.config.current, this.cis.all());
  }

  status(): z.input<typeof Status.result> {
    const all = allProcesses();
    const now = Date.now();
    const cis = this.cis.all().map((ci) => {
      const info = this.info(ci);
      if (info.pid === undefined || ci.kind !== 'process' || ci.record.host !== 'hub') return info;
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
        diskFreeBytes: this.disk.freeBytes,
        captureBytes: this.captures.keptBytes,
      },
      cis: [...cis, ...this.bus.externalInfos()],
    };
  }

  /** Stops every CI (bounded), closes the sockets and releases the lock. Idempotent. */
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
      this.projects.stop();
      this.chats.stop();
      this.captures.stop();
      this.disk.stop();
      await Promise.race([this.cis.shutdown(), deadline]);
      clearTimeout(timer);
      await this.ports.close();
      await this.bus.stop();
      await this.rpc.close();
      this.chats.close();
      await this.mirrors.dispose();
      fs.rmSync(this.launcherDir, { recursive: true, force: true });
      try {
        fs.rmdirSync(this.paths.busDir); // only if empty: external CIs' sockets are theirs
      } catch {
        // not empty (an external CI's socket) or already gone
      }
      releaseLock(this.paths.lock);
      this.log.info('stopped');
      this.markStopped();
    })();
    return this.stopping;
  }
}
