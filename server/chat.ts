/**
 * Each project's chat: what people said to its CIs, what the CIs answered, and the bus traffic between
 * them — kept by the hub (`chats/<project>.jsonl` in the state dir), so every window shows the same
 * history and it survives reloads.
 *
 * A message to a process CI is typed into its terminal as the person would type it; what the CI prints
 * afterwards streams in as a `ci` entry, rendered as text from the screen mirror (never raw escape codes)
 * until it has been quiet for {@link REPLY_QUIET_MS}.
 */
import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChatEntry, type HubEvent } from './protocol';
import { damageReport, readJsonl, repairTail } from './jsonl';
import { AppendFile } from './appendFile';
import { projectSlug } from './projects';
import { QuietTimer } from './quietTimer';
import type { ProcessCi } from './ci';
import type { ModelCi } from './model/modelCi';
import { typeMessage } from './bus/inject';

/** A process CI's reply is final once it has printed nothing for this long. */
const REPLY_QUIET_MS = 2500;
/**
 * Streaming updates of a reply (a process CI's screen, a model's tokens) go out at most this often, the
 * first at once: 20 a second reads as live, and each goes to every window, which renders it whole.
 */
const REPLY_UPDATE_MS = 50;

/** `fn` at once, then at most once per `ms` however often this is called (the last call is never lost). */
function throttled(fn: () => void, ms: number): { (): void; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  let last = 0;
  const run = () => {
    timer = undefined;
    last = Date.now();
    fn();
  };
  const call = () => {
    if (timer) return;
    const wait = last + ms - Date.now();
    if (wait <= 0) run();
    else timer = setTimeout(run, wait);
  };
  return Object.assign(call, {
    cancel: () => {
      clearTimeout(timer);
      timer = undefined;
    },
  });
}
/** Entries a project's history keeps in memory and answers with. */
const HISTORY_LIMIT = 2000;
/** Lines of a process CI's screen a reply shows at most. */
const REPLY_MAX_LINES = 400;

/** A file name for a project's chat: readable and unique. */
function chatFile(dir: string, project: string): string {
  return path.join(dir, `${projectSlug(project, 40)}-${createHash('sha256').update(project).digest('hex').slice(0, 8)}.jsonl`);
}

interface Reply {
  entry: ChatEntry;
  project: string;
  stop: () => void;
}

export class Chats {
  private readonly histories = new Map<string, ChatEntry[]>();
  private saveFailed = false;
  /** Each project's chat file, once written to (server/appendFile.ts). */
  private readonly files = new Map<string, AppendFile>();
  private readonly replies = new Map<string, Reply>();
  /** Chat messages sent as bus messages (to external and model CIs): message id → project. */
  private readonly awaiting = new Map<string, string>();

  constructor(
    private readonly dir: string,
    private readonly emit: (event: HubEvent) => void,
    private readonly warn: (message: string) => void,
  ) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  history(project: string, limit: number): ChatEntry[] {
    return this.load(project).slice(-limit);
  }

  private load(project: string): ChatEntry[] {
    let entries = this.histories.get(project);
    if (entries) return entries;
    const byId = new Map<string, ChatEntry>();
    const file = chatFile(this.dir, project);
    const { values, damaged, cutBytes } = readJsonl(file);
    let bad = damaged;
    for (const value of values) {
      const entry = ChatEntry.safeParse(value);
      if (entry.success) byId.set(entry.data.id, entry.data);
      else bad++;
    }
    const problem = damageReport(file, bad, cutBytes);
    if (problem) this.warn(problem);
    // A reply that was still streaming when the hub stopped is as complete as it will get.
    entries = [...byId.values()].map((e) => (e.streaming ? { ...e, streaming: false, partial: true } : e)).slice(-HISTORY_LIMIT);
    this.histories.set(project, entries);
    return entries;
  }

  /** Adds or replaces an entry; `persist` writes it to the project's file (final states only). */
  put(project: string, entry: ChatEntry, persist = true): ChatEntry {
    const entries = this.load(project);
    const at = entries.findIndex((e) => e.id === entry.id);
    if (at >= 0) entries[at] = entry;
    else {
      entries.push(entry);
      if (entries.length > HISTORY_LIMIT) entries.splice(0, entries.length - HISTORY_LIMIT);
    }
    if (persist) this.save(project, entry);
    this.emit({ type: 'chat', project, entry });
    return entry;
  }

  /**
   * Appends an entry to the project's file at once (not in a batch: an entry is what a user typed or was
   * answered). A failure (a full disk) closes the file and is reported once until a save succeeds; the
   * next save opens it again.
   */
  private save(project: string, entry: ChatEntry): void {
    let file = this.files.get(project);
    if (!file?.open) {
      const where = chatFile(this.dir, project);
      // After a failed write, cut the line it may have left (load repaired the file before the first).
      if (file) {
        try {
          repairTail(where);
        } catch {
          // Unreadable: opening it below fails too, and says why.
        }
      }
      // Kept open: a project's bus messages each add an entry.
      file = new AppendFile(where, (error) => {
        if (!this.saveFailed) this.warn(`could not save the chat of ${project} (${error.message}); it is shown, but not kept across a hub restart until this works again`);
        this.saveFailed = true;
      });
      this.files.set(project, file);
    }
    file.add(`${JSON.stringify(entry)}\n`);
    file.flush();
    if (file.open) this.saveFailed = false;
  }

  add(project: string, fields: Omit<ChatEntry, 'id' | 't'>): ChatEntry {
    return this.put(project, { id: randomUUID(), t: Date.now(), ...fields });
  }

  /** Types a person's message into a process CI and streams what it prints back as its reply. */
  async sendToProcess(project: string, ci: ProcessCi, text: string, from: string): Promise<ChatEntry> {
    const user = this.add(project, { role: 'user', from, to: ci.name, ci: ci.name, text, format: 'markdown' });
    if (ci.state !== 'running') {
      this.add(project, {
        role: 'error',
        ci: ci.name,
        text: `${ci.name} is ${ci.state}${ci.record.reason ? ` (${ci.record.reason})` : ''}: start it again with \`/restart ${ci.name}\` or \`cihub restart ${ci.name}\`.`,
        format: 'markdown',
      });
      return user;
    }
    this.replies.get(ci.name)?.stop();
    const marker = await ci.terminal.mark();
    ci.terminal.stats.lastTypedAt = Date.now();
    typeMessage(ci, text, ci.terminal.stats.bracketedPaste);
    this.watchReply(project, ci, marker);
    return user;
  }

  /** Streams what `ci` prints from `marker` on into one `ci` entry until it has been quiet. */
  private watchReply(project: string, ci: ProcessCi, marker: number | undefined): void {
    const entry: ChatEntry = { id: randomUUID(), t: Date.now(), role: 'ci', ci: ci.name, from: ci.name, text: '', format: 'terminal', streaming: true };
    let started = false;
    let done = false;
    const render = async (final: boolean) => {
      const { text, truncated } = await ci.terminal.textSince(marker, REPLY_MAX_LINES).catch(() => ({ text: entry.text, truncated: false }));
      entry.text = truncated ? `…\n${text}` : text;
      entry.streaming = !final;
      if (started || final) this.put(project, { ...entry }, final);
    };
    const finish = () => {
      if (done) return;
      done = true;
      unsubscribe();
      update.cancel();
      quiet.cancel();
      clearTimeout(silent);
      if (this.replies.get(ci.name)?.entry === entry) this.replies.delete(ci.name);
      if (started) void render(true);
    };
    const update = throttled(() => void render(false), REPLY_UPDATE_MS);
    const quiet = new QuietTimer(REPLY_QUIET_MS, finish);
    const silent = setTimeout(finish, REPLY_QUIET_MS * 4); // nothing printed at all: stop watching
    const unsubscribe = ci.terminal.onOutput(() => {
      if (!started) clearTimeout(silent);
      started = true;
      update();
      quiet.touch();
    });
    this.replies.set(ci.name, { entry, project, stop: finish });
  }

  /**
   * Asks a model CI for a person: the answer streams into the chat as it comes (see REPLY_UPDATE_MS), and
   * ends marked partial if it was stopped or cut off.
   */
  async sendToModel(project: string, ci: ModelCi, text: string, from: string): Promise<ChatEntry> {
    const user = this.add(project, { role: 'user', from, to: ci.name, ci: ci.name, text, format: 'markdown' });
    const id = randomUUID();
    let latest = '';
    const update = throttled(() => this.modelReply(project, ci.name, id, latest, 'streaming'), REPLY_UPDATE_MS);
    void ci
      .ask(text, from, (_token, sofar) => {
        latest = sofar;
        update();
      })
      .then((answer) => {
        update.cancel(); // a late streaming update must not undo the final state
        if (answer.text) this.modelReply(project, ci.name, id, answer.partial ? `${answer.text}\n\n*(cut off: ${answer.error ?? 'stopped'})*` : answer.text, answer.partial ? 'partial' : 'done');
        if (answer.error && !answer.text) this.add(project, { role: 'error', ci: ci.name, text: answer.error, format: 'markdown' });
      });
    return user;
  }

  /** A CI ended: its reply, if any, is final. */
  ciEnded(name: string): void {
    this.replies.get(name)?.stop();
  }

  /** Remembers a chat message sent over the bus, so the answer lands in the same chat. */
  awaitAnswer(messageId: string, project: string): void {
    this.awaiting.set(messageId, project);
  }

  /** Shows bus traffic in the chats of the projects involved (`project`: the recipient's or sender's). */
  busEvent(event: Extract<HubEvent, { type: 'message' }>, project: string | undefined): void {
    const { outcome, mailbox, message } = event;
    if (outcome === 'response' || (message.type === 'response' && message.in_reply_to && this.awaiting.has(message.in_reply_to))) {
      const asked = message.in_reply_to ? this.awaiting.get(message.in_reply_to) : undefined;
      if (asked && outcome !== 'delivered') {
        if (message.in_reply_to) this.awaiting.delete(message.in_reply_to);
        this.add(asked, { role: 'ci', ci: message.from, from: message.from, text: message.content, format: 'markdown' });
        return;
      }
    }
    if (!project || message.from === 'you') return;
    const id = `bus-${message.id}-${mailbox}`;
    if (outcome === 'queued' || outcome === 'held') {
      this.put(project, {
        id,
        t: Date.now(),
        role: 'bus',
        from: message.from,
        to: mailbox,
        ci: mailbox,
        text: message.content,
        format: 'markdown',
        ...(outcome === 'held' ? { held: [message.id] } : {}),
      });
    } else if (outcome === 'refused' || outcome === 'injected' || outcome === 'expired') {
      const existing = this.load(project).find((e) => e.id === id);
      if (existing?.held) this.put(project, { ...existing, held: undefined, text: `${existing.text}\n\n*(${outcome === 'injected' ? 'approved' : outcome})*` });
    }
  }

  /** A model CI's streaming answer to a chat message: created, grown, finished. */
  modelReply(project: string, ci: string, id: string, text: string, state: 'streaming' | 'done' | 'partial'): void {
    this.put(
      project,
      { id, t: Date.now(), role: 'ci', ci, from: ci, text, format: 'markdown', streaming: state === 'streaming', partial: state === 'partial' || undefined },
      state !== 'streaming',
    );
  }

  /** Ends streaming replies (their final state is still saved). */
  stop(): void {
    for (const reply of [...this.replies.values()]) reply.stop();
  }

  /** Closes the chat files, once nothing adds entries any more (the CIs and the bus have stopped). */
  close(): void {
    for (const file of this.files.values()) file.close();
    this.files.clear();
  }
}
