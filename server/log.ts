/**
 * The hub's log: timestamped lines on stderr (the launcher points stderr at `hub.log` in the state dir),
 * plus the most recent lines in memory for clients that show them (the extension's output channel).
 * Secret values registered with {@link Log.redact} are masked in every line.
 */

/** Lines kept in memory for `cihub/logs`. */
const RECENT_LINES = 500;

export type LogLevel = 'info' | 'warn' | 'error';

export class Log {
  private readonly recent: string[] = [];
  private readonly secrets = new Set<string>();
  private readonly listeners = new Set<(line: string) => void>();

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

  onLine(listener: (line: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private write(level: LogLevel, message: string): void {
    const line = `${new Date().toISOString()} ${level.padEnd(5)} ${this.scrub(message)}`;
    process.stderr.write(`${line}\n`);
    this.recent.push(line);
    if (this.recent.length > RECENT_LINES) this.recent.shift();
    for (const listener of this.listeners) listener(line);
  }
}
