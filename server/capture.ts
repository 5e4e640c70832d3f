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
import { AppendFile } from './appendFile';

export interface CastHeader {
  readonly width: number;
  readonly height: number;
  readonly title?: string;
  readonly command?: string;
  readonly env?: Readonly<Record<string, string>>;
}

/** When a session began, from its id (see {@link newSessionId}); undefined for another name. */
function sessionStart(id: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-\d+$/.exec(id);
  return m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])) : undefined;
}

/**
 * A session id that sorts by time: `20261121T054100Z-1`; within one second the number goes up (past
 * every id of that second still on disk, so ids stay in order when retention removed the older ones).
 */
export function newSessionId(dir: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  let last = 0;
  try {
    for (const name of fs.readdirSync(dir)) {
      const m = name.startsWith(`${stamp}-`) ? /-(\d+)\.cast$/.exec(name) : null;
      if (m) last = Math.max(last, Number(m[1]));
    }
  } catch {
    // no captures yet
  }
  return `${stamp}-${last + 1}`;
}

/** Events a continuation holds in memory while it waits for the screen to start from, at most; past it, it starts without. */
const HELD_MAX_BYTES = 16 * 1024 * 1024;

interface HeldEvent {
  /** process.hrtime.bigint() when it happened. */
  stamp: bigint;
  code: 'o' | 'i' | 'r';
  json: string;
  seq?: number;
}

export class CastWriter {
  readonly path: string;
  readonly startedAt: number;
  /** The file, written in batches (server/appendFile.ts; not open once closed or failed). */
  private readonly file: AppendFile;
  private readonly started: bigint;
  private closed = false;
  /** Bytes written to the file (header and events). */
  bytes = 0;
  /** A continuation's events until {@link start}; and the file it continues, still open until then. */
  private held: HeldEvent[] | undefined;
  private heldBytes = 0;
  private heldMaxBytes = HELD_MAX_BYTES;
  private previous: CastWriter | undefined;

  /** `onError`: writing failed (disk full, …), reported once; nothing more is recorded. */
  private constructor(file: string, header: CastHeader, onError: (error: Error) => void) {
    this.path = file;
    this.startedAt = Date.now();
    this.started = process.hrtime.bigint();
    this.file = new AppendFile(file, onError);
    const head = {
      version: 2,
      width: header.width,
      height: header.height,
      timestamp: Math.floor(this.startedAt / 1000),
      ...(header.title ? { title: header.title } : {}),
      ...(header.command ? { command: header.command } : {}),
      env: header.env ?? { TERM: 'xterm-256color', SHELL: '/bin/sh' },
    };
    this.write(`${JSON.stringify(head)}\n`);
  }

  /** Starts a new session file in `dir` (created 0700 if missing). */
  static create(dir: string, id: string, header: CastHeader, onError: (error: Error) => void): CastWriter {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    return new CastWriter(path.join(dir, `${id}.cast`), header, onError);
  }

  /**
   * Starts a file that continues `previous`, a session grown past its size limit, so that it plays on
   * its own: it begins with the screen, which comes a moment later ({@link start}). Until then events
   * are held; the ones the screen already shows go to the end of `previous`, the rest to this file.
   * Nothing is lost or written twice.
   */
  static continuation(previous: CastWriter, id: string, header: CastHeader, onError: (error: Error) => void, heldMaxBytes: number): CastWriter {
    const writer = new CastWriter(path.join(path.dirname(previous.path), `${id}.cast`), header, onError);
    writer.held = [];
    writer.heldMaxBytes = Math.min(heldMaxBytes, HELD_MAX_BYTES);
    writer.previous = previous;
    return writer;
  }

  /**
   * Begins a continuation with `screen`, the screen after output number `screen.seq`: held events up to
   * it end the previous file, which is then closed; the screen and the events after it begin this one.
   * Without a screen (it came too late), every held event goes here and the file begins mid-stream.
   */
  start(screen?: { data: string; seq: number }): void {
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    this.heldBytes = 0;
    let at = 0;
    if (screen && this.previous) {
      const previous = this.previous;
      for (; at < held.length; at++) {
        const e = held[at];
        if (e.seq !== undefined && e.seq > screen.seq) break;
        previous.writeEvent(e);
      }
    }
    this.previous?.close();
    this.previous = undefined;
    if (screen?.data) this.write(`[0,"o",${JSON.stringify(screen.data)}]\n`);
    for (; at < held.length; at++) this.writeEvent(held[at]);
  }

  private writeEvent(e: HeldEvent): void {
    const elapsed = e.stamp > this.started ? Math.round(Number(e.stamp - this.started) / 1000) / 1e6 : 0;
    // In parts: the event's text, up to a flood batch, is not copied into a line first.
    this.write(`[${elapsed},"${e.code}",`, e.json, ']\n');
  }

  /** Appends a line given in parts. */
  private write(...line: string[]): void {
    if (!this.file.open) return; // failed: nothing is recorded, and `bytes` must not grow towards a roll-over
    for (const part of line) this.bytes += part.length;
    this.file.add(...line);
  }

  private eventJson(code: 'o' | 'i' | 'r', json: string, seq?: number): void {
    if (!this.file.open) return; // closed or failed
    const e: HeldEvent = { stamp: process.hrtime.bigint(), code, json, seq };
    if (!this.held) {
      this.writeEvent(e);
      return;
    }
    this.held.push(e);
    this.heldBytes += json.length;
    if (this.heldBytes > this.heldMaxBytes) this.start(); // the screen is late: go on without it, losing nothing
  }

  /** Output given as `JSON.stringify(text)` (the hub escapes each chunk once for clients and capture); `seq` numbers it for {@link start}. */
  outputJson(json: string, seq?: number): void {
    this.eventJson('o', json, seq);
  }

  /** Hands what waits for the next batch to the file now. */
  flush(): void {
    this.file.flush();
  }

  input(data: string): void {
    this.eventJson('i', JSON.stringify(data));
  }

  resize(cols: number, rows: number): void {
    this.eventJson('r', JSON.stringify(`${cols}x${rows}`));
  }

  /** Writes what is waiting and closes the file (a continuation still waiting for its screen starts without it). */
  close(): void {
    if (this.closed) return;
    this.start();
    this.closed = true;
    this.file.close();
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
  return sessionIds(dir).map((id) => {
    const file = path.join(dir, `${id}.cast`);
    const st = fs.statSync(file);
    return { id, path: file, bytes: st.size, startedAt: sessionStart(id) ?? (st.birthtimeMs || st.mtimeMs) };
  });
}

/** The newest session of a CI's capture dir, without reading the others. */
export function lastSession(dir: string): { id: string; path: string } | undefined {
  const id = sessionIds(dir).pop();
  return id === undefined ? undefined : { id, path: path.join(dir, `${id}.cast`) };
}

/** Session ids in `dir`, oldest first: by time, then by number within a second (`-10` after `-9`). */
function sessionIds(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.endsWith('.cast'))
    .map((n) => n.slice(0, -'.cast'.length))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}
