/**
 * The main thread's handle on the screen worker: one worker thread hosts the headless terminal of every
 * CI. Writes are fire-and-forget; snapshots, markers and text are answered asynchronously, in order
 * with the writes that preceded them.
 *
 * Flood control happens here, before any copying. Output faster than {@link FLOOD_CHARS} per
 * {@link FLOOD_WINDOW_MS} is a flood: nothing of it is posted; only the newest {@link MIRROR_KEEP_CHARS}
 * are held, and posted (marked as following a gap) once the CI has been quiet for {@link FLOOD_QUIET_MS},
 * or at once when a snapshot, marker or text needs the screen. Short of a flood, the worker acks what it
 * has parsed, and while a screen's unparsed backlog is above {@link MIRROR_HIGH_CHARS} output is held the
 * same way until the backlog is under {@link MIRROR_LOW_CHARS}. So a flood costs the mirror almost nothing
 * (parsing it cost ~15 % of the PTY's throughput and ~35 MB of the worker's heap), while the final screen
 * is still right: it is drawn by the newest output.
 *
 * Calm output is handed over in batches, 16 ms after the first of them (server/textBatch.ts; at once when a
 * snapshot, marker or text needs the screen): a keystroke's echo then does not wake the worker, and its
 * acknowledgement does not wake the main thread again, while the echo is on its way to the clients.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { QuietTimer } from '../quietTimer';
import { TextBatch } from '../textBatch';
import type { FromWorker, RenderedCast, Reply, ToWorker } from './messages';

/**
 * Scrollback lines kept per CI and replayed on attach. Serializing 10 000 lines takes ~100 ms here, and
 * replaying them floods the attaching terminal; 1 000 is a screenful many times over.
 */
export const REPLAY_SCROLLBACK_LINES = 1000;
/** Unparsed output per screen beyond which new output is held back (≈ 15 ms of parsing). */
export const MIRROR_HIGH_CHARS = 1024 * 1024;
/** Held output is posted once the backlog is below this. */
export const MIRROR_LOW_CHARS = 256 * 1024;
/** Newest output kept while holding: a full screen plus a scrollback of typical lines. */
export const MIRROR_KEEP_CHARS = 256 * 1024;
/** Window over which a screen's output rate is measured. */
export const FLOOD_WINDOW_MS = 100;
/**
 * Output per window beyond which a CI is flooding (≈ 5 MB/s): far above what an agent's TUI redraws,
 * well below `cat` of a big file or a noisy build.
 */
export const FLOOD_CHARS = 512 * 1024;
/** A flood is over once the CI has printed nothing for this long; then its tail is parsed. */
export const FLOOD_QUIET_MS = 100;

export interface Snapshot {
  /** Serialized screen: write it to a fresh terminal of `cols`×`rows` to reproduce the CI's screen. */
  readonly data: string;
  /** Sequence number of the last output chunk the snapshot includes. */
  readonly seq: number;
  readonly cols: number;
  readonly rows: number;
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

/** Main-thread state of one screen: what is in flight to the worker and what is held back. */
class ScreenFeed {
  private readonly inflight: { seq: number; chars: number }[] = [];
  private inflightChars = 0;
  /** Calm output waiting for its batch (server/textBatch.ts), and the sequence number of its newest chunk. */
  private readonly batch = new TextBatch((parts) => this.send(parts.join(''), this.batchSeq, false));
  private batchSeq = 0;
  /** Output held back by a flood or a backlog (its newest {@link MIRROR_KEEP_CHARS}). */
  private held: string[] = [];
  private heldChars = 0;
  private heldSeq = 0;
  /** Whether held output lost its start (the worker then begins at a line boundary). */
  private heldCut = false;
  private windowStart = 0;
  private windowChars = 0;
  /** Latched when the rate passes {@link FLOOD_CHARS}; cleared after {@link FLOOD_QUIET_MS} of quiet. */
  private flooding = false;
  private readonly floodQuiet = new QuietTimer(FLOOD_QUIET_MS, () => this.floodOver());

  constructor(
    private readonly id: number,
    private readonly post: (message: ToWorker) => void,
  ) {}

  write(data: string, seq: number): void {
    const now = Date.now();
    if (now - this.windowStart >= FLOOD_WINDOW_MS) {
      this.windowStart = now;
      this.windowChars = 0;
    }
    this.windowChars += data.length;
    if (this.windowChars > FLOOD_CHARS) this.flooding = true;
    if (this.flooding) this.floodQuiet.touch();
    if (!this.flooding && this.held.length === 0 && this.inflightChars + this.batch.chars + data.length <= MIRROR_HIGH_CHARS) {
      this.batchSeq = seq;
      this.batch.add(data);
      return;
    }
    this.held.push(data);
    this.heldChars += data.length;
    this.heldSeq = seq;
    // An old chunk goes only once the newer ones hold the newest MIRROR_KEEP_CHARS without it.
    while (this.held.length > 1 && this.heldChars - this.held[0].length >= MIRROR_KEEP_CHARS) {
      this.heldChars -= this.held.shift()?.length ?? 0;
      this.heldCut = true;
    }
  }

  /** The CI has been quiet long enough: the flood is over, and the worker gets its tail. */
  private floodOver(): void {
    this.flooding = false;
    if (this.inflightChars <= MIRROR_LOW_CHARS) this.release();
  }

  private send(data: string, seq: number, skipped: boolean): void {
    this.inflight.push({ seq, chars: data.length });
    this.inflightChars += data.length;
    this.post({ op: 'write', id: this.id, data, seq, skipped });
  }

  /** The worker parsed everything up to `seq`. */
  acked(seq: number): void {
    while (this.inflight.length && this.inflight[0].seq <= seq) this.inflightChars -= this.inflight.shift()?.chars ?? 0;
    if (this.held.length && !this.flooding && this.inflightChars <= MIRROR_LOW_CHARS) this.release();
  }

  /** Posts waiting and held output now (before a snapshot, so the snapshot covers everything written so far). */
  release(): void {
    this.batch.flush();
    if (this.held.length === 0) return;
    const data = this.held.join('');
    const cut = this.heldCut || data.length > MIRROR_KEEP_CHARS;
    this.held = [];
    this.heldChars = 0;
    this.heldCut = false;
    this.send(cut ? data.slice(-MIRROR_KEEP_CHARS) : data, this.heldSeq, cut);
  }

  /** Forgets everything in flight and held (the worker was restarted, or the screen closed). */
  reset(): void {
    this.floodQuiet.cancel();
    this.batch.clear();
    this.flooding = false;
    this.inflight.length = 0;
    this.inflightChars = 0;
    this.held = [];
    this.heldChars = 0;
    this.heldCut = false;
  }
}

export class ScreenMirrors {
  private worker: Worker;
  private readonly pending = new Map<number, (message: Reply) => void>();
  private readonly feeds = new Map<number, ScreenFeed>();
  private readonly reopeners = new Map<number, () => void>();
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
    // A small young generation: the default lets a flood leave ~48 MiB of heap committed.
    const worker = new Worker(this.workerPath, { resourceLimits: { maxYoungGenerationSizeMb: 8 } });
    worker.on('message', (message: FromWorker) => {
      if (message.op === 'ack') {
        this.feeds.get(message.id)?.acked(message.seq);
        return;
      }
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
      for (const feed of this.feeds.values()) feed.reset();
      for (const reopen of this.reopeners.values()) reopen();
    });
    // After the listeners: adding a 'message' listener refs the worker again.
    worker.unref();
    return worker;
  }

  private post(message: ToWorker): void {
    this.worker.postMessage(message);
  }

  private ask(build: (req: number) => ToWorker): Promise<Reply> {
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
    const feed = new ScreenFeed(id, (message) => this.post(message));
    this.feeds.set(id, feed);
    const open = () => this.post({ op: 'open', id, cols: size.cols, rows: size.rows, scrollback: REPLAY_SCROLLBACK_LINES });
    this.reopeners.set(id, open);
    open();
    return {
      write: (data, seq) => feed.write(data, seq),
      resize: (c, r) => {
        size.cols = c;
        size.rows = r;
        feed.release();
        this.post({ op: 'resize', id, cols: c, rows: r });
      },
      snapshot: async () => {
        feed.release();
        const answer = await this.ask((req) => ({ op: 'snapshot', id, req, scrollback: REPLAY_SCROLLBACK_LINES }));
        if (answer.op !== 'snapshot') throw new Error(answer.op === 'error' ? answer.message : 'unexpected answer');
        return answer;
      },
      mark: async () => {
        feed.release();
        const answer = await this.ask((req) => ({ op: 'mark', id, req }));
        return answer.op === 'mark' ? answer.marker : undefined;
      },
      text: async (marker, maxLines) => {
        feed.release();
        const answer = await this.ask((req) => ({ op: 'text', id, req, marker, maxLines }));
        if (answer.op !== 'text') throw new Error(answer.op === 'error' ? answer.message : 'unexpected answer');
        return { text: answer.text, truncated: answer.truncated };
      },
      close: () => {
        feed.reset();
        this.reopeners.delete(id);
        this.feeds.delete(id);
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
