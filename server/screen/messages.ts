/**
 * Messages between the hub's main thread and the screen worker (server/screen/worker.ts). Both sides are
 * this process's own code, so these are plain types, not zod schemas.
 */

export type ToWorker =
  | { op: 'open'; id: number; cols: number; rows: number; scrollback: number }
  /**
   * `seq`: the main thread's sequence number of this chunk, echoed back in acks and snapshots.
   * `skipped`: output before this chunk was dropped (a flood); start at a line boundary.
   */
  | { op: 'write'; id: number; data: string; seq: number; skipped?: boolean }
  | { op: 'resize'; id: number; cols: number; rows: number }
  | { op: 'snapshot'; id: number; req: number; scrollback: number }
  /** Registers a marker at the cursor's line; answered with its id. */
  | { op: 'mark'; id: number; req: number }
  /** Text of the lines from a marker (or the top) to the cursor, as a person would read them. */
  | { op: 'text'; id: number; req: number; marker?: number; maxLines: number }
  | { op: 'close'; id: number }
  /** Replays an asciicast file into a fresh terminal and returns the text and what was typed. */
  | { op: 'render'; req: number; file: string; maxLines: number };

/** Answers to requests. */
export type Reply =
  | { req: number; op: 'snapshot'; data: string; seq: number; cols: number; rows: number }
  | { req: number; op: 'mark'; marker: number }
  | { req: number; op: 'text'; text: string; truncated: boolean }
  | { req: number; op: 'render'; rendered: RenderedCast }
  | { req: number; op: 'error'; message: string };

/** A reply, or an ack: output up to `seq` of screen `id` has been parsed (after every slice). */
export type FromWorker = Reply | { op: 'ack'; id: number; seq: number };

export interface RenderedCast {
  header: Record<string, unknown>;
  /** The terminal's text at the end of the session, scrollback included (bounded). */
  text: string;
  inputs: { t: number; data: string }[];
  resizes: { t: number; size: string }[];
  duration: number;
  /** Lines that are not valid asciicast events (a crash mid-write), skipped. */
  badLines: number;
}
