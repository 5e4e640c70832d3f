/**
 * The timeline: every message sent, queued, delivered, injected, held, refused, expired or forwarded,
 * appended per project to `timeline/<project>.jsonl` in the state dir (`_hub.jsonl` for messages that
 * belong to no project), with sender, recipient and outcome. `cihub export` merges it into transcripts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { MessageOutcome, type Message } from '../protocol';
import { damageReport, repairTail } from '../jsonl';
import { AppendFile } from '../appendFile';

/** Content longer than this is cut in the timeline (the message itself is in the queue and capture). */
const CONTENT_LIMIT = 4000;

export const TimelineEntry = z.object({
  t: z.number(),
  outcome: MessageOutcome,
  id: z.string(),
  type: z.string(),
  from: z.string(),
  to: z.string(),
  /** The mailbox it concerns (a recipient's, for fan-out). */
  mailbox: z.string(),
  content: z.string(),
  in_reply_to: z.string().optional(),
  detail: z.string().optional(),
});
export type TimelineEntry = z.infer<typeof TimelineEntry>;

export function projectKey(project: string | undefined): string {
  return project ? project.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || '_hub' : '_hub';
}

export class Timeline {
  /** Open project files, appended in batches (server/appendFile.ts). */
  private readonly files = new Map<string, AppendFile>();

  constructor(
    private readonly dir: string,
    private readonly warn: (message: string) => void,
  ) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  append(project: string | undefined, outcome: MessageOutcome, mailbox: string, message: Message, detail?: string): void {
    const file = this.file(projectKey(project));
    if (!file.open) return; // failed (reported once): nothing more is recorded there
    const entry: TimelineEntry = {
      t: Date.now(),
      outcome,
      id: message.id,
      type: message.type,
      from: message.from,
      to: message.to,
      mailbox,
      content: message.content.length > CONTENT_LIMIT ? `${message.content.slice(0, CONTENT_LIMIT)}…` : message.content,
      in_reply_to: message.in_reply_to,
      detail,
    };
    file.add(`${JSON.stringify(entry)}\n`);
  }

  /** The project's file, opened (its cut last line repaired) the first time. */
  private file(key: string): AppendFile {
    let file = this.files.get(key);
    if (!file) {
      const name = `${key}.jsonl`;
      const where = path.join(this.dir, name);
      const problem = damageReport(where, 0, repairTail(where));
      if (problem) this.warn(problem);
      // The timeline is a record, not a queue: delivery goes on; the failure is reported once per file.
      file = new AppendFile(where, (error) =>
        this.warn(`timeline/${name}: ${error.message}; messages are still delivered but no longer recorded there until the hub restarts`),
      );
      this.files.set(key, file);
    }
    return file;
  }

  /** Entries that involve `name` (as sender, recipient or mailbox), across every project file. */
  read(name: string): TimelineEntry[] {
    for (const file of this.files.values()) file.flush();
    const out: TimelineEntry[] = [];
    let files: string[];
    try {
      files = fs.readdirSync(this.dir).filter((f) => f.endsWith('.jsonl'));
    } catch {
      return out;
    }
    for (const file of files) {
      for (const line of fs.readFileSync(path.join(this.dir, file), 'utf8').split('\n')) {
        if (!line) continue;
        try {
          const entry = TimelineEntry.safeParse(JSON.parse(line));
          if (entry.success && (entry.data.from === name || entry.data.to === name || entry.data.mailbox === name)) out.push(entry.data);
        } catch {
          // a line cut by a crash: skip it
        }
      }
    }
    return out.sort((a, b) => a.t - b.t);
  }

  close(): void {
    for (const file of this.files.values()) file.close();
    this.files.clear();
  }
}
