/**
 * A mailbox's durable queue: an append-only JSONL file (`queues/<name>.jsonl` in the state dir).
 *
 * Records, one per line:
 *   {"add":<message>,"held":true?}   a message arrived (held: waiting for a human's approval)
 *   {"ok":"<id>"}                    approved: a held message may be delivered
 *   {"done":"<id>","how":"…"}        delivered (or refused, expired): it leaves the queue
 *   {"delivered":<n>}                the delivered counter, written when the file is compacted
 *
 * A message is acknowledged to its sender only after its `add` record is written (to the OS: it survives
 * the hub being killed). Leases (`recv` before its ack) live in memory only, so a message handed out but
 * not acknowledged when the hub dies is handed out again: at-least-once, with stable ids to dedupe by.
 * The file is rewritten with only the live messages once dead records dominate.
 */
import * as fs from 'node:fs';
import { writeFileAtomic } from '../writeAtomic';
import { Message } from '../protocol';
import { damageReport, readJsonl } from '../jsonl';

/** Compact when at least this many records are dead… */
const COMPACT_MIN_DEAD = 1000;
/** …and they outnumber live messages this many times over. */
const COMPACT_DEAD_RATIO = 2;

export type EntryState = 'queued' | 'held' | 'leased';

export interface Entry {
  message: Message;
  state: EntryState;
  /** Held and approved by a human: deliver like `inject`. */
  approved: boolean;
  /** Arrival order (priority first, then this). */
  seq: number;
  /** Who holds the lease (a connection), while leased. */
  lessee?: object;
}

export class MailboxQueue {
  private readonly entries = new Map<string, Entry>();
  /** No entry expires before this (ms since epoch), so the once-a-second sweep skips the queue until then. */
  private nextExpiry = -Infinity;
  private nextSeq = 1;
  private fd: number;
  /** Records not yet written; `added`: the message the record accepts (undone if the write fails). */
  private pending: { line: string; added?: string }[] = [];
  /** The file's size: where the next write lands (a failed write is cut back to it). */
  private fileBytes: number;
  private dead = 0;
  delivered = 0;
  /** Problems found while loading (damaged lines), for the log. */
  readonly problems: string[] = [];

  constructor(
    readonly name: string,
    private readonly file: string,
  ) {
    this.load();
    this.fd = fs.openSync(file, 'a', 0o600);
    this.fileBytes = fs.fstatSync(this.fd).size;
  }

  private load(): void {
    const { values, damaged, cutBytes } = readJsonl(this.file);
    let bad = damaged;
    for (const record of values) {
      if (typeof record !== 'object' || record === null) {
        bad++;
        continue;
      }
      if ('add' in record) {
        const message = Message.safeParse(record.add);
        if (!message.success) {
          bad++;
          continue;
        }
        const held = 'held' in record && record.held === true;
        this.entries.set(message.data.id, { message: message.data, state: held ? 'held' : 'queued', approved: false, seq: this.nextSeq++ });
      } else if ('done' in record && typeof record.done === 'string') {
        if (this.entries.delete(record.done)) this.delivered += 'how' in record && record.how === 'delivered' ? 1 : 0;
        this.dead++;
      } else if ('ok' in record && typeof record.ok === 'string') {
        const entry = this.entries.get(record.ok);
        if (entry) {
          entry.approved = true;
          entry.state = 'queued';
        }
        this.dead++;
      } else if ('delivered' in record && typeof record.delivered === 'number') {
        this.delivered = record.delivered;
      } else {
        bad++;
      }
    }
    const problem = damageReport(this.file, bad, cutBytes);
    if (problem) this.problems.push(problem);
  }

  private record(value: unknown, added?: string): void {
    this.pending.push({ line: JSON.stringify(value), added });
  }

  /**
   * Writes buffered records (call before acknowledging anything that depends on them). When the write
   * fails (a full disk) the file is cut back to where it was, the messages this batch added are not
   * accepted (they leave the queue), other records wait for the next write, and the error is thrown.
   */
  flush(): void {
    if (this.pending.length === 0) return;
    const records = this.pending;
    this.pending = [];
    const data = Buffer.from(`${records.map((r) => r.line).join('\n')}\n`);
    try {
      // A write to a file may be short (the disk filled up in the middle): go on until all of it is in.
      for (let done = 0; done < data.length; ) done += fs.writeSync(this.fd, data, done);
      this.fileBytes += data.length;
    } catch (error) {
      try {
        fs.ftruncateSync(this.fd, this.fileBytes);
      } catch {
        // The file cannot even be cut: the next load drops the partial line (repairTail).
      }
      for (const r of records) {
        if (r.added) this.entries.delete(r.added);
        else this.pending.push(r);
      }
      throw error;
    }
    if (this.dead >= COMPACT_MIN_DEAD && this.dead > this.entries.size * COMPACT_DEAD_RATIO) this.compact();
  }

  /** Rewrites the file with only the live messages. */
  private compact(): void {
    const lines = [JSON.stringify({ delivered: this.delivered })];
    for (const entry of this.all()) {
      lines.push(JSON.stringify(entry.state === 'held' ? { add: entry.message, held: true } : { add: entry.message }));
      if (entry.approved) lines.push(JSON.stringify({ ok: entry.message.id }));
    }
    writeFileAtomic(this.file, `${lines.join('\n')}\n`);
    fs.closeSync(this.fd);
    this.fd = fs.openSync(this.file, 'a', 0o600);
    this.fileBytes = fs.fstatSync(this.fd).size;
    this.dead = 0;
  }

  add(message: Message, held: boolean): void {
    if (this.entries.has(message.id)) return; // a resend with the same id: already queued once
    this.entries.set(message.id, { message, state: held ? 'held' : 'queued', approved: false, seq: this.nextSeq++ });
    if (message.expires_at !== undefined) this.nextExpiry = Math.min(this.nextExpiry, message.expires_at);
    this.record(held ? { add: message, held: true } : { add: message }, message.id);
  }

  /** Removes a message for good: delivered, refused or expired. */
  finish(id: string, how: 'delivered' | 'refused' | 'expired'): Entry | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    this.entries.delete(id);
    if (how === 'delivered') this.delivered++;
    this.dead++;
    this.record({ done: id, how });
    return entry;
  }

  approve(id: string): boolean {
    const entry = this.entries.get(id);
    if (!entry || entry.state !== 'held') return false;
    entry.state = 'queued';
    entry.approved = true;
    this.dead++;
    this.record({ ok: id });
    return true;
  }

  /** Puts waiting messages on hold (the CI's policy became `hold`). In memory only: the policy decides at load. */
  holdAll(): void {
    for (const entry of this.entries.values()) if (entry.state === 'queued' && !entry.approved) entry.state = 'held';
  }

  /** Releases held messages to the queue (the policy is no longer `hold`). */
  releaseHeld(): void {
    for (const entry of this.entries.values()) if (entry.state === 'held') entry.state = 'queued';
  }

  /** Waiting messages (only those in `state` if given), in delivery order ({@link deliveredBefore}). */
  all(state?: Entry['state']): Entry[] {
    const entries = [...this.entries.values()];
    return (state ? entries.filter((e) => e.state === state) : entries).sort(deliveredBefore);
  }

  /** The next message to deliver (queued, not leased), or undefined. */
  next(approvedOnly = false): Entry | undefined {
    let best: Entry | undefined;
    for (const entry of this.entries.values()) {
      if (entry.state !== 'queued' || (approvedOnly && !entry.approved)) continue;
      if (!best || deliveredBefore(entry, best) < 0) best = entry;
    }
    return best;
  }

  /** Leases up to `max` queued messages to `lessee`. */
  lease(max: number, lessee: object): Message[] {
    const out: Message[] = [];
    for (const entry of this.all('queued')) {
      if (out.length >= max) break;
      entry.state = 'leased';
      entry.lessee = lessee;
      out.push(entry.message);
    }
    return out;
  }

  /** Returns a lessee's unacknowledged messages to the queue. */
  release(lessee: object): number {
    let n = 0;
    for (const entry of this.entries.values()) {
      if (entry.state === 'leased' && entry.lessee === lessee) {
        entry.state = 'queued';
        entry.lessee = undefined;
        n++;
      }
    }
    return n;
  }

  get(id: string): Entry | undefined {
    return this.entries.get(id);
  }

  /** Messages whose time is up. */
  expired(now: number): Entry[] {
    if (now < this.nextExpiry) return [];
    const out: Entry[] = [];
    let next = Infinity;
    for (const e of this.entries.values()) {
      const at = e.message.expires_at;
      if (at === undefined) continue;
      if (at <= now && e.state !== 'leased') out.push(e);
      else next = Math.min(next, at);
    }
    this.nextExpiry = next;
    return out;
  }

  stats(): { depth: number; held: number; oldest?: number; delivered: number } {
    let depth = 0;
    let held = 0;
    let oldest: number | undefined;
    for (const entry of this.entries.values()) {
      if (entry.state === 'held') held++;
      else depth++;
      oldest = oldest === undefined ? entry.message.timestamp : Math.min(oldest, entry.message.timestamp);
    }
    return { depth, held, oldest, delivered: this.delivered };
  }

  get size(): number {
    return this.entries.size;
  }

  /** Closes the file, writing what is pending first — unless the file goes (`remove`). */
  close(remove = false): void {
    if (!remove) this.flush();
    fs.closeSync(this.fd);
    if (remove) fs.rmSync(this.file, { force: true });
  }
}

/** Delivery order: highest priority first, then oldest. */
function deliveredBefore(a: Entry, b: Entry): number {
  if (a.message.priority !== b.message.priority) return a.message.priority === 'high' ? -1 : 1;
  return a.seq - b.seq;
}
