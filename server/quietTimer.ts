/**
 * Calls back once nothing has touched it for a while: one timer per quiet spell however often it is
 * touched (a flood touches it per batch), re-armed for the rest of the spell when it fires early.
 */
export class QuietTimer {
  private lastAt = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ms: number,
    private readonly onQuiet: () => void,
  ) {}

  touch(): void {
    this.lastAt = Date.now();
    this.timer ??= this.arm(this.ms);
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  // Unref'd: a pending quiet check never keeps the process alive.
  private arm(ms: number): NodeJS.Timeout {
    return setTimeout(() => this.fired(), ms).unref();
  }

  private fired(): void {
    const quietFor = Date.now() - this.lastAt;
    if (quietFor < this.ms) {
      this.timer = this.arm(this.ms - quietFor);
      return;
    }
    this.timer = undefined;
    this.onQuiet();
  }
}
