/**
 * The CI message bus: one NDJSON Unix socket per CI in `bus/`, a durable queue per mailbox, routing
 * (names, `*`, `@project`, forwarding), and delivery to each kind of recipient:
 *
 *  - process CIs by policy: `inbox` (pulled with `cihub recv`), `inject` (typed into the PTY when the
 *    agent has been quiet and no human typed lately), `hold` (waits for a human's approval, then injected);
 *  - external CIs (a socket someone else put in `bus/`): forwarded over their socket, their reply line
 *    becoming a `response` to the sender;
 *  - model CIs: through {@link BusCi.answer} (server/providers), the reply a `response` to the sender;
 *  - mailboxes that are not CIs (a human's, made by `cihub forward --to`): pulled.
 *
 * Every step is recorded in the timeline.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { writeFileAtomic } from '../writeAtomic';
import * as net from 'node:net';
import * as path from 'node:path';
import {
  BUS_LINE_LIMIT_BYTES,
  CI_NAME_PATTERN,
  MessageInput,
  describeZodError,
  type BusErrorCode,
  type CiInfo,
  type DeliveryPolicy,
  type HubConfig,
  type HubEvent,
  type Message,
  type MessageOutcome,
  type QueueStats,
} from '../protocol';
import type { Log } from '../log';
import { errnoCode, errorMessage } from '../errors';
import { MailboxQueue } from './queue';
import { Timeline, projectKey } from './timeline';
import { LineSplitter, lineContent } from './lines';
import { typeMessage } from './inject';

/** How long an external CI has to answer a delivered message before the bus moves on. */
const EXTERNAL_REPLY_TIMEOUT_MS = 30_000;
/** Retry delays for an external CI that cannot be reached: from this, doubling… */
const EXTERNAL_RETRY_MIN_MS = 1000;
/** …up to this. */
const EXTERNAL_RETRY_MAX_MS = 30_000;
/** When a message expires: its own ttl, else the retention age of undelivered messages (0: never). */
function expiry(now: number, ttlSeconds: number | undefined, maxAgeDays: number): { expires_at?: number } {
  if (ttlSeconds) return { expires_at: now + ttlSeconds * 1000 };
  return maxAgeDays > 0 ? { expires_at: now + maxAgeDays * 86_400_000 } : {};
}

/** How often expired messages are swept. */
const EXPIRY_SWEEP_MS = 1000;
/** Longest chain of forwards followed (a loop stops here). */
const MAX_FORWARD_HOPS = 8;

export interface InjectState {
  running: boolean;
  lastOutputAt?: number;
  lastTypedAt?: number;
  bracketedPaste: boolean;
  /** Input typed into it that it has not read yet (it may have stopped reading). */
  unreadInputBytes: number;
}

/**
 * A CI with more unread input than this gets no more injected messages until it reads: they wait in its
 * durable queue, not in the hub's memory.
 */
export const INJECT_UNREAD_LIMIT_BYTES = 16 * 1024;

/** What the bus needs from a CI the hub runs (process or model). */
export interface BusCi {
  readonly name: string;
  readonly kind: 'process' | 'model';
  /** Absolute path of its project folder. */
  readonly project?: string;
  readonly policy: DeliveryPolicy;
  /** For `inject`: whether it runs, when it last printed, when a human last typed into it. */
  injectState(): InjectState;
  /** Types into its terminal (captured as input). */
  type(text: string): void;
  /** Model CIs: answers a message (content already carries its context); the answer goes back as a response. */
  answer?(message: Message): Promise<string>;
}

export interface CiDirectory {
  get(name: string): BusCi | undefined;
  all(): BusCi[];
}

/** A failure to accept a message, with the code a bus socket reports. */
export class BusError extends Error {
  constructor(
    readonly code: BusErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Where a message sent through a CI's socket or on behalf of someone comes from, by default. */
export interface SendContext {
  defaultTo?: string;
  defaultFrom?: string;
}

interface External {
  socket: string;
  reachable?: boolean;
  lastError?: string;
  busy: boolean;
  retryMs: number;
  retryTimer?: NodeJS.Timeout;
}

interface Waiter {
  resolve: (messages: Message[]) => void;
  max: number;
  lessee: object;
  timer?: NodeJS.Timeout;
}

/** The project name CIs are addressed by in `@project`: the folder's name, lowercased. */
export function projectName(project: string | undefined): string | undefined {
  return project ? projectKey(path.basename(project)) : undefined;
}

export class Bus {
  private readonly queues = new Map<string, MailboxQueue>();
  private readonly servers = new Map<string, net.Server>();
  private readonly externals = new Map<string, External>();
  private readonly forwards = new Map<string, string>();
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly injectTimers = new Map<string, NodeJS.Timeout>();
  private readonly lastInjectAt = new Map<string, number>();
  /** CIs that stopped reading their input (reported once until they read again). */
  private readonly notReading = new Set<string>();
  private readonly answering = new Set<string>();
  /** Port clients waiting for a CI's reply: message id → callback. */
  private readonly replyWaiters = new Map<string, (message: Message) => void>();
  private readonly dirty = new Set<MailboxQueue>();
  /** What to do once the queues are written; told which queues could not be. */
  private readonly afterCommit: ((failed: ReadonlySet<MailboxQueue>) => void)[] = [];
  private readonly timeline: Timeline;
  private readonly queueDir: string;
  private readonly forwardsFile: string;
  private watcher: fs.FSWatcher | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private scanTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    stateDir: string,
    readonly busDir: string,
    private readonly log: Log,
    private readonly cis: CiDirectory,
    private readonly config: () => HubConfig,
    private readonly emit: (event: HubEvent) => void,
  ) {
    this.queueDir = path.join(stateDir, 'queues');
    this.forwardsFile = path.join(stateDir, 'forwards.json');
    this.timeline = new Timeline(path.join(stateDir, 'timeline'), (message) => this.log.warn(`bus: ${message}`));
  }

  /** Opens mailboxes and sockets for the CIs, loads forwards and mailboxes, finds external sockets. */
  start(): string[] {
    const problems: string[] = [];
    fs.mkdirSync(this.queueDir, { recursive: true, mode: 0o700 });
    fs.mkdirSync(this.busDir, { recursive: true, mode: 0o700 });
    try {
      const saved: unknown = JSON.parse(fs.readFileSync(this.forwardsFile, 'utf8'));
      if (saved && typeof saved === 'object' && !Array.isArray(saved)) {
        const skipped: string[] = [];
        for (const [from, to] of Object.entries(saved)) {
          if (CI_NAME_PATTERN.test(from) && typeof to === 'string' && CI_NAME_PATTERN.test(to)) this.forwards.set(from, to);
          else skipped.push(JSON.stringify(from).slice(0, 66));
        }
        if (skipped.length) problems.push(`forwards.json: skipped ${skipped.length} invalid forward(s) (${skipped.join(', ')}); the others were kept`);
      } else problems.push('forwards.json is not an object of name → name; forwarding starts empty');
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') problems.push(`forwards.json is damaged (${errorMessage(error)}); forwarding starts empty`);
    }
    // Mailboxes with messages on disk: every CI's, and humans' (from forwarding).
    for (const file of fs.readdirSync(this.queueDir)) {
      const name = file.replace(/\.jsonl$/, '');
      if (file.endsWith('.jsonl') && CI_NAME_PATTERN.test(name)) problems.push(...this.queue(name).problems);
    }
    for (const ci of this.cis.all()) this.ciAdded(ci);
    this.scanExternals();
    try {
      this.watcher = fs.watch(this.busDir, () => this.scheduleScan());
    } catch (error) {
      problems.push(`cannot watch ${this.busDir} for external sockets: ${errorMessage(error)}`);
    }
    this.expiryTimer = setInterval(() => this.expire(), EXPIRY_SWEEP_MS);
    this.expiryTimer.unref();
    return problems;
  }

  private queue(name: string): MailboxQueue {
    let q = this.queues.get(name);
    if (!q) {
      q = new MailboxQueue(name, path.join(this.queueDir, `${name}.jsonl`));
      this.queues.set(name, q);
    }
    return q;
  }

  // --- CI lifecycle --------------------------------------------------------------------------------

  /** A CI exists: its mailbox and its socket. */
  ciAdded(ci: BusCi): void {
    applyPolicy(this.queue(ci.name), ci.policy);
    if (!this.servers.has(ci.name)) this.listen(ci.name);
    this.externals.delete(ci.name);
    this.schedule(ci.name);
  }

  /** A CI changed (started, stopped, new policy): deliver what can be delivered now. */
  ciChanged(name: string): void {
    this.schedule(name);
  }

  /** A CI is gone: its socket and its mailbox go with it. */
  ciRemoved(name: string): void {
    const server = this.servers.get(name);
    this.servers.delete(name);
    server?.close();
    fs.rmSync(path.join(this.busDir, `${name}.sock`), { force: true });
    const q = this.queues.get(name);
    this.queues.delete(name);
    if (q) {
      this.dirty.delete(q);
      q.close(true);
    }
    clearTimeout(this.injectTimers.get(name));
    this.injectTimers.delete(name);
  }

  setPolicy(name: string, policy: DeliveryPolicy): void {
    applyPolicy(this.queue(name), policy);
    this.schedule(name);
  }

  private listen(name: string): void {
    const file = path.join(this.busDir, `${name}.sock`);
    fs.rmSync(file, { force: true });
    const server = net.createServer((socket) => this.serve(socket, name));
    server.on('error', (error) => this.log.warn(`bus: socket for ${name}: ${error.message}`));
    server.listen(file, () => {
      try {
        fs.chmodSync(file, 0o600);
      } catch (error) {
        this.log.warn(`bus: cannot make ${file} private: ${errorMessage(error)}`);
      }
    });
    this.servers.set(name, server);
  }

  /** One connection to `bus/<ci>.sock`: a JSON message per line in, one reply line per message out. */
  private serve(socket: net.Socket, ci: string): void {
    const lines = new LineSplitter(BUS_LINE_LIMIT_BYTES);
    const decoder = new TextDecoder('utf-8', { fatal: true });
    // A sender that does not read its replies is not read either, until it does: the replies it leaves
    // unread must not pile up in the hub's memory.
    const reply = (text: string) => {
      if (!socket.write(text) && !socket.isPaused()) {
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
    };
    socket.on('error', () => undefined); // a sender that went away: nothing to answer
    socket.on('data', (data: Buffer) => {
      const replies: string[] = [];
      /** Which replies are `ok`s (they depend on the commit). */
      const accepted: number[] = [];
      for (const event of lines.push(data)) {
        if ('tooLarge' in event) {
          replies.push(errorLine('too_large', `line of ${event.tooLarge} bytes exceeds the ${BUS_LINE_LIMIT_BYTES}-byte limit; it was dropped`));
          continue;
        }
        if (event.line.length === 0) continue;
        let text: string;
        try {
          text = decoder.decode(event.line);
        } catch {
          replies.push(errorLine('invalid_utf8', 'line is not valid UTF-8'));
          continue;
        }
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch (error) {
          replies.push(errorLine('invalid_json', `not JSON: ${errorMessage(error)}`));
          continue;
        }
        try {
          const { id } = this.route(value, { defaultTo: ci, defaultFrom: 'anonymous' });
          accepted.push(replies.length);
          replies.push(`{"ok":true,"id":${JSON.stringify(id)}}\n`);
        } catch (error) {
          replies.push(error instanceof BusError ? errorLine(error.code, error.message) : errorLine('internal', errorMessage(error)));
        }
      }
      // Durable before acknowledged: every accepted message of this read is written, then answered
      // (before the timeline and watchers hear of them: the sender waits for this).
      const { failed, error } = this.writeQueues();
      // Not written, so not accepted: each line that would have been gets the error instead.
      if (error) for (const at of accepted) replies[at] = errorLine(error.code, error.message);
      if (replies.length) reply(replies.join(''));
      this.announce(failed);
    });
  }

  // --- sending --------------------------------------------------------------------------------------

  /** Accepts a message: validates, stamps, routes, queues. {@link writeQueues} before acknowledging. */
  private route(raw: unknown, context: SendContext = {}): { id: string; recipients: string[] } {
    if (this.stopped) throw new BusError('shutting_down', 'the hub is shutting down; send again once it is back');
    const parsed = MessageInput.safeParse(raw);
    if (!parsed.success) throw new BusError('invalid_message', describeZodError(parsed.error));
    const input = parsed.data;
    const to = input.to ?? context.defaultTo;
    if (!to) throw new BusError('invalid_message', 'to: give a recipient (a CI name, "*" or "@project")');
    const from = input.from ?? context.defaultFrom ?? 'anonymous';
    const now = Date.now();
    const sender = this.cis.get(from);
    const message: Message = {
      id: input.id ?? randomUUID(),
      type: input.type,
      from,
      to,
      content: input.content,
      timestamp: input.timestamp ?? now,
      priority: input.priority,
      ...(input.in_reply_to ? { in_reply_to: input.in_reply_to } : {}),
      ...(input.project ?? sender?.project ? { project: input.project ?? projectName(sender?.project) } : {}),
      ...expiry(now, input.ttl, this.config().retention.queueMaxAgeDays),
    };
    const project = sender?.project;
    // A reply someone is waiting for (`cihub send --wait`, a port client) goes straight to them.
    const waiter = message.in_reply_to ? this.replyWaiters.get(message.in_reply_to) : undefined;
    if (waiter) {
      this.replyWaiters.delete(message.in_reply_to ?? '');
      this.record(project, 'response', to, message);
      waiter(message);
      return { id: message.id, recipients: [to] };
    }
    const resolved = this.resolve(to, from);
    // A full mailbox refuses a direct message outright; a fan-out reaches the others.
    const recipients = resolved.filter((name) => !this.full(name));
    if (recipients.length < resolved.length && resolved.length === 1 && resolved[0] === to) {
      const max = this.config().retention.queueMaxMessages;
      throw new BusError('mailbox_full', `${this.destination(to)}'s mailbox holds ${max} messages, the retention.queueMaxMessages limit: it is not taking its messages; send again later, or raise the limit (cihub config retention.queueMaxMessages <n>)`);
    }
    const queues: MailboxQueue[] = [];
    // A direct message's `queued` record says it all; a fan-out also records whom a full mailbox refused
    // and whom it reached, once the queues are written, like each recipient's `queued` (see enqueue).
    if (resolved.length !== 1 || resolved[0] !== to) {
      this.afterCommit.push((failed) => {
        for (const name of resolved) if (!recipients.includes(name)) this.record(project, 'refused', this.destination(name), message, 'mailbox full');
        const reached = recipients.filter((_, i) => !failed.has(queues[i]));
        if (reached.length > 0 || recipients.length === 0) this.record(project, 'sent', to, message, `to ${reached.join(', ') || 'nobody'}`);
      });
    }
    for (const name of recipients) queues.push(this.enqueue(name, message));
    return { id: message.id, recipients };
  }

  /** Whether `name`'s mailbox (after forwards) holds as many messages as retention allows. */
  private full(name: string): boolean {
    return (this.queues.get(this.destination(name))?.size ?? 0) >= this.config().retention.queueMaxMessages;
  }

  /**
   * Writes what {@link route} queued. A queue that could not be written did not accept its messages:
   * `failed` holds it and `error` says so, for the sender. Then {@link announce}.
   */
  private writeQueues(): { failed: ReadonlySet<MailboxQueue>; error?: BusError } {
    const failed = new Set<MailboxQueue>();
    const problems: string[] = [];
    for (const q of this.dirty) {
      try {
        q.flush();
      } catch (error) {
        failed.add(q);
        problems.push(`${q.name}: ${errorMessage(error)}`);
      }
    }
    this.dirty.clear();
    if (failed.size === 0) return { failed };
    const why = problems.join('; ');
    this.log.error(`bus: writing queues failed: ${why}`);
    return { failed, error: new BusError('internal', `could not write the queue (${why}); the message was not accepted: free some disk space and send it again`) };
  }

  /** After {@link writeQueues}: records what was written, tells watchers and starts deliveries. */
  private announce(failed: ReadonlySet<MailboxQueue>): void {
    for (const action of this.afterCommit.splice(0)) action(failed);
  }

  /** Routes one message, writes it and announces it; throws if it was not accepted. */
  send(raw: unknown, context: SendContext = {}): { id: string; recipients: string[] } {
    const result = this.route(raw, context);
    const { failed, error } = this.writeQueues();
    this.announce(failed);
    if (error) throw error;
    return result;
  }

  /** The mailboxes an address reaches. */
  private resolve(to: string, from: string): string[] {
    if (to === '*') return this.cis.all().map((c) => c.name).concat([...this.externals.keys()]).filter((n) => n !== from);
    if (to.startsWith('@')) {
      const project = to.slice(1);
      const members = this.cis.all().filter((c) => projectName(c.project) === project).map((c) => c.name);
      if (members.length === 0) throw new BusError('unknown_recipient', `no CI belongs to project "${project}"`);
      return members.filter((n) => n !== from);
    }
    if (!this.knows(to)) throw new BusError('unknown_recipient', `no CI or mailbox named "${to}" (see \`cihub list\`)`);
    return [to];
  }

  private knows(name: string): boolean {
    return this.cis.get(name) !== undefined || this.externals.has(name) || this.queues.has(name) || this.forwards.has(name);
  }

  /** The mailbox that receives `name`'s messages, following forwards. */
  private destination(name: string): string {
    let at = name;
    for (let hops = 0; hops < MAX_FORWARD_HOPS && this.forwards.has(at); hops++) at = this.forwards.get(at) ?? at;
    return at;
  }

  /** Adds `message` to `recipient`'s mailbox (unwritten until {@link writeQueues}); returns that queue. */
  private enqueue(recipient: string, message: Message): MailboxQueue {
    const mailbox = this.destination(recipient);
    const ci = this.cis.get(mailbox);
    const held = ci?.kind === 'process' && ci.policy === 'hold';
    const q = this.queue(mailbox);
    q.add(message, held);
    this.dirty.add(q);
    const project = ci?.project ?? this.cis.get(recipient)?.project;
    // Recorded (timeline, windows, chat) only once written: a message that could not be is not queued.
    this.afterCommit.push((failed) => {
      if (failed.has(q)) return;
      if (mailbox !== recipient) this.record(project, 'forwarded', mailbox, message, `for ${recipient}`);
      this.record(project, held ? 'held' : 'queued', mailbox, message);
      this.schedule(mailbox);
    });
    return q;
  }

  private record(project: string | undefined, outcome: MessageOutcome, mailbox: string, message: Message, detail?: string): void {
    this.timeline.append(project && path.basename(project), outcome, mailbox, message, detail); // append makes the key
    this.emit({ type: 'message', outcome, mailbox, message, ...(detail ? { detail } : {}) });
  }

  /** Ends a message's delivery: marks it in its queue (written by the next flush) and records how. */
  private finish(q: MailboxQueue, message: Message, outcome: 'delivered' | 'injected' | 'failed' | 'refused' | 'expired', detail?: string): void {
    q.finish(message.id, outcome === 'injected' ? 'delivered' : outcome === 'failed' ? 'refused' : outcome);
    this.record(this.cis.get(q.name)?.project, outcome, q.name, message, detail);
  }

  /**
   * Writes the marks of deliveries that no request waits for (an injection, a model's answer, a
   * forward, expiry). A failed write keeps them for the next flush (see MailboxQueue.flush), so it is
   * logged here instead of escaping into a timer.
   */
  private flushMarks(q: MailboxQueue): void {
    try {
      q.flush();
    } catch (error) {
      this.log.warn(`bus: ${q.name}: delivery marks not written yet (${errorMessage(error)}); retried with the next write`);
    }
  }

  /** A conversation turn that did not go through the bus (a chat or terminal message to a model CI). */
  recordTurn(ci: BusCi, turn: { from: string; to: string; content: string }, outcome: MessageOutcome): void {
    const message: Message = { id: randomUUID(), type: outcome === 'response' ? 'response' : 'request', timestamp: Date.now(), priority: 'normal', ...turn };
    this.record(ci.project, outcome, turn.to, message);
  }

  /** The content a recipient gets: with `[Project: <name>]` when the configuration says so. */
  private contextual(message: Message, recipient: string): Message {
    const mode = this.config().contextPrefix;
    const own = projectName(this.cis.get(recipient)?.project);
    const theirs = message.project;
    const prefix = mode === 'always' ? theirs : mode === 'cross-project' && theirs && theirs !== own ? theirs : undefined;
    return prefix ? { ...message, content: `[Project: ${prefix}] ${message.content}` } : message;
  }

  // --- delivery -------------------------------------------------------------------------------------

  private schedule(name: string): void {
    if (this.stopped) return;
    const ci = this.cis.get(name);
    if (ci?.kind === 'model') void this.answerNext(ci);
    else if (ci && (ci.policy === 'inject' || ci.policy === 'hold')) this.injectNext(ci);
    else if (this.externals.has(name)) void this.forwardNext(name);
    this.wakeReceivers(name);
  }

  private injectNext(ci: BusCi): void {
    clearTimeout(this.injectTimers.get(ci.name));
    this.injectTimers.delete(ci.name);
    const q = this.queues.get(ci.name);
    const entry = q?.next(ci.policy === 'hold');
    if (!q || !entry) return;
    const state = ci.injectState();
    if (!state.running) return; // ciChanged() brings us back when it runs
    const { injectQuietMs, injectHumanIdleMs } = this.config();
    const readyAt = Math.max(
      (state.lastOutputAt ?? 0) + injectQuietMs,
      (this.lastInjectAt.get(ci.name) ?? 0) + injectQuietMs,
      (state.lastTypedAt ?? 0) + injectHumanIdleMs,
    );
    const blocked = state.unreadInputBytes > INJECT_UNREAD_LIMIT_BYTES;
    if (blocked !== this.notReading.has(ci.name)) {
      if (blocked) this.log.warn(`bus: ${ci.name} is not reading its input (${state.unreadInputBytes} bytes unread); its messages wait in its queue until it does`);
      else this.log.info(`bus: ${ci.name} reads its input again; injecting its waiting messages`);
      if (blocked) this.notReading.add(ci.name);
      else this.notReading.delete(ci.name);
    }
    const wait = blocked ? injectQuietMs || 1000 : readyAt - Date.now();
    if (wait > 0) {
      const timer = setTimeout(() => this.injectNext(ci), wait + 10);
      timer.unref();
      this.injectTimers.set(ci.name, timer);
      return;
    }
    const message = this.contextual(entry.message, ci.name);
    typeMessage(ci, message.content, state.bracketedPaste, message.from);
    this.lastInjectAt.set(ci.name, Date.now());
    this.finish(q, entry.message, 'injected');
    this.flushMarks(q);
    this.injectNext(ci);
  }

  /** Model CIs answer one message at a time; the answer goes back to the sender as a response. */
  private async answerNext(ci: BusCi): Promise<void> {
    if (this.answering.has(ci.name) || !ci.answer || !ci.injectState().running) return;
    const q = this.queues.get(ci.name);
    const entry = q?.next();
    if (!q || !entry) return;
    this.answering.add(ci.name);
    entry.state = 'leased';
    try {
      const reply = await ci.answer(this.contextual(entry.message, ci.name));
      this.finish(q, entry.message, 'delivered');
      this.flushMarks(q);
      this.respond(ci.name, entry.message, reply);
    } catch (error) {
      // A failed answer is not retried forever: the sender gets the error as the response.
      this.finish(q, entry.message, 'failed', errorMessage(error));
      this.flushMarks(q);
      this.respond(ci.name, entry.message, errorMessage(error), 'error');
    } finally {
      this.answering.delete(ci.name);
    }
    this.schedule(ci.name);
  }

  /** Sends `content` back to whoever sent `original`, if they can receive; otherwise only records it. */
  private respond(from: string, original: Message, content: string, type: 'response' | 'error' = 'response'): void {
    const to = original.from;
    const reply = { type, from, to, content, in_reply_to: original.id };
    if (this.replyWaiters.has(original.id) || this.knows(to)) {
      try {
        this.send(reply);
        return;
      } catch (error) {
        this.log.warn(`bus: response from ${from} to ${to} not delivered: ${errorMessage(error)}`);
      }
    }
    const message: Message = { id: randomUUID(), timestamp: Date.now(), priority: 'normal', ...reply };
    this.record(this.cis.get(from)?.project, 'response', from, message, `${to} has no mailbox; kept in the timeline only`);
  }

  private async forwardNext(name: string): Promise<void> {
    const ext = this.externals.get(name);
    const q = this.queues.get(name);
    if (!ext || !q || ext.busy || ext.retryTimer) return;
    const entry = q.next();
    if (!entry) return;
    ext.busy = true;
    entry.state = 'leased';
    const message = this.contextual(entry.message, name);
    try {
      const reply = await exchange(ext.socket, `${JSON.stringify(message)}\n`, EXTERNAL_REPLY_TIMEOUT_MS);
      ext.reachable = true;
      ext.lastError = undefined;
      ext.retryMs = EXTERNAL_RETRY_MIN_MS;
      this.finish(q, entry.message, 'delivered');
      this.flushMarks(q);
      if (reply !== undefined) this.respond(name, entry.message, lineContent(reply));
    } catch (error) {
      entry.state = 'queued';
      ext.reachable = false;
      ext.lastError = errorMessage(error);
      const delay = ext.retryMs;
      ext.retryMs = Math.min(EXTERNAL_RETRY_MAX_MS, ext.retryMs * 2);
      this.log.warn(`bus: external ${name} unreachable (${ext.lastError}); retrying in ${delay / 1000}s`);
      ext.retryTimer = setTimeout(() => {
        ext.retryTimer = undefined;
        this.schedule(name);
      }, delay);
      ext.retryTimer.unref();
    } finally {
      ext.busy = false;
    }
    if (ext.reachable) this.schedule(name);
  }

  private wakeReceivers(name: string): void {
    const waiting = this.waiters.get(name);
    const q = this.queues.get(name);
    if (!waiting?.length || !q) return;
    while (waiting.length) {
      const w = waiting[0];
      const messages = q.lease(w.max, w.lessee);
      if (messages.length === 0) break;
      waiting.shift();
      clearTimeout(w.timer);
      w.resolve(messages.map((m) => this.contextual(m, name)));
    }
  }

  // --- the pull side --------------------------------------------------------------------------------

  /** Leases waiting messages to `lessee`, waiting up to `waitMs` for one. */
  receive(name: string, max: number, waitMs: number, lessee: object): Promise<Message[]> {
    if (!this.knows(name)) throw new BusError('unknown_recipient', `no CI or mailbox named "${name}"`);
    const q = this.queue(name);
    const now = q.lease(max, lessee).map((m) => this.contextual(m, name));
    if (now.length || waitMs === 0) return Promise.resolve(now);
    return new Promise((resolve) => {
      const waiter: Waiter = { resolve, max, lessee };
      waiter.timer = setTimeout(() => {
        const list = this.waiters.get(name) ?? [];
        list.splice(list.indexOf(waiter), 1);
        resolve([]);
      }, waitMs);
      const list = this.waiters.get(name) ?? [];
      list.push(waiter);
      this.waiters.set(name, list);
    });
  }

  /** Marks leased messages delivered. */
  ack(name: string, ids: string[], lessee: object): number {
    const q = this.queues.get(name);
    if (!q) return 0;
    let n = 0;
    for (const id of ids) {
      const entry = q.get(id);
      if (entry?.state !== 'leased' || entry.lessee !== lessee) continue;
      this.finish(q, entry.message, 'delivered');
      n++;
    }
    q.flush();
    return n;
  }

  /** A connection went away: its unacknowledged leases go back to their queues, its waits end. */
  releaseLessee(lessee: object): void {
    for (const [name, q] of this.queues) if (q.release(lessee)) this.schedule(name);
    for (const list of this.waiters.values()) {
      for (const w of list.filter((x) => x.lessee === lessee)) {
        clearTimeout(w.timer);
        list.splice(list.indexOf(w), 1);
        w.resolve([]);
      }
    }
  }

  peek(name: string): (Message & { state: 'queued' | 'held' | 'leased' })[] {
    if (!this.knows(name)) throw new BusError('unknown_recipient', `no CI or mailbox named "${name}"`);
    return this.queue(name).all().map((e) => ({ ...e.message, state: e.state }));
  }

  approve(name: string, ids: string[] | undefined): number {
    const q = this.queue(name);
    const targets = ids ?? q.all('held').map((e) => e.message.id);
    let n = 0;
    for (const id of targets) if (q.approve(id)) n++;
    q.flush();
    this.schedule(name);
    return n;
  }

  refuse(name: string, ids: string[] | undefined, reason: string | undefined): number {
    const q = this.queue(name);
    const targets = ids ?? q.all('held').map((e) => e.message.id);
    let n = 0;
    for (const id of targets) {
      const entry = q.get(id);
      if (entry?.state !== 'held') continue;
      this.finish(q, entry.message, 'refused', reason);
      n++;
    }
    q.flush();
    return n;
  }

  // --- forwarding and mailboxes ---------------------------------------------------------------------

  forward(name: string, to: string): void {
    if (name === to || this.destination(to) === name) throw new BusError('invalid_message', `forwarding ${name} to ${to} would make a loop`);
    this.forwards.set(name, to);
    this.queue(to); // a mailbox for `to` exists from now on
    this.saveForwards();
  }

  unforward(name: string): boolean {
    const had = this.forwards.delete(name);
    this.saveForwards();
    return had;
  }

  forwardedTo(name: string): string | undefined {
    return this.forwards.get(name);
  }

  private saveForwards(): void {
    writeFileAtomic(this.forwardsFile, JSON.stringify(Object.fromEntries(this.forwards)));
  }

  stats(name: string): QueueStats | undefined {
    return this.queues.get(name)?.stats();
  }

  /** Mailboxes that are neither CIs nor external sockets. */
  mailboxes(): { name: string; queue: QueueStats }[] {
    return [...this.queues.values()]
      .filter((q) => !this.cis.get(q.name) && !this.externals.has(q.name))
      .map((q) => ({ name: q.name, queue: q.stats() }));
  }

  /** Timeline entries about a CI, oldest first. */
  history(name: string) {
    return this.timeline.read(name);
  }

  /** Sends a message and waits for the response to it (`cihub send --wait`, port clients). */
  ask(raw: unknown, context: SendContext, timeoutMs: number): Promise<Message> {
    const { id, recipients } = this.send(raw, context);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.replyWaiters.delete(id);
        reject(new BusError('unknown_recipient', `no reply from ${recipients.join(', ') || 'anyone'} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.replyWaiters.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
    });
  }

  // --- external CIs ---------------------------------------------------------------------------------

  private scheduleScan(): void {
    if (this.scanTimer || this.stopped) return;
    this.scanTimer = setTimeout(() => {
      this.scanTimer = undefined;
      this.scanExternals();
    }, 50);
  }

  /** Sockets in `bus/` that the hub did not make are external CIs. */
  private scanExternals(): void {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(this.busDir, { withFileTypes: true });
    } catch {
      return;
    }
    const seen = new Set<string>();
    for (const entry of entries) {
      if (!entry.name.endsWith('.sock')) continue;
      const name = entry.name.slice(0, -'.sock'.length);
      if (!CI_NAME_PATTERN.test(name) || this.servers.has(name) || this.cis.get(name)) continue;
      seen.add(name);
      if (!this.externals.has(name)) {
        this.externals.set(name, { socket: path.join(this.busDir, entry.name), busy: false, retryMs: EXTERNAL_RETRY_MIN_MS });
        this.queue(name);
        this.log.info(`bus: found external CI ${name}`);
        this.schedule(name);
      }
    }
    for (const name of [...this.externals.keys()]) {
      if (seen.has(name)) continue;
      clearTimeout(this.externals.get(name)?.retryTimer);
      this.externals.delete(name);
      this.log.info(`bus: external CI ${name} is gone (its socket was removed)`);
    }
  }

  /** External CIs as `cihub list` shows them. */
  externalInfos(): CiInfo[] {
    this.scanExternals();
    return [...this.externals].map(([name, ext]) => ({
      name,
      kind: 'external' as const,
      state: ext.reachable === false ? ('failed' as const) : ('running' as const),
      socket: ext.socket,
      createdAt: 0,
      ...(ext.lastError ? { reason: ext.lastError } : {}),
      queue: this.queue(name).stats(),
      forwardedTo: this.forwards.get(name),
    }));
  }

  isExternal(name: string): boolean {
    return this.externals.has(name);
  }

  // --- housekeeping ---------------------------------------------------------------------------------

  private expire(): void {
    const now = Date.now();
    for (const q of this.queues.values()) {
      const expired = q.expired(now);
      for (const entry of expired) {
        this.finish(q, entry.message, 'expired');
      }
      if (expired.length) this.flushMarks(q);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.close();
    clearInterval(this.expiryTimer);
    clearTimeout(this.scanTimer);
    for (const timer of this.injectTimers.values()) clearTimeout(timer);
    for (const ext of this.externals.values()) clearTimeout(ext.retryTimer);
    for (const list of this.waiters.values()) for (const w of list) {
      clearTimeout(w.timer);
      w.resolve([]);
    }
    await Promise.all(
      [...this.servers].map(
        ([name, server]) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            fs.rmSync(path.join(this.busDir, `${name}.sock`), { force: true });
          }),
      ),
    );
    this.servers.clear();
    for (const q of this.queues.values()) q.close();
    this.timeline.close();
  }
}

/** `hold` holds what waits in the mailbox for a human's approval; any other policy releases it. */
function applyPolicy(q: MailboxQueue, policy: DeliveryPolicy): void {
  if (policy === 'hold') q.holdAll();
  else q.releaseHeld();
}

function errorLine(code: BusErrorCode, message: string): string {
  return `${JSON.stringify({ ok: false, error: { code, message } })}\n`;
}

/**
 * Writes one line to a Unix socket and returns the first line it answers (undefined if it closes
 * without answering). Rejects if it cannot connect or says nothing within `timeoutMs`.
 */
function exchange(socketPath: string, line: string, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let buffer = '';
    let written = false;
    const timer = setTimeout(() => {
      socket.destroy();
      if (written) resolve(undefined);
      else reject(new Error('connection timed out'));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(line, () => (written = true)));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const nl = buffer.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        socket.end();
        resolve(buffer.slice(0, nl));
      }
    });
    socket.on('end', () => {
      clearTimeout(timer);
      resolve(buffer.length ? buffer : undefined);
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      if (written) resolve(buffer.length ? buffer : undefined);
      else reject(error);
    });
  });
}
