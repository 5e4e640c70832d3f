/**
 * A process in a pseudo-terminal that never loses the tail of its output.
 *
 * node-pty's JS wrapper loses the last bytes a fast-exiting process prints (on Node 20 / libuv 1.46:
 * `seq 1 20000` lost lines in 3 of 40 runs here): once the child closes the slave side, reads on the
 * master can end with EIO while output is still in the kernel's tty buffers, and the wrapper also
 * destroys its socket 200 ms after exit. So this file uses node-pty's native `fork` directly and:
 *
 *  1. opens the slave side itself right after the fork and holds it, so the master never sees EIO;
 *  2. when the child exits, has the reader write a random sentinel into the slave: the tty is FIFO, so
 *     once the sentinel comes out of the master every byte the child printed has been read;
 *  3. strips the sentinel, closes the slave and the master, and only then reports the exit.
 *
 * Reading happens on the PTY reader thread (server/ptyReader.ts); writes, resizes and signals here.
 * (0 losses in 200 runs of `seq 1 20000` with this scheme; see test/pty.test.ts.)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { constants as osConstants } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { errnoCode } from './errors';
import type { FromReader, ToReader } from './ptyReader';

interface NativeUnixPty {
  fork(
    file: string,
    args: string[],
    env: string[],
    cwd: string,
    cols: number,
    rows: number,
    uid: number,
    gid: number,
    useUtf8: boolean,
    helperPath: string,
    onExit: (code: number, signal: number) => void,
  ): { fd: number; pid: number; pty: string };
  resize(fd: number, cols: number, rows: number): void;
}

let native: { pty: NativeUnixPty; helperPath: string } | undefined;

function loadNative(): { pty: NativeUnixPty; helperPath: string } {
  if (!native) {
    // node-pty's own loader finds build/Release/pty.node relative to its lib/ folder.
    const utils: { loadNativeModule(name: string): { dir: string; module: NativeUnixPty } } = require('node-pty/lib/utils');
    const loaded = utils.loadNativeModule('pty');
    const libDir = path.dirname(require.resolve('node-pty/lib/utils'));
    native = { pty: loaded.module, helperPath: path.resolve(libDir, loaded.dir, 'spawn-helper') };
  }
  return native;
}

/**
 * The reader only moves bytes: a small young generation keeps its heap from settling at V8's default
 * (~48 MiB) after a flood.
 */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 4 };
/**
 * Longest stretch of output handling per turn of the event loop. A worker's messages all arrive in one
 * go, so batches are queued and handled in slices of this much time, each followed by a turn in which
 * sockets are served: a flood then costs other clients at most this much wait per turn.
 */
const OUTPUT_SLICE_MS = 4;

/** The one reader thread of this process, started with the first PTY. */
class Readers {
  private static instance: Readers | undefined;
  private readonly worker: Worker;
  private readonly ptys = new Map<number, Pty>();
  private nextId = 1;
  /** Messages from the reader not handled yet, in order (a terminal's end comes after its data). */
  private readonly backlog: FromReader[] = [];

  private constructor() {
    this.worker = new Worker(path.join(__dirname, 'ptyReader.js'), { resourceLimits: WORKER_LIMITS });
    this.worker.on('message', (msg: FromReader) => {
      // A backlog that was empty has no slice scheduled (a slice reschedules itself while one is left).
      if (this.backlog.push(msg) === 1) setImmediate(this.handleSlice);
    });
    this.worker.on('error', (error) => process.stderr.write(`pty reader failed: ${error.stack ?? error.message}\n`));
  }

  private readonly handleSlice = (): void => {
    const until = performance.now() + OUTPUT_SLICE_MS;
    let msg: FromReader | undefined;
    while ((msg = this.backlog.shift())) {
      this.handle(msg);
      if (performance.now() >= until) break;
    }
    if (this.backlog.length) setImmediate(this.handleSlice);
  };

  private handle(msg: FromReader): void {
    const pty = this.ptys.get(msg.id);
    if (msg.op === 'data') {
      pty?.received(Buffer.from(msg.data, 0, msg.length));
      // onData is done with it (see Pty.spawn): back to the reader's pool.
      if (!msg.copy) this.worker.postMessage({ op: 'free', id: msg.id, data: msg.data } satisfies ToReader, [msg.data]);
    } else if (pty) {
      this.ptys.delete(msg.id);
      if (this.ptys.size === 0) this.worker.unref();
      pty.ended();
    }
  }

  static get(): Readers {
    Readers.instance ??= new Readers();
    return Readers.instance;
  }

  /** Registers a terminal; returns the id messages about it carry. The thread keeps the process alive while a terminal is open. */
  add(pty: Pty): number {
    const id = this.nextId++;
    this.ptys.set(id, pty);
    this.worker.ref();
    return id;
  }

  post(message: ToReader): void {
    this.worker.postMessage(message);
  }
}

export interface PtyOptions {
  readonly file: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  readonly cols: number;
  readonly rows: number;
  /** The file mode mask the child starts with (the hub's own is 077, for its private files). */
  readonly umask?: number;
}

export interface PtyExit {
  /** Exit status when the process exited by itself. */
  readonly exitCode?: number;
  /** Signal name when a signal ended it. */
  readonly signal?: string;
}

const signalNames = new Map<number, string>(Object.entries(osConstants.signals).map(([name, num]) => [num, name]));

export function signalName(signal: number): string {
  return signalNames.get(signal) ?? `SIG${signal}`;
}

export class Pty {
  readonly pid: number;
  private readonly fd: number;
  private readonly readerId: number;
  private slaveFd: number;
  private exit: PtyExit | undefined;
  /** The master fd belongs to the reader from the moment the child exits (it closes it when done). */
  private released = false;
  private finished = false;
  private readonly writeQueue: Buffer[] = [];
  private writing = false;

  private constructor(
    options: PtyOptions,
    private readonly onData: (data: Buffer) => void,
    private readonly onExit: (exit: PtyExit) => void,
  ) {
    const { pty, helperPath } = loadNative();
    const env = Object.entries(options.env).map(([k, v]) => `${k}=${v}`);
    const sentinel = Buffer.from(`\x1b_cihub-drain-${Math.random().toString(36).slice(2)}${Date.now()}\x1b\\`);
    // The fork is synchronous: the child inherits the mask set around it, and nothing else runs meanwhile.
    const hubUmask = options.umask === undefined ? undefined : process.umask(options.umask);
    let forked: ReturnType<typeof pty.fork>;
    try {
      forked = pty.fork(
        options.file,
        [...options.args],
        env,
        options.cwd,
        options.cols,
        options.rows,
        -1,
        -1,
        true,
        helperPath,
        (code, signal) => this.childExited(code, signal),
      );
    } finally {
      if (hubUmask !== undefined) process.umask(hubUmask);
    }
    this.pid = forked.pid;
    this.fd = forked.fd;
    // Synchronously, before anything reads (so before any EIO could be consumed): even if the child is
    // already gone, reopening the slave clears the master's "other side closed" state.
    this.slaveFd = fs.openSync(forked.pty, fs.constants.O_RDWR | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK);
    const readers = Readers.get();
    this.readerId = readers.add(this);
    readers.post({ op: 'open', id: this.readerId, fd: this.fd, slave: this.slaveFd, sentinel });
  }

  /**
   * Forks `options.file` in a new PTY. Throws if the fork itself fails. `onData`'s buffer is lent: it is
   * reused once the callback returns, so copy what must outlive the call.
   */
  static spawn(options: PtyOptions, onData: (data: Buffer) => void, onExit: (exit: PtyExit) => void): Pty {
    return new Pty(options, onData, onExit);
  }

  /**
   * Writes input. The master is non-blocking, so when nothing is queued the bytes go straight in with one
   * synchronous write (no thread-pool hop on the keystroke path); what the terminal cannot take yet is
   * queued and retried, so a child that stops reading never blocks the hub.
   */
  write(data: string | Buffer): void {
    if (this.released) return;
    let buffer = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (buffer.length === 0) return;
    if (!this.writing) {
      try {
        const written = fs.writeSync(this.fd, buffer);
        if (written === buffer.length) return;
        buffer = buffer.subarray(written);
      } catch (error) {
        if (errnoCode(error) !== 'EAGAIN') return; // EIO/EBADF: the terminal is gone.
      }
    }
    this.writeQueue.push(buffer);
    if (!this.writing) this.flushWrites();
  }

  private flushWrites(): void {
    const next = this.writeQueue[0];
    if (!next || this.released) {
      this.writeQueue.length = 0;
      this.writing = false;
      return;
    }
    this.writing = true;
    fs.write(this.fd, next, 0, next.length, null, (error, written) => {
      if (error) {
        if (error.code === 'EAGAIN') {
          setTimeout(() => this.flushWrites(), 5);
          return;
        }
        // EIO/EBADF: the terminal is gone; pending input has nowhere to go.
        this.writeQueue.length = 0;
        this.writing = false;
        return;
      }
      if (written < next.length) this.writeQueue[0] = next.subarray(written);
      else this.writeQueue.shift();
      this.flushWrites();
    });
  }

  /** Bytes of input queued because the child is not reading them. */
  get pendingInputBytes(): number {
    return this.writeQueue.reduce((n, b) => n + b.length, 0);
  }

  resize(cols: number, rows: number): void {
    if (this.released) return;
    loadNative().pty.resize(this.fd, cols, rows);
  }

  /** Signals the child's whole process group (it is a session leader: pgid = pid). */
  kill(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, signal);
    } catch {
      // ESRCH: the group is gone already.
    }
  }

  private childExited(code: number, signal: number): void {
    if (this.released) return;
    this.exit = signal ? { signal: signalName(signal) } : { exitCode: code };
    this.released = true;
    Readers.get().post({ op: 'drain', id: this.readerId });
  }

  /** Output from the reader thread. */
  received(data: Buffer): void {
    if (!this.finished) this.onData(data);
  }

  /** The reader is done with the terminal (drained after exit, or closed). */
  ended(): void {
    if (this.finished) return;
    this.finished = true;
    this.released = true;
    try {
      fs.closeSync(this.slaveFd);
    } catch {
      // Already closed: nothing to release.
    }
    this.slaveFd = -1;
    this.onExit(this.exit ?? { signal: 'SIGHUP' });
  }

  /**
   * Lets go of the terminal without waiting for the child (the hub itself is stopping): the child sees
   * its terminal hang up. No exit is reported.
   */
  dispose(): void {
    if (this.finished) return;
    this.finished = true;
    this.released = true;
    Readers.get().post({ op: 'close', id: this.readerId });
    try {
      fs.closeSync(this.slaveFd);
    } catch {
      // Already closed.
    }
  }
}
