/**
 * The messages sent from this view, walked with Up and Down like a shell's history. Walking back from
 * the newest keeps what was being typed, and walking forward past the newest gives it back.
 */
export class InputHistory {
  private readonly items: string[];
  /** Index of the entry shown; `items.length` when not walking. */
  private cursor: number;
  private draft = '';

  constructor(
    items: readonly string[] = [],
    private readonly limit = 100,
  ) {
    this.items = items.slice(-limit);
    this.cursor = this.items.length;
  }

  /** Every remembered message, oldest first. */
  get entries(): readonly string[] {
    return this.items;
  }

  /** Whether Up has been pressed and the input shows a remembered message. */
  get walking(): boolean {
    return this.cursor < this.items.length;
  }

  /** Remembers a sent message (not twice in a row) and stops walking. */
  push(text: string): void {
    if (this.items[this.items.length - 1] !== text) this.items.push(text);
    if (this.items.length > this.limit) this.items.splice(0, this.items.length - this.limit);
    this.reset();
  }

  /** The message before the one shown, or undefined at the oldest. `current` is kept as the draft. */
  previous(current: string): string | undefined {
    if (this.cursor === 0) return undefined;
    if (!this.walking) this.draft = current;
    this.cursor -= 1;
    return this.items[this.cursor];
  }

  /** The message after the one shown, then the draft; undefined when not walking. */
  next(): string | undefined {
    if (!this.walking) return undefined;
    this.cursor += 1;
    return this.walking ? this.items[this.cursor] : this.draft;
  }

  /** Stops walking (the input was edited or sent). */
  reset(): void {
    this.cursor = this.items.length;
    this.draft = '';
  }
}
