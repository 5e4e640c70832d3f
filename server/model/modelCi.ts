/**
 * A model CI: a project CI backed by a provider instead of a process. It has what every CI has — a name,
 * a queue (the bus calls {@link answer}), a terminal (a chat REPL rendered by the hub, captured as
 * asciicast like any PTY), and a capture — plus a conversation and its provider's health.
 *
 * Answers are serialized: one request at a time, whoever asks (the bus, the chat, the REPL).
 */
import * as path from 'node:path';
import type { CiInfo, CiState, Message } from '../protocol';
import type { ModelRecord } from '../registry';
import type { CiHost } from '../ci';
import { CiTerminal } from '../terminal';
import type { BusCi, InjectState } from '../bus/bus';
import { Conversation } from './conversation';
import { Repl } from './repl';
import { runTurn } from './turn';
import { makeProvider } from './providers';
import { ProviderFailure, type Provider } from './provider';

export interface Answer {
  text: string;
  /** Cut off (stopped, stream broken, timed out): what arrived is kept. */
  partial: boolean;
  /** Why, when it failed or was cut off. */
  error?: string;
}

/** The system prompt a model CI gets unless its own is set. */
function defaultSystemPrompt(name: string, project: string | undefined): string {
  const where = project ? ` of the project "${path.basename(project)}" (${project})` : '';
  return (
    `You are ${name}, a companion intelligence (CI)${where}, working with other CIs and people through Projects Chat. ` +
    'Messages from others start with [from <sender>], and with [Project: <name>] when they come from another project. ' +
    'Answer helpfully and concisely.'
  );
}

export class ModelCi implements BusCi {
  readonly kind = 'model';
  state: CiState;
  readonly terminal: CiTerminal;
  private provider: Provider;
  private readonly conversation: Conversation;
  private readonly repl: Repl;
  private current: AbortController | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private lastLatencyMs: number | undefined;
  private lastError: { message: string; at: number } | undefined;
  private readonly unsubscribeKeys: () => void;

  constructor(
    private readonly host: CiHost,
    readonly record: ModelRecord,
  ) {
    this.state = record.state === 'stopped' || record.desired === 'stopped' ? 'stopped' : 'starting';
    this.terminal = new CiTerminal(
      host.mirrors,
      record.cols,
      record.rows,
      record.bytesCaptured,
      host.captures.forCi(record.name),
      (message) => host.log.warn(`${record.name}: ${message}`),
    );
    this.conversation = new Conversation(path.join(host.paths.stateDir, 'conversations'), record.name, (message) => host.log.warn(`${record.name}: ${message}`));
    this.provider = this.makeProvider();
    this.unsubscribeKeys = host.keys.onChange(() => (this.provider = this.makeProvider()));
    this.repl = new Repl({
      print: (text) => this.terminal.outputText(text),
      submit: (line) => void this.ask(line, 'you').catch(() => undefined),
      cancel: () => this.cancel(),
    });
    this.terminal.backend = { write: (data) => this.repl.input(data), resize: () => undefined };
  }

  private makeProvider(): Provider {
    return makeProvider(this.record.provider, this.record.baseUrl, this.host.keys.keyFor(this.name, this.record.provider));
  }

  get name(): string {
    return this.record.name;
  }

  get project(): string | undefined {
    return this.record.project;
  }

  /** Model CIs answer every message; the bus asks them through {@link answer}. */
  get policy(): 'inbox' {
    return 'inbox';
  }

  get running(): boolean {
    return this.state === 'running' || this.state === 'starting';
  }

  injectState(): InjectState {
    return { running: this.running, lastOutputAt: this.terminal.stats.lastOutputAt, lastTypedAt: this.terminal.stats.lastTypedAt, bracketedPaste: false, unreadInputBytes: 0 };
  }

  /** Text typed by the bus's inject path or a client: goes to the REPL. */
  type(text: string): void {
    this.terminal.input(text);
  }

  info(): CiInfo {
    const r = this.record;
    return {
      name: r.name,
      kind: 'model',
      state: this.state,
      project: r.project,
      reason: r.reason,
      createdAt: r.createdAt,
      startedAt: r.startedAt,
      endedAt: r.endedAt,
      session: r.session,
      ...this.terminal.infoFields(),
      model: {
        provider: r.provider,
        model: r.model,
        baseUrl: this.provider.baseUrl,
        lastLatencyMs: this.lastLatencyMs,
        lastError: this.lastError?.message,
        lastErrorAt: this.lastError?.at,
        busy: this.current !== undefined,
        turns: this.conversation.length,
      },
    };
  }

  snapshot(): ModelRecord {
    return { ...this.record, state: this.state, bytesCaptured: this.terminal.stats.bytesCaptured };
  }

  private setState(state: CiState): void {
    this.state = state;
    this.host.changed(this);
  }

  start(): void {
    this.record.desired = 'running';
    this.record.startedAt = Date.now();
    this.record.reason = undefined;
    this.record.session = this.terminal.beginSession({ title: this.name, command: `${this.record.provider}:${this.record.model}` });
    this.terminal.outputText(`\x1b[2m${this.name}: ${this.record.provider} ${this.record.model} at ${this.provider.baseUrl} — type a message, Enter sends, Ctrl-C stops an answer\x1b[0m\r\n`);
    this.repl.prompt();
    this.host.log.info(`${this.name}: model CI ready (${this.record.provider} ${this.record.model})`);
    this.setState('running');
  }

  cancel(): void {
    this.current?.abort();
  }

  /** The bus's seam: answers a message (its content already carries its context). */
  async answer(message: Message): Promise<string> {
    const result = await this.ask(message.content, message.from, undefined, true);
    if (result.error && !result.text) throw new Error(result.error);
    return result.partial ? `${result.text}\n\n[answer cut off: ${result.error ?? 'stopped'}]` : result.text;
  }

  /**
   * Asks the model: `text` from `from`, streamed to the terminal and to `onToken`; the turn is added to
   * the conversation (a partial answer kept and marked). Never throws for provider failures: the CI stays
   * usable, and the answer says what went wrong.
   */
  ask(text: string, from: string, onToken: (token: string, sofar: string) => void = () => undefined, viaBus = false): Promise<Answer> {
    const run = this.chain.then(() => this.turn(text, from, onToken, viaBus));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** `viaBus`: the bus records the message and the response in the timeline itself. */
  private async turn(text: string, from: string, onToken: (token: string, sofar: string) => void, viaBus: boolean): Promise<Answer> {
    // Timeline entries are written off the request's path (they also notify every watching client).
    const record = (turn: { from: string; to: string; content: string }, outcome: 'delivered' | 'response' | 'failed') => {
      if (!viaBus) setImmediate(() => this.host.record(this, turn, outcome));
    };
    if (!this.running) {
      return { text: '', partial: false, error: `${this.name} is ${this.state}; start it again with \`cihub restart ${this.name}\`` };
    }
    const userContent = from === 'you' ? text : `[from ${from}] ${text}`;
    if (from !== 'you') this.terminal.outputText(`\r\x1b[2K\x1b[2m[from ${from}]\x1b[0m ${text.replace(/\r?\n/g, '\r\n')}\r\n`);
    this.conversation.add('user', userContent);
    record({ from, to: this.name, content: userContent }, 'delivered');
    this.repl.setBusy(true);
    const controller = new AbortController();
    this.current = controller;
    let sofar = '';
    const system = this.record.systemPrompt ?? defaultSystemPrompt(this.name, this.record.project);
    try {
      const result = await runTurn({
        provider: this.provider,
        model: this.record.model,
        system,
        messages: this.conversation.window(this.record.contextTokens, system),
        temperature: this.record.temperature,
        maxTokens: this.record.maxTokens,
        idleTimeoutMs: this.record.timeoutMs,
        signal: controller.signal,
        onToken: (token) => {
          sofar += token;
          this.terminal.outputText(token.replace(/\r?\n/g, '\r\n'));
          onToken(token, sofar);
        },
        onNotice: (notice) => this.terminal.outputText(`\r\n\x1b[33m[${notice}]\x1b[0m\r\n`),
      });
      this.lastLatencyMs = result.firstTokenMs;
      this.lastError = undefined;
      this.conversation.add('assistant', result.text);
      record({ from: this.name, to: from, content: result.text }, 'response');
      return { text: result.text, partial: false };
    } catch (error) {
      const failure = error instanceof ProviderFailure ? error : new ProviderFailure('server', String(error), sofar);
      const partial = failure.partial || sofar;
      if (failure.kind !== 'cancelled') {
        this.lastError = { message: failure.message, at: Date.now() };
        this.host.log.warn(`${this.name}: ${failure.message}`);
      }
      this.terminal.outputText(`\r\n\x1b[${failure.kind === 'cancelled' ? '2' : '31'}m[${failure.kind === 'cancelled' ? 'stopped' : failure.message}]\x1b[0m`);
      if (partial) {
        this.conversation.add('assistant', partial, true);
        record({ from: this.name, to: from, content: `${partial}\n[answer cut off: ${failure.message}]` }, 'response');
      } else {
        record({ from: this.name, to: from, content: failure.message }, 'failed');
      }
      return { text: partial, partial: partial.length > 0, error: failure.kind === 'cancelled' ? 'stopped' : failure.message };
    } finally {
      this.current = undefined;
      this.terminal.outputText('\r\n');
      this.repl.setBusy(false);
      // Latency and errors changed: tell watchers (without rewriting the registry).
      this.host.updated(this);
    }
  }

  async stop(): Promise<void> {
    this.record.desired = 'stopped';
    this.cancel();
    await this.chain;
    this.terminal.endSession();
    this.record.endedAt = Date.now();
    this.setState('stopped');
    void this.terminal.endAll(`${this.name} stopped`, this.info(), true);
  }

  async restart(): Promise<void> {
    if (this.running) await this.stop();
    this.start();
  }

  async shutdown(): Promise<void> {
    this.cancel();
    await this.chain;
    void this.terminal.endAll('the hub is stopping', this.info(), false);
    this.terminal.close();
    this.unsubscribeKeys();
  }

  async remove(): Promise<void> {
    this.record.desired = 'stopped';
    this.cancel();
    await this.chain;
    void this.terminal.endAll(`${this.name} was removed`, this.info(), false);
    this.terminal.close();
    this.conversation.remove();
    this.unsubscribeKeys();
    this.host.keys.forget(this.name);
  }
}
