/**
 * Text handed on in batches: what is added waits a moment to go out together with whatever follows it
 * (at once past a size). The hub uses it for work a keystroke's echo or a message's acknowledgement must
 * not wait behind: appending to captures and the timeline (a system call each, server/appendFile.ts), and
 * feeding the screen mirror (a thread wake and an acknowledgement back). Made per keystroke, on 2 cores,
 * those competed with the echo. Timing is taken when things happen, not when they go out.
 */

/** How long text waits for more, by default (a frame at 60 Hz). */
const BATCH_MS = 16;
/** Text waiting beyond which it goes out at once, by default. */
const BATCH_CHARS = 64 * 1024;

export class TextBatch {
  private waiting: string[] = [];
  /** Characters waiting. */
  chars = 0;
  private timer: NodeJS.Timeout | undefined;

  /**
   * `sink` gets the waiting text as the parts it was added in, not joined: a sink that encodes them
   * (server/appendFile.ts) would otherwise copy a flood's text once more on the heap.
   */
  constructor(
    private readonly sink: (parts: readonly string[]) => void,
    private readonly delayMs = BATCH_MS,
    private readonly maxChars = BATCH_CHARS,
  ) {}

  /** Adds text given in parts (a line around a chunk of output, say), which go out in the same batch. */
  add(...parts: string[]): void {
    for (const part of parts) {
      this.waiting.push(part);
      this.chars += part.length;
    }
    if (this.chars >= this.maxChars) this.flush();
    // Unref'd: whoever owns the batch flushes it when it closes.
    else this.timer ??= setTimeout(() => this.flush(), this.delayMs).unref();
  }

  /** Hands everything waiting to the sink now. */
  flush(): void {
    this.cancel();
    if (this.waiting.length === 0) return;
    const parts = this.waiting;
    this.waiting = [];
    this.chars = 0;
    this.sink(parts);
  }

  /** Drops what is waiting. */
  clear(): void {
    this.cancel();
    this.waiting = [];
    this.chars = 0;
  }

  private cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
