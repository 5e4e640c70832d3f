/**
 * NDJSON framing for the bus sockets: complete lines out of a byte stream, with a size limit. A line over
 * the limit is reported once and skipped up to its newline, so the connection stays usable.
 */

/** What a line says: the `content` of a JSON object, or else the line itself (plain text). */
export function lineContent(line: string): string {
  try {
    const value: unknown = JSON.parse(line);
    if (value && typeof value === 'object' && 'content' in value && typeof value.content === 'string') return value.content;
  } catch {
    // not JSON: the line itself is the content
  }
  return line;
}

export type LineEvent = { line: Buffer } | { tooLarge: number };

export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  /** Inside an over-long line: drop bytes until its newline. */
  private skipping = false;

  constructor(private readonly limit: number) {}

  /** Feeds bytes; returns complete lines (without the newline) and over-long line reports, in order. */
  push(data: Buffer): LineEvent[] {
    const out: LineEvent[] = [];
    let start = 0;
    for (;;) {
      const nl = data.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = data.subarray(start, nl);
      if (this.skipping) {
        this.skipping = false;
      } else if (this.size + piece.length > this.limit) {
        out.push({ tooLarge: this.size + piece.length });
      } else {
        const line = this.parts.length ? Buffer.concat([...this.parts, piece]) : piece;
        out.push({ line: line[line.length - 1] === 0x0d ? line.subarray(0, -1) : line });
      }
      this.parts = [];
      this.size = 0;
      start = nl + 1;
    }
    const rest = data.subarray(start);
    if (rest.length && !this.skipping) {
      if (this.size + rest.length > this.limit) {
        out.push({ tooLarge: this.size + rest.length });
        this.parts = [];
        this.size = 0;
        this.skipping = true;
      } else {
        // Copy: the caller's buffer may be reused.
        this.parts.push(Buffer.from(rest));
        this.size += rest.length;
      }
    }
    return out;
  }
}
