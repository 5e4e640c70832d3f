/**
 * The PTY reader thread: reads every PTY master the process owns and hands the bytes to the main thread
 * in batches, zero-copy.
 *
 * Why a thread: a PTY holds only a few KiB, so while the main thread is busy with the last batch
 * (capture, mirror, clients) a fast agent blocks on a full terminal. Reading here keeps the agent
 * running at full speed whatever the main thread is doing (100 MiB through the hub went from ~43 to
 * ~75 MB/s here); the extra hop costs ~20 µs on a keystroke's echo.
 *
 * Batching: output that arrives after a pause is posted at once; while output streams (the last post was
 * under {@link STREAMING_WINDOW_MS} ago) reads are collected for as long as each turn of the loop brings
 * more, up to {@link MAX_BATCH_BYTES}. No timer holds anything back.
 *
 * Draining at exit: see server/pty.ts. When told the child exited, this thread writes the sentinel into
 * the slave side and reads until it comes out of the master, so every byte before it has been read.
 */
import * as fs from 'node:fs';
import * as tty from 'node:tty';
import { parentPort } from 'node:worker_threads';

/** Output counts as streaming if the previous post was this recent. */
export const STREAMING_WINDOW_MS = 2;
/** Most output collected into one post while streaming. */
export const MAX_BATCH_BYTES = 128 * 1024;
/**
 * Batches travel in buffers of this size that the main thread hands back after use (`free`), so memory
 * stays at a pool's worth instead of waiting for the main thread's GC to release transferred buffers
 * (100 MiB through a reader left ~80 MiB of them behind here). Room for one more read past the batch
 * limit.
 */
export const BATCH_BUFFER_BYTES = MAX_BATCH_BYTES + 64 * 1024;
/**
 * Batches of one terminal posted and not yet handed back (`free`): at this many the reader stops reading
 * that terminal until one comes back. A flood then waits in the agent (its writes block, as on any
 * terminal) rather than in the hub's memory; 8 keeps the main thread fed (4 cost ~15 % of throughput).
 * How long the main thread spends on them per turn is bounded separately (OUTPUT_SLICE_MS in pty.ts).
 */
export const MAX_BATCHES_IN_FLIGHT = 8;
/** Spare batch buffers kept. */
const POOL_SIZE = 16;
/** How long to wait for the drain sentinel after the child exited (see server/pty.ts). */
export const DRAIN_TIMEOUT_MS = 2000;

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
  /** `length` bytes of output at the start of `data` (a pooled buffer: send it back with `free`). */
  | { op: 'data'; id: number; data: ArrayBuffer; length: number }
  /** No more data: drained, closed, or the terminal went away. The master fd is closed. */
  | { op: 'end'; id: number };

const STREAMING_WINDOW_NS = BigInt(STREAMING_WINDOW_MS * 1_000_000);

class Reader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private scheduled = false;
  private chunksAtCheck = 0;
  private lastPostAt = 0n;
  private readonly stream: tty.ReadStream;
  private draining = false;
  /** After exit: bytes held back while looking for a sentinel that may straddle reads. */
  private held = Buffer.alloc(0);
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
    this.stream = new tty.ReadStream(fd);
    this.stream.on('data', (chunk: Buffer) => this.received(chunk));
    // EIO once the terminal is gone (the exit path handles completion); EAGAIN spuriously at start.
    this.stream.on('error', () => undefined);
    this.stream.on('close', () => this.end());
  }

  private received(chunk: Buffer): void {
    if (this.draining) {
      const data = this.held.length ? Buffer.concat([this.held, chunk]) : chunk;
      const at = data.indexOf(this.sentinel);
      if (at >= 0) {
        if (at > 0) this.queue(data.subarray(0, at));
        this.held = Buffer.alloc(0);
        this.end();
        return;
      }
      // Pass on all but a tail that could be the start of a split sentinel.
      const keep = Math.min(data.length, this.sentinel.length - 1);
      if (data.length > keep) this.queue(data.subarray(0, data.length - keep));
      this.held = Buffer.from(data.subarray(data.length - keep));
      return;
    }
    this.queue(chunk);
  }

  private queue(chunk: Buffer): void {
    if (this.pendingBytes + chunk.length > BATCH_BUFFER_BYTES) this.post();
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.scheduled) return;
    if (process.hrtime.bigint() - this.lastPostAt >= STREAMING_WINDOW_NS) {
      this.post();
      return;
    }
    this.scheduled = true;
    this.chunksAtCheck = 0;
    setImmediate(this.check);
  }

  private readonly check = (): void => {
    if (this.pending.length > this.chunksAtCheck && this.pendingBytes < MAX_BATCH_BYTES) {
      this.chunksAtCheck = this.pending.length;
      setImmediate(this.check);
      return;
    }
    this.post();
  };

  private post(): void {
    this.scheduled = false;
    if (this.pendingBytes === 0) return;
    const data = pool.pop() ?? new ArrayBuffer(BATCH_BUFFER_BYTES);
    const batch = Buffer.from(data);
    let length = 0;
    for (const chunk of this.pending) length += chunk.copy(batch, length);
    this.pending = [];
    this.pendingBytes = 0;
    this.lastPostAt = process.hrtime.bigint();
    send({ op: 'data', id: this.id, data, length }, [data]);
    // Draining after exit reads on regardless: what is left is bounded by the terminal's buffer.
    if (++this.inFlight >= MAX_BATCHES_IN_FLIGHT && !this.draining) this.stream.pause();
  }

  /** The main thread is done with one of this terminal's batches. */
  freed(): void {
    this.inFlight--;
    if (this.inFlight < MAX_BATCHES_IN_FLIGHT && this.stream.isPaused() && !this.ended) this.stream.resume();
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
    if (this.held.length) this.queue(this.held);
    this.post();
    this.stream.destroy();
    readers.delete(this.id);
    send({ op: 'end', id: this.id });
  }
}

const readers = new Map<number, Reader>();
const pool: ArrayBuffer[] = [];

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
      if (pool.length < POOL_SIZE && msg.data.byteLength === BATCH_BUFFER_BYTES) pool.push(msg.data);
      return;
  }
});
