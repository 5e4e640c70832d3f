/**
 * The main thread's handle on the screen worker: one worker thread hosts the headless terminal of every
 * CI. Writes are fire-and-forget; snapshots, markers and text are answered asynchronously, in order
 * with the writes that preceded them.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { FromWorker, RenderedCast, ToWorker } from './messages';

/**
 * Scrollback lines kept per CI and replayed on attach. Serializing 10 000 lines takes ~100 ms here, and
 * replaying them floods the attaching terminal; 1 000 is a screenful many times over.
 */
export const REPLAY_SCROLLBACK_LINES = 1000;

export interface Snapshot {
  /** Serialized screen: write it to a fresh terminal of `cols`×`rows` to reproduce the CI's screen. */
  readonly data: string;
  /** Sequence number of the last output chunk the snapshot includes. */
  readonly seq: number;
  readonly cols: number;
  readonly rows: number;
}

type Pending = (message: FromWorker) => void;

export class ScreenMirrors {
  private worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextReq = 1;
  private nextId = 1;
  private disposed = false;

  constructor(
    private readonly log: (line: string) => void,
    private readonly workerPath = path.join(__dirname, 'screenWorker.js'),
  ) {
    this.worker = this.start();
  }

  private start(): Worker {
    const worker = new Worker(this.workerPath);
    worker.unref();
    worker.on('message', (message: FromWorker) => {
      const resolve = this.pending.get(message.req);
      this.pending.delete(message.req);
      resolve?.(message);
    });
    worker.on('error', (error) => this.log(`screen worker failed: ${error.stack ?? error.message}`));
    worker.on('exit', (code) => {
      if (this.disposed) return;
      // Screens are lost with the worker; fail pending requests and start afresh so attach keeps working.
      this.log(`screen worker exited (${code}); restarting it, current screens are blank until new output`);
      for (const resolve of this.pending.values()) resolve({ req: 0, op: 'error', message: 'screen worker restarted' });
      this.pending.clear();
      this.worker = this.start();
      for (const reopen of this.reopeners.values()) reopen();
    });
    return worker;
  }

  private readonly reopeners = new Map<number, () => void>();

  private post(message: ToWorker): void {
    this.worker.postMessage(message);
  }

  private ask(build: (req: number) => ToWorker): Promise<FromWorker> {
    const req = this.nextReq++;
    return new Promise((resolve) => {
      this.pending.set(req, resolve);
      this.post(build(req));
    });
  }

  /** Creates a screen and returns its handle. */
  open(cols: number, rows: number): Screen {
    const id = this.nextId++;
    const size = { cols, rows };
    const open = () => this.post({ op: 'open', id, cols: size.cols, rows: size.rows, scrollback: REPLAY_SCROLLBACK_LINES });
    this.reopeners.set(id, open);
    open();
    return {
      write: (data, seq) => this.post({ op: 'write', id, data, seq }),
      resize: (cols, rows) => {
        size.cols = cols;
        size.rows = rows;
        this.post({ op: 'resize', id, cols, rows });
      },
      snapshot: async () => {
        const answer = await this.ask((req) => ({ op: 'snapshot', id, req, scrollback: REPLAY_SCROLLBACK_LINES }));
        if (answer.op !== 'snapshot') throw new Error(answer.op === 'error' ? answer.message : 'unexpected answer');
        return answer;
      },
      mark: async () => {
        const answer = await this.ask((req) => ({ op: 'mark', id, req }));
        return answer.op === 'mark' ? answer.marker : undefined;
      },
      text: async (marker, maxLines) => {
        const answer = await this.ask((req) => ({ op: 'text', id, req, marker, maxLines }));
        if (answer.op !== 'text') throw new Error(answer.op === 'error' ? answer.message : 'unexpected answer');
        return { text: answer.text, truncated: answer.truncated };
      },
      close: () => {
        this.reopeners.delete(id);
        this.post({ op: 'close', id });
      },
    };
  }

  /** Replays a capture file into a fresh terminal (in the worker) and returns what it showed. */
  async render(file: string, maxLines: number): Promise<RenderedCast> {
    const answer = await this.ask((req) => ({ op: 'render', req, file, maxLines }));
    if (answer.op !== 'render') throw new Error(answer.op === 'error' ? answer.message : 'unexpected answer');
    return answer.rendered;
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await this.worker.terminate();
  }
}

/** One CI's mirrored screen. */
export interface Screen {
  write(data: string, seq: number): void;
  resize(cols: number, rows: number): void;
  snapshot(): Promise<Snapshot>;
  /** Marks the line the cursor is on now; `text(marker)` later returns what was printed from there. */
  mark(): Promise<number | undefined>;
  text(marker: number | undefined, maxLines: number): Promise<{ text: string; truncated: boolean }>;
  close(): void;
}
