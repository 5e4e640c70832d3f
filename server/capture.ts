/**
 * Capture: every byte a CI printed and every byte typed into it, with timing and resizes, as one
 * asciicast v2 file per session (`captures/<ci>/<session>.cast`, playable with `asciinema play`).
 *
 * asciicast v2: a JSON header line, then one JSON array per event: `[seconds, "o"|"i"|"r", data]`.
 * Data is text, so the hub decodes the PTY's bytes as a UTF-8 stream (a character split across reads
 * is kept whole); bytes that are not UTF-8 become U+FFFD, as in asciinema's own recorder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface CastHeader {
  readonly width: number;
  readonly height: number;
  readonly title?: string;
  readonly command?: string;
  readonly env?: Readonly<Record<string, string>>;
}

/** A session id that sorts by time: `20261121T054100Z-1`. */
export function newSessionId(dir: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  for (let n = 1; ; n++) {
    const id = `${stamp}-${n}`;
    if (!fs.existsSync(path.join(dir, `${id}.cast`))) return id;
  }
}

export class CastWriter {
  readonly path: string;
  readonly startedAt: number;
  private readonly stream: fs.WriteStream;
  private readonly started: bigint;
  private closed = false;
  /** Set when writing failed (disk full, …); the error is reported once by the owner. */
  error: Error | undefined;

  private constructor(file: string, header: CastHeader, onError: (error: Error) => void) {
    this.path = file;
    this.startedAt = Date.now();
    this.started = process.hrtime.bigint();
    this.stream = fs.createWriteStream(file, { flags: 'a', mode: 0o600 });
    this.stream.on('error', (error) => {
      if (!this.error) {
        this.error = error;
        onError(error);
      }
    });
    const head = {
      version: 2,
      width: header.width,
      height: header.height,
      timestamp: Math.floor(this.startedAt / 1000),
      ...(header.title ? { title: header.title } : {}),
      ...(header.command ? { command: header.command } : {}),
      env: header.env ?? { TERM: 'xterm-256color', SHELL: '/bin/sh' },
    };
    this.stream.write(`${JSON.stringify(head)}\n`);
  }

  /** Starts a new session file in `dir` (created 0700 if missing). */
  static create(dir: string, id: string, header: CastHeader, onError: (error: Error) => void): CastWriter {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    return new CastWriter(path.join(dir, `${id}.cast`), header, onError);
  }

  private elapsed(): number {
    return Math.round(Number(process.hrtime.bigint() - this.started) / 1000) / 1e6;
  }

  private event(code: 'o' | 'i' | 'r', data: string): void {
    this.eventJson(code, JSON.stringify(data));
  }

  private eventJson(code: 'o' | 'i' | 'r', json: string): void {
    if (this.closed) return;
    this.stream.write(`[${this.elapsed()},"${code}",${json}]\n`);
  }

  output(data: string): void {
    this.event('o', data);
  }

  /** Output given as `JSON.stringify(text)` (the hub escapes each chunk once for clients and capture). */
  outputJson(json: string): void {
    this.eventJson('o', json);
  }

  input(data: string): void {
    this.event('i', data);
  }

  resize(cols: number, rows: number): void {
    this.event('r', `${cols}x${rows}`);
  }

  /** Bytes waiting to reach the file. */
  get pendingBytes(): number {
    return this.stream.writableLength;
  }

  /** Flushes and closes the file. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.stream.end(() => resolve()));
  }
}

/**
 * Makes a cast file that a crash cut short readable again: drops a partial last line (a write the hub
 * was killed in the middle of) so every line is complete JSON. Returns the bytes dropped.
 */
export function repairCast(file: string): number {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r+');
  } catch {
    return 0;
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return 0;
    const tailSize = Math.min(size, 1024 * 1024);
    const tail = Buffer.alloc(tailSize);
    fs.readSync(fd, tail, 0, tailSize, size - tailSize);
    let end = tail.length;
    // Walk back over lines that are not complete JSON (at most the last one, in practice).
    for (;;) {
      const text = tail.subarray(0, end);
      const complete = end > 0 && text[end - 1] === 0x0a;
      const body = complete ? text.subarray(0, end - 1) : text;
      const start = body.lastIndexOf(0x0a) + 1;
      const line = body.subarray(start).toString('utf8');
      if (complete && isJsonLine(line)) break;
      if (start === 0) {
        end = 0;
        break;
      }
      end = start;
    }
    const keep = size - tailSize + end;
    if (keep < size) fs.ftruncateSync(fd, keep);
    return size - keep;
  } finally {
    fs.closeSync(fd);
  }
}

function isJsonLine(line: string): boolean {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}

/** Sessions of one CI, oldest first. */
export function listSessions(dir: string): { id: string; path: string; bytes: number; startedAt: number }[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.endsWith('.cast'))
    .sort()
    .map((n) => {
      const file = path.join(dir, n);
      const st = fs.statSync(file);
      return { id: n.slice(0, -'.cast'.length), path: file, bytes: st.size, startedAt: st.birthtimeMs || st.mtimeMs };
    });
}
