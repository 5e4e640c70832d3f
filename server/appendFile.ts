/**
 * A file appended to synchronously, in batches (captures, the bus timeline, chats). What is added waits
 * for its batch (server/textBatch.ts), so a keystroke's echo or a message's acknowledgement does not wait
 * behind a system call; `flush` writes at once. A write lands in the page cache in tens of µs, less than
 * handing it to the thread pool costs (a Buffer copy, a thread wake, a completion back: ~7 % of a flood's
 * throughput here), and a disk slower than the writes then slows the hub — and, as its terminal fills,
 * the CI — instead of growing the hub's memory.
 *
 * The first failure (a full disk) closes the file and is reported once; later additions are dropped. A
 * line the failure cut is skipped by readers; it is cut off when the file is opened to append again
 * (repairTail in server/jsonl.ts) and, for the newest capture of each CI, at the hub's start (repairCast
 * in server/capture.ts).
 */
import * as fs from 'node:fs';
import { asError } from './errors';
import { TextBatch } from './textBatch';

/** Appends up to this size are encoded into one Buffer kept for the process (writes are synchronous). */
const SCRATCH_KEEP_BYTES = 1024 * 1024;
let scratch = Buffer.allocUnsafeSlow(64 * 1024);

export class AppendFile {
  /** -1 once closed, or when opening or writing failed. */
  private fd: number;
  private readonly batch = new TextBatch((parts) => this.write(parts));

  constructor(
    file: string,
    private readonly onError: (error: Error) => void,
  ) {
    try {
      this.fd = fs.openSync(file, 'a', 0o600);
    } catch (error) {
      this.fd = -1;
      // Reported once the caller has its file, as a failed write is.
      process.nextTick(() => this.onError(asError(error)));
    }
  }

  /** Whether appends still reach the file: neither closed nor failed. */
  get open(): boolean {
    return this.fd >= 0;
  }

  /** Adds text given in parts (a line around a chunk of output, say) to the next batch. */
  add(...parts: string[]): void {
    if (this.fd >= 0) this.batch.add(...parts);
  }

  /** Writes what waits for its batch now. */
  flush(): void {
    this.batch.flush();
  }

  /**
   * Writes a batch in one system call. Its parts are encoded into a Buffer kept for the purpose: neither
   * a Buffer per write nor the joined text is left for the garbage collector (under a flood, each was one
   * more copy of every batch, and more scavenges).
   */
  private write(parts: readonly string[]): void {
    if (this.fd < 0) return;
    let length = 0;
    for (const part of parts) length += Buffer.byteLength(part);
    if (length > scratch.length && length <= SCRATCH_KEEP_BYTES) scratch = Buffer.allocUnsafeSlow(Math.min(SCRATCH_KEEP_BYTES, Math.max(length, 2 * scratch.length)));
    const buffer = length <= scratch.length ? scratch : Buffer.allocUnsafeSlow(length);
    let at = 0;
    for (const part of parts) at += buffer.write(part, at);
    try {
      // A short write to a file means the disk filled up.
      if (fs.writeSync(this.fd, buffer, 0, at) < at) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    } catch (error) {
      this.close();
      this.onError(asError(error));
    }
  }

  /** Writes what waits, then closes the file. */
  close(): void {
    this.batch.flush();
    if (this.fd < 0) return;
    try {
      fs.closeSync(this.fd);
    } catch {
      // Closing can only fail for a bad fd: nothing is left to release.
    }
    this.fd = -1;
  }
}
