/**
 * A process CI: a command in a PTY, its lifecycle (start, exit, restart with backoff, stop) and its
 * terminal. The PTY is run by the hub (`host: "hub"`) or by a `cihub wrap` client (`host: "client"`),
 * which streams it here; everything else — capture, screen, attachments, state — is the same.
 */
import type { CiInfo, CiState, DeliveryPolicy } from './protocol';
import type { HubPaths } from './paths';
import type { BusCi, InjectState } from './bus/bus';
import type { ProcessRecord } from './registry';
import type { ModelCi } from './model/modelCi';
import type { KeyStore } from './model/keys';
import type { MessageOutcome } from './protocol';
import type { Log } from './log';
import type { CaptureRetention } from './captureRetention';
import type { ScreenMirrors } from './screen/mirror';
import { CiTerminal, type AttachClient } from './terminal';
import { Pty, type PtyExit } from './pty';
import { ciEnvironment, resolveCommand } from './env';
import { processTree, readProc, signalTree } from './procstat';
import { errorMessage } from './errors';

/** First restart delay after a quick exit; doubles per consecutive quick exit. */
export const BACKOFF_INITIAL_MS = 1000;
/** Longest restart delay. */
export const BACKOFF_MAX_MS = 60_000;
/** A run at least this long counts as healthy: the next restart starts from the initial delay again. */
export const BACKOFF_RESET_AFTER_MS = 30_000;
/** Stopping sends SIGHUP, then SIGTERM, then SIGKILL, waiting this long after each for the exit. */
export const STOP_STEP_MS = 1500;
/** After a CI's main process exits, leftovers in its session get SIGHUP, then SIGKILL this much later. */
const LEFTOVER_KILL_MS = 1000;

/** What a CI needs from the hub. */
export interface CiHost {
  readonly paths: HubPaths;
  readonly launcherDir: string;
  readonly log: Log;
  readonly mirrors: ScreenMirrors;
  readonly keys: KeyStore;
  readonly captures: CaptureRetention;
  /** The umask CIs run with: the one the hub was started with (the hub itself uses 077). */
  readonly umask: number;
  /** Tells the user of a problem they must act on (log and every window). */
  alert(message: string): void;
  /** The CI's state changed: persist and tell watchers. */
  changed(ci: ProcessCi | ModelCi): void;
  /** Something shown but not persisted changed (a model CI became busy): tell watchers only. */
  updated(ci: ProcessCi | ModelCi): void;
  /** A conversation turn that did not go through the bus, for the timeline. */
  record(ci: ProcessCi | ModelCi, turn: { from: string; to: string; content: string }, outcome: MessageOutcome): void;
}

/** A wrapping client, as the CI sees it. */
export interface WrapPeer extends AttachClient {
  sendWrapInput(name: string, data: string): void;
  sendWrapSignal(name: string, signal: 'SIGHUP' | 'SIGTERM' | 'SIGKILL'): void;
}

export class ProcessCi implements BusCi {
  readonly kind = 'process';
  state: CiState;
  pid: number | undefined;
  readonly terminal: CiTerminal;
  private pty: Pty | undefined;
  private wrapPeer: WrapPeer | undefined;
  private backoffTimer: NodeJS.Timeout | undefined;
  private quickExits = 0;
  private exitWaiters: (() => void)[] = [];
  /** The hub is stopping: exits are expected and change nothing persistent. */
  private hubStopping = false;
  private removed = false;

  constructor(
    private readonly host: CiHost,
    readonly record: ProcessRecord,
    /** Secret-looking environment values: in memory only (server/env.ts). */
    private readonly secretEnv: Readonly<Record<string, string>>,
  ) {
    // A CI that ended before the hub did keeps its state; one that was running (or about to) starts again.
    this.state = isEndState(record.state) ? record.state : record.desired === 'stopped' ? 'stopped' : 'starting';
    this.terminal = new CiTerminal(
      host.mirrors,
      record.cols,
      record.rows,
      record.bytesCaptured,
      host.captures.forCi(record.name),
      (message) => host.log.warn(`${record.name}: ${message}`),
    );
  }

  get name(): string {
    return this.record.name;
  }

  get project(): string | undefined {
    return this.record.project;
  }

  get policy(): DeliveryPolicy {
    return this.record.policy;
  }

  injectState(): InjectState {
    const { lastOutputAt, lastTypedAt, bracketedPaste } = this.terminal.stats;
    return { running: this.state === 'running', lastOutputAt, lastTypedAt, bracketedPaste, unreadInputBytes: this.pty?.pendingInputBytes ?? 0 };
  }

  /** Types into the CI's terminal (a bus message being injected); captured as input. */
  type(text: string): void {
    this.terminal.input(text);
  }

  get running(): boolean {
    return this.state === 'running' || this.state === 'starting';
  }

  info(): CiInfo {
    const r = this.record;
    return {
      name: r.name,
      kind: 'process',
      state: this.state,
      project: r.project,
      command: r.command,
      cwd: r.cwd,
      host: r.host,
      pid: this.running ? this.pid : undefined,
      restart: r.restart,
      policy: r.policy,
      reason: r.reason,
      exitCode: r.exitCode,
      signal: r.signal,
      createdAt: r.createdAt,
      startedAt: r.startedAt,
      endedAt: r.endedAt,
      restarts: r.restarts,
      session: r.session,
      ...this.terminal.infoFields(),
    };
  }

  /** Persistable snapshot of the record with live counters folded in. */
  snapshot(): ProcessRecord {
    return { ...this.record, state: this.state, bytesCaptured: this.terminal.stats.bytesCaptured };
  }

  private setState(state: CiState): void {
    this.state = state;
    this.host.changed(this);
  }

  /** Starts the process (hub-hosted CIs); a wrapped CI waits for its client instead. */
  start(): void {
    if (this.removed || this.running && this.pty) return;
    this.clearBackoff();
    this.record.desired = 'running';
    if (this.record.host === 'client') return;
    const env = ciEnvironment({ ...this.record.env, ...this.secretEnv }, this.name, this.host.paths.socket, this.host.launcherDir);
    const [file, ...args] = this.record.command;
    const resolved = resolveCommand(file, this.record.cwd, env);
    if ('error' in resolved) {
      this.fail(resolved.error);
      return;
    }
    this.record.session = this.terminal.beginSession({ title: this.name, command: this.record.command.join(' ') });
    try {
      this.pty = Pty.spawn(
        { file, args, cwd: this.record.cwd, env, cols: this.terminal.cols, rows: this.terminal.rows, umask: this.host.umask },
        (data) => this.terminal.output(data),
        (exit) => this.exited(exit),
      );
    } catch (error) {
      this.terminal.endSession();
      this.fail(`could not start ${file}: ${errorMessage(error)}`);
      return;
    }
    const pty = this.pty;
    this.terminal.backend = { write: (data) => pty.write(data), resize: (cols, rows) => pty.resize(cols, rows) };
    this.began(pty.pid);
  }

  private began(pid: number): void {
    this.pid = pid;
    this.record.lastPid = pid;
    this.record.lastPidStart = readProc(pid)?.startTime;
    this.record.startedAt = Date.now();
    this.record.reason = undefined;
    this.record.exitCode = undefined;
    this.record.signal = undefined;
    this.record.endedAt = undefined;
    this.host.log.info(`${this.name}: started pid ${pid}: ${this.record.command.join(' ')}`);
    this.setState('running');
  }

  private fail(reason: string): void {
    this.record.reason = reason;
    this.record.endedAt = Date.now();
    this.host.log.warn(`${this.name}: failed: ${reason}`);
    this.setState('failed');
    this.endAttachments(`${this.name} failed: ${reason}`);
  }

  /** The process ended; `reason` replaces the usual "exited with code …" in the record. */
  private exited(exit: PtyExit, reason?: string): void {
    const pid = this.pid;
    this.pty = undefined;
    this.terminal.backend = undefined;
    this.terminal.endSession();
    if (pid !== undefined) reapLeftovers(pid);
    const ranFor = Date.now() - (this.record.startedAt ?? Date.now());
    this.record.exitCode = exit.exitCode;
    this.record.signal = exit.signal;
    this.record.endedAt = Date.now();
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`;
    this.record.reason = reason ?? how;
    this.host.log.info(`${this.name}: pid ${pid} ${how} after ${(ranFor / 1000).toFixed(1)}s`);
    const waiters = this.exitWaiters;
    this.exitWaiters = [];
    for (const w of waiters) w();
    if (this.hubStopping || this.removed) return;
    if (this.record.desired === 'stopped') {
      this.setState('stopped');
      this.endAttachments(`${this.name} stopped`);
      return;
    }
    const failed = exit.signal !== undefined || exit.exitCode !== 0;
    const policy = this.record.restart;
    if (this.record.host === 'hub' && (policy === 'always' || (policy === 'on-failure' && failed))) {
      this.quickExits = ranFor >= BACKOFF_RESET_AFTER_MS ? 0 : this.quickExits + 1;
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_INITIAL_MS * 2 ** Math.max(0, this.quickExits - 1));
      this.terminal.notice(`\r\n\x1b[2m[cihub] ${this.name} ${how}; restarting in ${(delay / 1000).toFixed(0)}s\x1b[0m\r\n`);
      this.setState('backoff');
      this.backoffTimer = setTimeout(() => {
        this.backoffTimer = undefined;
        this.record.restarts++;
        this.start();
      }, delay);
      return;
    }
    this.setState('exited');
    this.endAttachments(`${this.name} ${how}`);
  }

  /** Ends every attachment; `finalScreen`: clients that fell behind first get the last screen. */
  private endAttachments(reason: string, finalScreen = true): void {
    void this.terminal.endAll(reason, this.info(), finalScreen);
  }

  private clearBackoff(): void {
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    this.backoffTimer = undefined;
  }

  private waitExit(ms: number): Promise<boolean> {
    if (!this.pty && !this.wrapPeer) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.exitWaiters = this.exitWaiters.filter((w) => w !== done);
        resolve(false);
      }, ms);
      const done = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.exitWaiters.push(done);
    });
  }

  /** Ends the process: SIGHUP, SIGTERM, SIGKILL to its whole tree, each after a bounded wait. */
  private async terminate(): Promise<void> {
    this.clearBackoff();
    for (const signal of ['SIGHUP', 'SIGTERM', 'SIGKILL'] as const) {
      if (this.pty && this.pid !== undefined) signalTree(this.pid, signal);
      else if (this.wrapPeer) this.wrapPeer.sendWrapSignal(this.name, signal);
      else return;
      if (await this.waitExit(STOP_STEP_MS)) return;
    }
    this.host.log.warn(`${this.name}: pid ${this.pid} did not exit after SIGKILL; releasing its terminal`);
    this.pty?.dispose();
    this.pty = undefined;
  }

  /** Stops the CI at a user's request; it stays registered, `stopped`. */
  async stop(): Promise<void> {
    this.record.desired = 'stopped';
    if (this.state === 'backoff') {
      this.clearBackoff();
      this.setState('stopped');
      this.endAttachments(`${this.name} stopped`);
      return;
    }
    if (!this.pty && !this.wrapPeer) {
      if (this.state !== 'failed' && this.state !== 'exited') this.setState('stopped');
      else this.host.changed(this);
      return;
    }
    await this.terminate();
  }

  /** Stops (if needed) and starts again, in a new capture session. */
  async restart(): Promise<void> {
    if (this.record.host === 'client') throw new Error(`${this.name} is run by \`cihub wrap\`; restart it there`);
    await this.stop();
    this.quickExits = 0;
    this.start();
  }

  /** The hub is stopping: end the process, keep `desired` so the next hub starts it again. */
  async shutdown(): Promise<void> {
    this.hubStopping = true;
    this.clearBackoff();
    await this.terminate();
    this.endAttachments('the hub is stopping', false);
    this.terminal.close();
  }

  /** Removes the CI: ends the process and its terminal. */
  async remove(): Promise<void> {
    this.record.desired = 'stopped';
    await this.terminate();
    this.removed = true;
    this.endAttachments(`${this.name} was removed`, false);
    this.terminal.close();
  }

  // --- wrapped CIs --------------------------------------------------------------------------------

  /** A `cihub wrap` client started the command (or reconnected with it running). */
  wrapStarted(peer: WrapPeer, pid: number, cols: number, rows: number): void {
    this.wrapPeer = peer;
    this.record.desired = 'running';
    this.terminal.resize(cols, rows);
    this.record.session = this.terminal.beginSession({ title: this.name, command: this.record.command.join(' ') });
    this.terminal.backend = { write: (data) => peer.sendWrapInput(this.name, data), resize: () => undefined };
    this.began(pid);
  }

  get wrappedBy(): WrapPeer | undefined {
    return this.wrapPeer;
  }

  /** The wrapped command exited, or its client went away (`exit` undefined). */
  wrapEnded(exit: PtyExit | undefined): void {
    this.wrapPeer = undefined;
    if (exit) {
      this.exited(exit);
    } else {
      this.host.log.warn(`${this.name}: its \`cihub wrap\` client disconnected`);
      this.exited({ signal: 'SIGHUP' }, 'its cihub wrap client disconnected');
    }
  }
}

function isEndState(value: string | undefined): value is CiState {
  return value === 'exited' || value === 'failed' || value === 'stopped';
}

/** Processes the CI left behind in its session get SIGHUP now and SIGKILL shortly after. */
function reapLeftovers(sessionId: number): void {
  if (processTree(sessionId).length === 0) return;
  signalTree(sessionId, 'SIGHUP');
  setTimeout(() => signalTree(sessionId, 'SIGKILL'), LEFTOVER_KILL_MS).unref();
}
