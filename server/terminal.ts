/**
 * One CI's terminal as the hub sees it: what the CI prints goes, in this order and without a timer, to
 * the capture, the screen mirror and every attached client; what attached clients type goes to the CI
 * (and the capture). The terminal outlives the CI's process: a restart continues on the same screen and
 * the same attachments, in a new capture session.
 *
 * A slow client never slows the CI, the capture or other clients: its unsent output is counted, and past
 * a bound it stops receiving, then is resynced from the screen mirror once it has caught up.
 */
import { StringDecoder } from 'node:string_decoder';
import { CastWriter, newSessionId, type CastHeader } from './capture';
import type { CaptureFiles } from './captureRetention';
import type { Screen, ScreenMirrors } from './screen/mirror';
import { reclaimer } from './memory';
import type { CiInfo } from './protocol';

/**
 * A client with more unsent data than this is behind: it gets no more live output (its backlog is not
 * grown further) until it is back under {@link ATTACH_LOW_WATERMARK_BYTES}, then is resynced from the
 * screen mirror. 4 MiB is ~50 ms of a flood and far more than any screen.
 */
export const ATTACH_HIGH_WATERMARK_BYTES = 4 * 1024 * 1024;
/** See {@link ATTACH_HIGH_WATERMARK_BYTES}. */
export const ATTACH_LOW_WATERMARK_BYTES = 256 * 1024;
/** How long a client that fell behind may take to catch up before its attachment ends without a last screen. */
const FINAL_SYNC_WAIT_MS = 5000;
/** Output buffered for an attachment while its replay snapshot is prepared; beyond it, resync instead. */
const PENDING_LIMIT_BYTES = ATTACH_HIGH_WATERMARK_BYTES;

/** The connection an attachment sends through (server/rpc.ts implements it). */
export interface AttachClient {
  readonly id: number;
  /** Bytes queued on the connection's socket and not yet taken by the kernel: output, events and replies alike. */
  readonly backlogBytes: number;
  /** `json`: `JSON.stringify(text)` when the caller has it already. */
  sendOutput(attachId: string, kind: 'replay' | 'live' | 'resync', text: string, json?: string): void;
  sendAttachEnded(attachId: string, reason: string, ci: CiInfo): void;
  /** Calls `listener` once the backlog is under the low watermark (at once if it is already). */
  whenDrained(listener: () => void): void;
}

/** Where input typed by attached clients goes: the PTY, a wrapping client, a model's line editor. */
export interface TerminalBackend {
  write(data: string): void;
  resize(cols: number, rows: number): void;
}

type AttachState = 'pending' | 'live' | 'behind';

class Attachment {
  state: AttachState = 'pending';
  buffered: { seq: number; data: string }[] = [];
  bufferedBytes = 0;
  overflowed = false;
  constructor(
    readonly client: AttachClient,
    readonly attachId: string,
    readonly readOnly: boolean,
    public cols: number,
    public rows: number,
  ) {}
}

export interface TerminalStats {
  /** Bytes of output and input captured (all sessions). */
  bytesCaptured: number;
  lastOutputAt?: number;
  /** When an attached human last typed (for the bus's inject policy). */
  lastTypedAt?: number;
  /** The program asked for bracketed paste (DECSET 2004): the bus injects messages as one paste. */
  bracketedPaste: boolean;
}

export class CiTerminal {
  private seq = 0;
  private decoder = new StringDecoder('utf8');
  private readonly screen: Screen;
  private capture: CastWriter | undefined;
  /** The current session's header (title, command), for the files it continues in. */
  private header: Omit<CastHeader, 'width' | 'height'> = {};
  private readonly attachments = new Map<string, Attachment>();
  /** Attachments that may size the terminal, most recent last. */
  private readonly sizers: Attachment[] = [];
  private closed = false;
  private readonly outputListeners = new Set<() => void>();
  backend: TerminalBackend | undefined;
  cols: number;
  rows: number;
  readonly stats: TerminalStats;

  constructor(
    mirrors: ScreenMirrors,
    cols: number,
    rows: number,
    bytesCaptured: number,
    private readonly files: CaptureFiles,
    private readonly report: (message: string) => void,
  ) {
    this.cols = cols;
    this.rows = rows;
    this.screen = mirrors.open(cols, rows);
    this.stats = { bytesCaptured, bracketedPaste: false };
  }

  /** What every kind of CI reports of its terminal in {@link CiInfo}. */
  infoFields(): Pick<CiInfo, 'lastOutputAt' | 'bytesCaptured' | 'cols' | 'rows' | 'attached'> {
    return { lastOutputAt: this.stats.lastOutputAt, bytesCaptured: this.stats.bytesCaptured, cols: this.cols, rows: this.rows, attached: this.attachments.size };
  }

  get sessionPath(): string | undefined {
    return this.capture?.path;
  }

  /** Begins a capture session (a new .cast file); returns its id. */
  beginSession(header: Omit<CastHeader, 'width' | 'height'>): string {
    this.capture?.close();
    const id = newSessionId(this.files.dir);
    this.decoder = new StringDecoder('utf8');
    this.stats.bracketedPaste = false;
    this.header = header;
    this.capture = CastWriter.create(this.files.dir, id, { ...header, width: this.cols, height: this.rows }, (error) => this.captureFailed(error));
    return id;
  }

  private captureFailed(error: Error): void {
    this.files.failed(`its capture to ${this.files.dir} failed: ${error.message}${error.message.includes('ENOSPC') ? ' (the disk is full)' : ''}; its output is no longer recorded until it restarts`);
  }

  /**
   * The session's file reached its size limit: it continues in a new file, which begins with the screen
   * as it is (so it plays on its own), and retention may remove old files.
   */
  private rollOver(): void {
    const previous = this.capture;
    if (!previous) return;
    const next = CastWriter.continuation(
      previous,
      newSessionId(this.files.dir),
      { ...this.header, width: this.cols, height: this.rows },
      (error) => this.captureFailed(error),
      this.files.segmentBytes() / 2,
    );
    this.capture = next;
    this.screen.snapshot().then(
      (screen) => next.start(screen),
      (error: unknown) => {
        this.report(`screen snapshot for the capture failed: ${String(error)}`);
        next.start();
      },
    );
    this.files.rolledOver();
  }

  /** Ends the capture session, flushing what the decoder still holds. */
  endSession(): void {
    const rest = this.decoder.end();
    if (rest) this.emit(rest);
    const capture = this.capture;
    this.capture = undefined;
    capture?.close();
  }

  /** Bytes the CI printed (already batched by the PTY reader thread). */
  output(chunk: Buffer): void {
    this.stats.bytesCaptured += chunk.length;
    this.stats.lastOutputAt = Date.now();
    // Searched in the bytes: natively, several times faster than in the decoded string under a flood.
    this.trackModes(chunk);
    const text = this.decoder.write(chunk);
    if (text) this.emit(text, true);
  }

  /** Text the CI printed, already decoded (a wrapping client or a model CI). */
  outputText(text: string): void {
    this.stats.bytesCaptured += Buffer.byteLength(text);
    this.stats.lastOutputAt = Date.now();
    this.trackModes(text);
    this.emit(text, true);
  }

  /** Text the hub shows in the terminal itself (a restart notice): mirrored and sent, not captured. */
  notice(text: string): void {
    this.emit(text, false);
  }

  private emit(text: string, captured = true): void {
    const seq = ++this.seq;
    reclaimer.output();
    // Escaped once for every client and the capture.
    const json = JSON.stringify(text);
    // Clients first: they are the latency-sensitive ones.
    for (const a of this.attachments.values()) this.deliver(a, seq, text, json);
    if (captured && this.capture) {
      this.capture.outputJson(json, seq);
      if (this.capture.bytes > this.files.segmentBytes()) this.rollOver();
    }
    this.screen.write(text, seq);
    if (captured) for (const listener of this.outputListeners) listener();
  }

  /** Calls `listener` after each piece of output the CI prints; returns the unsubscribe. */
  onOutput(listener: () => void): () => void {
    this.outputListeners.add(listener);
    return () => this.outputListeners.delete(listener);
  }

  /** Follows DECSET/DECRST 2004 (bracketed paste) in what the program prints. */
  private trackModes(output: Buffer | string): void {
    const at = output.lastIndexOf('\x1b[?2004');
    if (at < 0) return;
    const mode = typeof output === 'string' ? output.charCodeAt(at + 7) : output[at + 7];
    if (mode === 0x68 /* h */) this.stats.bracketedPaste = true;
    else if (mode === 0x6c /* l */) this.stats.bracketedPaste = false;
  }

  private deliver(a: Attachment, seq: number, data: string, json: string): void {
    if (a.state === 'live') {
      if (a.client.backlogBytes > ATTACH_HIGH_WATERMARK_BYTES) {
        this.fallBehind(a);
        return;
      }
      a.client.sendOutput(a.attachId, 'live', data, json);
    } else if (a.state === 'pending' && !a.overflowed) {
      a.buffered.push({ seq, data });
      a.bufferedBytes += data.length;
      if (a.bufferedBytes > PENDING_LIMIT_BYTES) {
        a.overflowed = true;
        a.buffered = [];
      }
    }
  }

  private fallBehind(a: Attachment): void {
    a.state = 'behind';
    a.client.whenDrained(() => {
      if (this.attachments.get(key(a.client, a.attachId)) === a) void this.sync(a, 'resync');
    });
  }

  /** Sends `a` the current screen, then whatever was printed while the snapshot was taken. */
  private async sync(a: Attachment, kind: 'replay' | 'resync'): Promise<void> {
    a.state = 'pending';
    a.buffered = [];
    a.bufferedBytes = 0;
    a.overflowed = false;
    let snapshot;
    try {
      snapshot = await this.screen.snapshot();
    } catch (error) {
      this.report(`screen snapshot failed: ${String(error)}`);
      snapshot = { data: '', seq: this.seq };
    }
    if (this.attachments.get(key(a.client, a.attachId)) !== a) return;
    if (a.overflowed) {
      // Too much arrived meanwhile (a flood): start over from a newer snapshot.
      void this.sync(a, kind);
      return;
    }
    a.client.sendOutput(a.attachId, kind, kind === 'resync' ? `\x1bc${snapshot.data}` : snapshot.data);
    for (const chunk of a.buffered) {
      if (chunk.seq > snapshot.seq) a.client.sendOutput(a.attachId, 'live', chunk.data);
    }
    a.buffered = [];
    a.bufferedBytes = 0;
    a.state = 'live';
  }

  /** Attaches a client: it gets the screen, then live output. */
  attach(client: AttachClient, attachId: string, cols: number, rows: number, readOnly: boolean): void {
    const a = new Attachment(client, attachId, readOnly, cols, rows);
    this.attachments.set(key(client, attachId), a);
    if (!readOnly) {
      this.sizers.push(a);
      this.resize(cols, rows);
    }
    void this.sync(a, 'replay');
  }

  detach(client: AttachClient, attachId: string): boolean {
    const a = this.attachments.get(key(client, attachId));
    if (!a) return false;
    this.attachments.delete(key(client, attachId));
    const i = this.sizers.indexOf(a);
    if (i >= 0) {
      this.sizers.splice(i, 1);
      // The size goes back to the most recent remaining attachment.
      const last = this.sizers[this.sizers.length - 1];
      if (i === this.sizers.length && last) this.resize(last.cols, last.rows);
    }
    return true;
  }

  /**
   * Ends every attachment. With `finalScreen`, a client that had fallen behind first gets the last
   * screen (once it has caught up, or after {@link FINAL_SYNC_WAIT_MS}) rather than staying on a stale one.
   */
  async endAll(reason: string, ci: CiInfo, finalScreen: boolean): Promise<void> {
    const all = [...this.attachments.values()];
    this.attachments.clear();
    this.sizers.length = 0;
    await Promise.all(
      all.map(async (a) => {
        if (finalScreen && a.state !== 'live') {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, FINAL_SYNC_WAIT_MS);
            a.client.whenDrained(() => {
              clearTimeout(timer);
              resolve();
            });
          });
          try {
            const snapshot = await this.screen.snapshot();
            a.client.sendOutput(a.attachId, 'resync', `\x1bc${snapshot.data}`);
          } catch {
            // The screen is gone (the CI was removed meanwhile): end without it.
          }
        }
        a.client.sendAttachEnded(a.attachId, reason, ci);
      }),
    );
  }

  /** Keys typed by an attached client. Read-only attachments are ignored. */
  typed(client: AttachClient, attachId: string, data: string): boolean {
    const a = this.attachments.get(key(client, attachId));
    if (!a || a.readOnly) return false;
    this.stats.lastTypedAt = Date.now();
    this.backend?.write(data);
    this.inputSeen(data);
    return true;
  }

  /**
   * Text the hub types into the CI (a bus message, a chat line): written to the backend and captured, the
   * capture at once rather than in its next batch, so that a hub killed right after still has the record
   * of what it typed.
   */
  input(data: string): void {
    this.backend?.write(data);
    this.inputSeen(data);
    this.capture?.flush();
  }

  /** Input the backend already received (a wrapping client's own keyboard): captured only. */
  inputSeen(data: string): void {
    this.stats.bytesCaptured += Buffer.byteLength(data);
    this.capture?.input(data);
  }

  attachmentResized(client: AttachClient, attachId: string, cols: number, rows: number): void {
    const a = this.attachments.get(key(client, attachId));
    if (!a || a.readOnly) return;
    a.cols = cols;
    a.rows = rows;
    if (this.sizers[this.sizers.length - 1] === a) this.resize(cols, rows);
  }

  resize(cols: number, rows: number): void {
    if (cols === this.cols && rows === this.rows) return;
    this.cols = cols;
    this.rows = rows;
    this.capture?.resize(cols, rows);
    this.screen.resize(cols, rows);
    this.backend?.resize(cols, rows);
  }

  /** A marker at the current line, for {@link textSince}. */
  mark(): Promise<number | undefined> {
    return this.screen.mark();
  }

  /** What was printed since a marker (or the whole screen), as plain text. */
  textSince(marker: number | undefined, maxLines = 200): Promise<{ text: string; truncated: boolean }> {
    return this.screen.text(marker, maxLines);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.endSession();
    this.screen.close();
    this.attachments.clear();
    this.sizers.length = 0;
  }
}

function key(client: AttachClient, attachId: string): string {
  return `${client.id}:${attachId}`;
}
