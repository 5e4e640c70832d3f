/**
 * Appends to a file through a WriteStream in batches: text waits {@link BATCH_MS} to be written together
 * with whatever follows it (at once past {@link BATCH_CHARS}). Each write the stream makes goes to the
 * thread pool and its completion comes back to the main thread; made once per keystroke or bus message,
 * those two thread wakes competed with the keystroke's echo and the message's acknowledgement on a
 * 2-core machine. Used for records whose timing is taken when they happen: capture, timeline.
 */
import type * as fs from 'node:fs';

/** How long text waits for more. */
export const BATCH_MS = 16;
/** Text waiting beyond which it is written at once. */
const BATCH_CHARS = 64 * 1024;

export class BatchedWrites {
  private waiting: string[] = [];
  private waitingChars = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly stream: fs.WriteStream) {}

  write(text: string): void {
    this.waiting.push(text);
    this.waitingChars += text.length;
    if (this.waitingChars >= BATCH_CHARS) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), BATCH_MS);
  }

  /** Hands everything waiting to the stream now. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.waiting.length === 0) return;
    const text = this.waiting.length === 1 ? this.waiting[0] : this.waiting.join('');
    this.waiting = [];
    this.waitingChars = 0;
    this.stream.write(text);
  }

  /** Resolves once everything written so far has reached the file. */
  flushed(): Promise<void> {
    this.flush();
    return new Promise((resolve) => this.stream.write('', () => resolve()));
  }

  /** Writes what is waiting and closes the stream. */
  end(): Promise<void> {
    this.flush();
    return new Promise((resolve) => this.stream.end(() => resolve()));
  }
}
