/**
 * The screen worker: one headless xterm per CI, fed with everything the CI prints, so the hub can replay
 * the current screen to a client that attaches and render what an agent printed as plain text.
 *
 * It runs in its own thread because parsing costs far more than moving bytes (~65 MB/s here, against
 * ~77 MB/s for raw node-pty output): on the main thread it would slow the PTY, the capture and keystroke
 * echo. Under a flood it falls behind on purpose instead of growing a backlog: see the constants.
 */
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import { parentPort } from 'node:worker_threads';
import { Terminal, type IMarker } from '@xterm/headless';
import { SerializeAddon } from '@xterm/addon-serialize';
import { reclaimer } from '../memory';
import type { FromWorker, RenderedCast, Reply, ToWorker } from './messages';
import { bufferText, writeAll } from './text';

/** Characters handed to xterm per write; keeps each parse slice short so control requests stay prompt. */
const SLICE_CHARS = 256 * 1024;
/**
 * In a flood — a full slice queued at once, or output after a drop (see mirror.ts) — idle this many times
 * as long as each slice took, so a flood costs the mirror ≤ 1/(1+n) of a core instead of competing with
 * the PTY, the capture and the clients. Only the final screen matters; the main thread drops what piles up.
 */
const FLOOD_IDLE_FACTOR = 4;

type Control = Exclude<ToWorker, { op: 'open' } | { op: 'write' } | { op: 'close' } | { op: 'render' }>;
type Item = { kind: 'data'; data: string; seq: number; skipped: boolean } | { kind: 'control'; msg: Control };

class Screen {
  private readonly term: Terminal;
  private readonly serializer = new SerializeAddon();
  private readonly items: Item[] = [];
  private parsedSeq = 0;
  private running = false;
  private readonly markers = new Map<number, IMarker>();
  private nextMarker = 1;
  private closed = false;

  constructor(
    private readonly id: number,
    cols: number,
    rows: number,
    scrollback: number,
  ) {
    this.term = new Terminal({ cols, rows, scrollback, allowProposedApi: true });
    this.term.loadAddon(this.serializer);
  }

  push(item: Item): void {
    this.items.push(item);
    if (!this.running) this.pump();
  }

  close(): void {
    this.closed = true;
    this.items.length = 0;
    this.term.dispose();
  }

  private pump(): void {
    if (this.closed) return;
    const head = this.items[0];
    if (!head) {
      this.running = false;
      return;
    }
    this.running = true;
    if (head.kind === 'control') {
      this.items.shift();
      this.control(head.msg);
      this.pump();
      return;
    }
    const parts: string[] = [];
    let size = 0;
    let seq = this.parsedSeq;
    let flooding = false;
    for (let item = this.items[0]; item?.kind === 'data' && size < SLICE_CHARS; item = this.items[0]) {
      this.items.shift();
      // After a drop, start at a line boundary rather than in the middle of an escape sequence.
      const nl = item.skipped ? item.data.indexOf('\n') : -1;
      parts.push(nl >= 0 && nl < 4096 ? item.data.slice(nl + 1) : item.data);
      size += item.data.length;
      seq = item.seq;
      flooding ||= item.skipped;
    }
    flooding ||= size >= SLICE_CHARS;
    const started = Date.now();
    this.term.write(parts.join(''), () => {
      this.parsedSeq = seq;
      reclaimer.output();
      parentPort?.postMessage({ op: 'ack', id: this.id, seq } satisfies FromWorker);
      const urgent = this.items.some((i) => i.kind === 'control');
      if (flooding && !urgent) setTimeout(() => this.pump(), (Date.now() - started) * FLOOD_IDLE_FACTOR);
      else this.pump();
    });
  }

  private control(msg: Control): void {
    switch (msg.op) {
      case 'resize':
        this.term.resize(msg.cols, msg.rows);
        return;
      case 'snapshot': {
        const data = this.serializer.serialize({ scrollback: msg.scrollback });
        reclaimer.output();
        reply({ req: msg.req, op: 'snapshot', data, seq: this.parsedSeq, cols: this.term.cols, rows: this.term.rows });
        return;
      }
      case 'mark': {
        const marker = this.term.registerMarker(0);
        const id = this.nextMarker++;
        if (marker) {
          this.markers.set(id, marker);
          marker.onDispose(() => this.markers.delete(id));
        }
        reply({ req: msg.req, op: 'mark', marker: id });
        return;
      }
      case 'text': {
        const marker = msg.marker === undefined ? undefined : this.markers.get(msg.marker);
        const truncated = msg.marker !== undefined && marker === undefined;
        reply({ req: msg.req, op: 'text', text: bufferText(this.term, marker?.line ?? 0, msg.maxLines), truncated });
        return;
      }
    }
  }

}

/** Replays an asciicast v2 file into a headless terminal: the text a reader would have seen. */
async function renderCast(file: string, maxLines: number): Promise<RenderedCast> {
  const lines = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity });
  let term: Terminal | undefined;
  let header: Record<string, unknown> = {};
  const inputs: { t: number; data: string }[] = [];
  const resizes: { t: number; size: string }[] = [];
  let duration = 0;
  let badLines = 0;
  for await (const line of lines) {
    if (!line.trim()) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      badLines++;
      continue;
    }
    if (!term) {
      header = typeof value === 'object' && value !== null && !Array.isArray(value) ? { ...value } : {};
      const cols = typeof header.width === 'number' ? header.width : 80;
      const rows = typeof header.height === 'number' ? header.height : 24;
      term = new Terminal({ cols, rows, scrollback: maxLines, allowProposedApi: true });
      continue;
    }
    if (!Array.isArray(value) || typeof value[0] !== 'number' || typeof value[2] !== 'string') {
      badLines++;
      continue;
    }
    const [t, code, data] = value;
    duration = t;
    if (code === 'o') await writeAll(term, data);
    else if (code === 'i') inputs.push({ t, data });
    else if (code === 'r') {
      resizes.push({ t, size: data });
      const [c, r] = data.split('x').map(Number);
      if (c > 0 && r > 0) term.resize(c, r);
    }
  }
  const text = term ? bufferText(term, 0, maxLines) : '';
  term?.dispose();
  return { header, text, inputs, resizes, duration, badLines };
}

const screens = new Map<number, Screen>();

function reply(message: Reply): void {
  parentPort?.postMessage(message);
}

parentPort?.on('message', (msg: ToWorker) => {
  switch (msg.op) {
    case 'render':
      renderCast(msg.file, msg.maxLines).then(
        (rendered) => reply({ req: msg.req, op: 'render', rendered }),
        (error: unknown) => reply({ req: msg.req, op: 'error', message: String(error) }),
      );
      return;
    case 'open':
      screens.get(msg.id)?.close();
      screens.set(msg.id, new Screen(msg.id, msg.cols, msg.rows, msg.scrollback));
      return;
    case 'close':
      screens.get(msg.id)?.close();
      screens.delete(msg.id);
      return;
    case 'write':
      screens.get(msg.id)?.push({ kind: 'data', data: msg.data, seq: msg.seq, skipped: msg.skipped ?? false });
      return;
    default: {
      const screen = screens.get(msg.id);
      if (screen) screen.push({ kind: 'control', msg });
      else if (msg.op !== 'resize') reply({ req: msg.req, op: 'error', message: `no screen ${msg.id}` });
    }
  }
});
