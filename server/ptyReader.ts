/**
 * The PTY reader thread: reads every PTY master the process owns and hands the bytes to the main thread
 * in batches, without allocating under a flood: reads land in one buffer, are collected in pooled batch
 * buffers, and those are transferred to the main thread and handed back (small batches — an echo, a
 * prompt — are posted as copies instead, see {@link COPY_POST_BYTES}).
 *
 * Why a thread: a PTY holds only a few KiB, so while the main thread is busy with the last batch
 * (capture, mirror, clients) a fast agent blocks on a full terminal. Reading here keeps the agent
 * running at full speed whatever the main thread is doing (100 MiB through the hub went from ~43 to
 * ~75 MB/s here); the extra hop costs a keystroke's echo ~0.05 ms at p50 and 0.3–0.6 ms at p99
 * (docs/RELIABILITY.md).
 *
 * Batching: output that arrives after a pause is posted at once; while output streams (the last post was
 * under {@link STREAMING_WINDOW_MS} ago, or under {@link SMALL_STREAMING_WINDOW_MS} for a small one)
 * reads are collected for as long as each turn of the loop brings more, up to {@link MAX_BATCH_BYTES}.
 * No timer holds anything back.
 *
 * Draining at exit: see server/pty.ts. When told the child exited, this thread writes the sentinel into
 * the slave side and reads until it comes out of the master, so every byte before it has been read.
 */
import * as fs from 'node:fs';
import type * as net from 'node:net';
import * as tty from 'node:tty';
import { parentPort } from 'node:worker_threads';

/** Output counts as streaming if the previous post was this recent. */
const STREAMING_WINDOW_MS = 2;
/**
 * The same after a small post (an echo, a prompt): keystrokes typed quickly are each posted at once, while
 * output in many small writes (a progress bar, a chatty TUI) is still collected.
 */
const SMALL_STREAMING_WINDOW_MS = 0.5;
/** Most output collected into one post while streaming. */
const MAX_BATCH_BYTES = 128 * 1024;
/**
 * Batches travel in buffers of this size that the main thread hands back after use (`free`), so memory
 * stays at a pool's worth instead of waiting for the main thread's GC to release transferred buffers
 * (100 MiB through a reader left ~80 MiB of them behind here). Room for one more read past the batch
 * limit.
 */
const BATCH_BUFFER_BYTES = MAX_BATCH_BYTES + 64 * 1024;
/**
 * Batches of one terminal posted and not yet handed back (`free`): at this many the reader stops reading
 * that terminal until one comes back. A flood then waits in the agent (its writes block, as on any
 * terminal) rather than in the hub's memory; 8 keeps the main thread fed (4 cost ~15 % of throughput).
 * How long the main thread spends on them per turn is bounded separately (OUTPUT_SLICE_MS in pty.ts).
 */
const MAX_BATCHES_IN_FLIGHT = 8;
/**
 * Batches up to this size (a keystroke's echo, a prompt) are posted as a copy and the buffer stays in
 * this thread's pool: no `free` comes back, so an echo wakes this thread once, not twice.
 */
const COPY_POST_BYTES = 4096;
/** Most bytes one read takes. */
const READ_BYTES = 64 * 1024;
/** Spare batch buffers kept. */
const POOL_SIZE = 16;
/** How long to wait for the drain sentinel after the child exited (see server/pty.ts). */
const DRAIN_TIMEOUT_MS = 2000;

/**
 * Messages name a terminal by an id of its own, never by fd: a closed fd number is soon reused, and a late
 * message about the old terminal must not reach the new one.
 */
export type ToReader =
  | { op: 'open'; id: number; fd: number; slave: number; sentinel: Uint8Array }
  /** A batch of terminal `id` the main thread is done with, back for reuse. */
  | { op: 'free'; id: number; data: ArrayBuffer }
  /** The child exited: drain up to the sentinel, then end. */
  | { op: 'drain'; id: number }
  /** Stop reading now (the hub is letting go of the terminal). */
  | { op: 'close'; id: number };

export type FromReader =
  /**
   * `length` bytes of output at the start of `data`: a pooled buffer (send it back with `free`), or with
   * `copy`, a copy of a small batch that needs no handing back.
   */
  | { op: 'data'; id: number; data: ArrayBuffer; length: number; copy?: boolean }
  /** No more data: drained, closed, or the terminal went away. The master fd is closed. */
  | { op: 'end'; id: number };

const STREAMING_WINDOW_NS = BigInt(STREAMING_WINDOW_MS * 1_000_000);
const SMALL_STREAMING_WINDOW_NS = BigInt(SMALL_STREAMING_WINDOW_MS * 1_000_000);

class Reader {
  /** Where every read lands (see the constructor); copied into the batch at once. */
  private readonly readBuffer = Buffer.allocUnsafe(READ_BYTES);
  /** The batch being filled: a pooled buffer, transferred to the main thread and handed back. */
  private batch: Batch | undefined;
  private length = 0;
  /** Reads collected in the batch being filled, and how many of them the last check saw. */
  private batchReads = 0;
  private readsAtCheck = 0;
  private scheduled = false;
  private lastPostAt = 0n;
  /** Whether the last post was a copy (a small batch; see {@link SMALL_STREAMING_WINDOW_MS}). */
  private lastPostSmall = true;
  private readonly stream: tty.ReadStream;
  private draining = false;
  private drainTimer: NodeJS.Timeout | undefined;
  private ended = false;
  /** Batches posted and not yet freed (see {@link MAX_BATCHES_IN_FLIGHT}). */
  private inFlight = 0;

  constructor(
    private readonly id: number,
    fd: number,
    private readonly slave: number,
    private readonly sentinel: Buffer,
  ) {
    // `onread` (net.Socket's, which tty.ReadStream passes on): every read lands in one buffer of ours,
    // instead of a new one per read (~25 000 per 100 MiB) for the GC to collect.
    const options: net.SocketConstructorOpts & net.ConnectOpts = {
      onread: {
        buffer: this.readBuffer,
        callback: (n) => {
          this.received(n);
          return true;
        },
      },
    };
    this.stream = new tty.ReadStream(fd, options);
    // EIO once the terminal is gone (the exit path handles completion); EAGAIN spuriously at start.
    this.stream.on('error', () => undefined);
    this.stream.on('close', () => this.end());
    this.stream.resume();
  }

  /** The batch being filled, taken from the pool when there is none. */
  private filling(): Batch {
    this.batch ??= pool.pop() ?? batchOf(new ArrayBuffer(BATCH_BUFFER_BYTES));
    return this.batch;
  }

  /** `n` bytes were read into {@link readBuffer}. */
  private received(n: number): void {
    if (this.length + n > BATCH_BUFFER_BYTES) this.post();
    const batch = this.filling();
    const before = this.length;
    this.length += this.readBuffer.copy(batch.view, before, 0, n);
    this.batchReads++;
    if (this.draining) {
      // The sentinel may straddle reads (not batches: see post), so search from just before this read.
      const at = batch.view.subarray(0, this.length).indexOf(this.sentinel, Math.max(0, before - this.sentinel.length + 1));
      if (at >= 0) {
        this.length = at;
        this.end();
        return;
      }
    }
    if (this.scheduled) return;
    if (process.hrtime.bigint() - this.lastPostAt >= (this.lastPostSmall ? SMALL_STREAMING_WINDOW_NS : STREAMING_WINDOW_NS)) {
      this.post();
      return;
    }
    this.scheduled = true;
    this.readsAtCheck = 0;
    setImmediate(this.check);
  }

  private readonly check = (): void => {
    if (this.batchReads > this.readsAtCheck && this.length < MAX_BATCH_BYTES) {
      this.readsAtCheck = this.batchReads;
      setImmediate(this.check);
      return;
    }
    this.post();
  };

  /**
   * Posts the batch. While draining, all but a tail that could be the start of a split sentinel: that
   * tail moves to the next batch (`final`: the search is over, everything goes).
   */
  private post(final = false): void {
    this.scheduled = false;
    const batch = this.batch;
    if (!batch || this.length === 0) return;
    const keep = this.draining && !final ? Math.min(this.length, this.sentinel.length - 1) : 0;
    const length = this.length - keep;
    if (length === 0) return;
    const copy = length <= COPY_POST_BYTES ? batch.data.slice(0, length) : undefined;
    this.length = 0;
    this.batchReads = 0;
    if (keep > 0) {
      // The tail kept while draining starts the next batch (after a copy, in this same buffer: copy() is memmove-safe).
      if (!copy) this.batch = undefined;
      this.length = batch.view.copy(this.filling().view, 0, length, length + keep);
    } else {
      this.batch = undefined;
      // A copied batch's buffer is free again: back to the pool, where the next read takes it from.
      if (copy) toPool(batch);
    }
    this.lastPostAt = process.hrtime.bigint();
    this.lastPostSmall = copy !== undefined;
    if (copy) {
      send({ op: 'data', id: this.id, data: copy, length, copy: true }, [copy]);
      return;
    }
    send({ op: 'data', id: this.id, data: batch.data, length }, [batch.data]);
    // Draining after exit reads on regardless: what is left is bounded by the terminal's buffer.
    if (++this.inFlight >= MAX_BATCHES_IN_FLIGHT && !this.draining) this.stream.pause();
  }

  /** The main thread is done with one of this terminal's batches. */
  freed(): void {
    this.inFlight--;
    if (this.inFlight < MAX_BATCHES_IN_FLIGHT && this.stream.isPaused() && !this.ended) {
      // Held back by the main thread, so the CI is streaming: collect a batch rather than post the first read.
      this.lastPostAt = process.hrtime.bigint();
      this.lastPostSmall = false;
      this.stream.resume();
    }
  }

  drain(): void {
    if (this.ended || this.draining) return;
    this.draining = true;
    this.stream.resume();
    this.writeSentinel();
    this.drainTimer = setTimeout(() => this.end(), DRAIN_TIMEOUT_MS);
  }

  private writeSentinel(): void {
    if (this.ended) return;
    fs.write(this.slave, this.sentinel, (error) => {
      // EAGAIN: the terminal is full because output is still pending; we are reading it, so retry.
      if (error?.code === 'EAGAIN') setTimeout(() => this.writeSentinel(), 1);
    });
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.drainTimer) clearTimeout(this.drainTimer);
    this.post(true);
    if (this.batch) toPool(this.batch);
    this.batch = undefined;
    this.stream.destroy();
    readers.delete(this.id);
    send({ op: 'end', id: this.id });
  }
}

/** A batch buffer and the Buffer over it (made once per buffer that comes back, not per batch). */
interface Batch {
  readonly data: ArrayBuffer;
  readonly view: Buffer;
}

const readers = new Map<number, Reader>();
const pool: Batch[] = [];

function batchOf(data: ArrayBuffer): Batch {
  return { data, view: Buffer.from(data) };
}

function toPool(batch: Batch): void {
  if (pool.length < POOL_SIZE) pool.push(batch);
}

function send(message: FromReader, transfer?: ArrayBuffer[]): void {
  parentPort?.postMessage(message, transfer);
}

parentPort?.on('message', (msg: ToReader) => {
  switch (msg.op) {
    case 'open':
      readers.set(msg.id, new Reader(msg.id, msg.fd, msg.slave, Buffer.from(msg.sentinel)));
      return;
    case 'drain':
      readers.get(msg.id)?.drain();
      return;
    case 'close':
      readers.get(msg.id)?.end();
      return;
    case 'free':
      readers.get(msg.id)?.freed();
      if (msg.data.byteLength === BATCH_BUFFER_BYTES) toPool(batchOf(msg.data));
      return;
  }
});
