/**
 * The hub's log: timestamped lines on stderr (the launcher points stderr at `hub.log` in the state dir),
 * plus the most recent lines in memory for clients that show them (the extension's output channel).
 * Secret values registered with {@link Log.redact} are masked in every line. The log cannot fill the
 * disk: a message repeated back to back is counted rather than written again, and when stderr is
 * `hub.log` it is rotated to `hub.log.1` once it grows past {@link LOG_MAX_BYTES}.
 */
import * as fs from 'node:fs';
import { errorMessage } from './errors';

/** Lines kept in memory for `cihub/logs`. */
const RECENT_LINES = 500;
/** A message written this many times in a row is then only counted, until another one comes. */
const REPEATS_WRITTEN = 3;
/** Longest message written; longer ones (a stack is ~2 KiB) are cut, saying how long they were. */
const MESSAGE_MAX_CHARS = 8192;
/** hub.log is rotated to hub.log.1 when it grows past this while the hub runs (and at a start). */
export const LOG_MAX_BYTES = 5 * 1024 * 1024;

export type LogLevel = 'info' | 'warn' | 'error';

export class Log {
  private readonly recent: string[] = [];
  private readonly secrets = new Set<string>();
  private readonly listeners = new Set<(line: string, level: LogLevel) => void>();
  private last = '';
  private lastLevel: LogLevel = 'info';
  private repeats = 0;
  private fileBytes = 0;

  /** `file`: the path stderr is appended to, when it is (the daemon), so the log can be rotated. */
  constructor(private readonly file?: string) {
    if (file) this.fileBytes = stderrFileSize(file) ?? 0;
  }

  info(message: string): void {
    this.write('info', message);
  }

  warn(message: string): void {
    this.write('warn', message);
  }

  error(message: string): void {
    this.write('error', message);
  }

  /** Masks `value` wherever it would appear in the log from now on (API keys). */
  redact(value: string): void {
    if (value.length >= 6) this.secrets.add(value);
  }

  /** Removes registered secret values from `text`. */
  scrub(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join('[redacted]');
    return out;
  }

  lines(): string[] {
    return [...this.recent];
  }

  onLine(listener: (line: string, level: LogLevel) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private write(level: LogLevel, message: string): void {
    const clean = this.scrub(message);
    const text = `${level.padEnd(5)} ${clean.length > MESSAGE_MAX_CHARS ? `${clean.slice(0, MESSAGE_MAX_CHARS)}… (${clean.length} characters)` : clean}`;
    if (text === this.last) {
      if (++this.repeats >= REPEATS_WRITTEN) return;
    } else {
      const skipped = this.repeats - REPEATS_WRITTEN + 1;
      if (skipped > 0) this.emit(this.lastLevel, `${this.lastLevel.padEnd(5)} (the previous message was repeated ${skipped} more times)`);
      this.last = text;
      this.lastLevel = level;
      this.repeats = 0;
    }
    this.emit(level, text);
  }

  private emit(level: LogLevel, text: string): void {
    const line = `${new Date().toISOString()} ${text}`;
    process.stderr.write(`${line}\n`);
    this.fileBytes += Buffer.byteLength(line) + 1;
    if (this.file && this.fileBytes > LOG_MAX_BYTES) this.rotate(this.file);
    this.recent.push(line);
    if (this.recent.length > RECENT_LINES) this.recent.shift();
    for (const listener of this.listeners) listener(line, level);
  }

  /** Copies hub.log to hub.log.1 and empties it in place (stderr keeps appending to the same file). */
  private rotate(file: string): void {
    this.fileBytes = 0;
    if (stderrFileSize(file) === undefined) return;
    try {
      fs.copyFileSync(file, `${file}.1`);
      fs.ftruncateSync(2, 0);
    } catch (error) {
      // The log must never take the hub down; keep writing, unrotated.
      process.stderr.write(`log rotation failed: ${errorMessage(error)}\n`);
    }
  }
}

/** The size of `file` when stderr is that very file (not a terminal, not another file); else undefined. */
function stderrFileSize(file: string): number | undefined {
  try {
    const err = fs.fstatSync(2);
    const log = fs.statSync(file);
    return err.isFile() && err.ino === log.ino && err.dev === log.dev ? err.size : undefined;
  } catch {
    return undefined; // no such file, or stderr closed: nothing to rotate
  }
}
