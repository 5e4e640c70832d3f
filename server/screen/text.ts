/**
 * Terminal output as text a person reads: what a terminal emulator (headless xterm) would show, not the
 * escape codes — colors dropped, cursor movements and carriage-return redraws applied, wrapped lines
 * joined, trailing blank lines trimmed.
 */
import { Terminal } from '@xterm/headless';

/** Writes and waits until parsed. */
export function writeAll(term: Terminal, data: string): Promise<void> {
  return new Promise((resolve) => term.write(data, resolve));
}

/** Lines `from`…end of the buffer as text: wrapped lines joined, trailing blank lines dropped, at most `maxLines` (the last). */
export function bufferText(term: Terminal, from: number, maxLines: number): string {
  const buffer = term.buffer.active;
  const lines: string[] = [];
  for (let y = Math.max(0, from); y < buffer.length; y++) {
    const line = buffer.getLine(y);
    if (!line) continue;
    const text = line.translateToString(true);
    if (line.isWrapped && lines.length) lines[lines.length - 1] += text;
    else lines.push(text);
  }
  while (lines.length && lines[lines.length - 1].trim() === '') lines.pop();
  return lines.slice(-maxLines).join('\n');
}

/** Renders raw terminal output in a fresh terminal of the given size and returns its text. */
export async function renderText(output: string, cols = 80, rows = 24, scrollback = 1000): Promise<string> {
  const term = new Terminal({ cols, rows, scrollback, allowProposedApi: true });
  try {
    await writeAll(term, output);
    return bufferText(term, 0, scrollback + rows);
  } finally {
    term.dispose();
  }
}
