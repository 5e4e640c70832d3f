/**
 * What the chat view shows and does: the projects of every window, the selected project's CIs and
 * history, messages to CIs (`@name` for another one), and slash commands — each result or failure an
 * entry in the project's chat, with what to do.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  Approve,
  ChatAppend,
  ChatHistory,
  ChatSend,
  ChatStop,
  EnsureDefaultCi,
  Export,
  Kill,
  List,
  ListProjects,
  Mailboxes,
  Refuse,
  Restart,
  Send,
  Spawn,
  Status,
  ProviderKind,
  type ChatEntry,
  type CiInfo,
  type HubEvent,
  type ProjectInfo,
} from '../server/protocol';
import { processEnv, resolveCommand } from '../server/env';
import { errorMessage } from '../server/errors';
import { formatList, formatStatus, table, describeQueueStats } from '../client/format';
import type { HubConnection } from './hubConnection';
import type { ChatViewProvider } from './chatView';
import type { Terminals } from './terminals';
import type { CiView, HubState, ProjectView, WebviewToHost } from './webviewProtocol';
import { parseChatInput, splitWords, SLASH_HELP, type SlashCommand } from './slashCommands';
import type { Settings } from './settings';
import { parseModelSpec, type Models } from './models';

/** The "a model…" choice for a project's default CI. */
const MODEL_OPTION = 'model…';

/** workspaceState key of the project selected in this window. */
const SELECTED = 'projectsChat.selectedProject';
/** Agent CLIs offered as a project's default CI when none is configured, if found on PATH. */
const KNOWN_AGENTS: readonly [string, string][] = [
  ['claude', 'Claude Code'],
  ['codex', 'OpenAI Codex CLI'],
  ['aider', 'Aider'],
  ['gemini', 'Gemini CLI'],
  ['goose', 'Goose'],
  ['opencode', 'opencode'],
];

export class ChatController implements vscode.Disposable {
  private projects: ProjectInfo[] = [];
  private cis: CiInfo[] = [];
  private selected: string | undefined;
  /** The last `cis` the webview got (JSON, and for which project), to leave out posts that change nothing. */
  private postedCis: { project: string; json: string } | undefined;
  /** Messages typed while the user chooses a default CI: sent once it exists. */
  private readonly pending = new Map<string, string>();
  private refreshTimer: NodeJS.Timeout | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly changeEmitter = new vscode.EventEmitter<void>();
  /** The CIs or projects changed (for the status bar). */
  readonly onDidChange = this.changeEmitter.event;

  constructor(
    private readonly hub: HubConnection,
    private readonly view: ChatViewProvider,
    private readonly terminals: Terminals,
    private readonly state: vscode.Memento,
    private readonly settings: () => Settings,
    private readonly localFolders: () => string[],
    private readonly models: Models,
  ) {
    this.selected = state.get<string>(SELECTED);
    this.disposables.push(
      view.onDidBecomeReady(() => void this.init()),
      hub.onDidChangeState(({ state, message }) => view.post({ type: 'hub', state, message })),
      hub.onDidConnect(() => void this.init()),
    );
  }

  /** A hub event (extension.ts receives them and hands them on, so each is validated once). */
  handleEvent(event: HubEvent): void {
    switch (event.type) {
      case 'projects': {
        this.projects = event.projects;
        const before = this.selected;
        this.ensureSelection();
        this.view.post({ type: 'projects', projects: this.projectViews(), selected: this.selected });
        if (this.selected && this.selected !== before) void this.select(this.selected).catch(() => undefined);
        this.changeEmitter.fire();
        return;
      }
      case 'chat':
        // Other projects' chats load with their history when selected.
        if (event.project === this.selected) this.view.post({ type: 'entry', project: event.project, entry: event.entry });
        return;
      case 'ci': {
        const at = this.cis.findIndex((c) => c.name === event.ci.name);
        this.cis = at < 0 ? [...this.cis, event.ci] : this.cis.map((c, i) => (i === at ? event.ci : c));
        this.cisChanged();
        return;
      }
      case 'ciRemoved':
        this.cis = this.cis.filter((c) => c.name !== event.name);
        this.cisChanged();
        return;
      case 'message':
        // Queue counts changed: they come with the list.
        this.scheduleRefresh();
        return;
      case 'resync':
        // This window fell behind and missed updates: fetch everything again, as after a reconnect.
        void this.init();
        return;
      case 'log':
      case 'alert':
        return;
    }
  }

  /** Every CI the hub reported last (for the status bar). */
  get allCis(): readonly CiInfo[] {
    return this.cis;
  }

  private scheduleRefresh(): void {
    this.refreshTimer ??= setTimeout(() => {
      this.refreshTimer = undefined;
      void this.refreshCis();
    }, 100);
  }

  private async refreshCis(): Promise<void> {
    try {
      this.cis = (await this.hub.call(List, {})).cis;
    } catch {
      return; // disconnected: the next connect refreshes everything
    }
    this.cisChanged();
  }

  private cisChanged(): void {
    if (this.selected) this.postCis(this.selected, true);
    this.changeEmitter.fire();
  }

  private postCis(project: string, onlyIfChanged: boolean): void {
    const cis = this.ciViews(project);
    const json = JSON.stringify(cis);
    if (onlyIfChanged && this.postedCis?.project === project && this.postedCis.json === json) return;
    this.postedCis = { project, json };
    this.view.post({ type: 'cis', project, cis });
  }

  /** Sends the webview everything (after `ready`, and after each reconnect). */
  private async init(): Promise<void> {
    if (this.hub.state !== 'connected') {
      this.postInit([], [], this.hub.state);
      return;
    }
    try {
      this.projects = (await this.hub.call(ListProjects, {})).projects;
      this.cis = (await this.hub.call(List, {})).cis;
      this.ensureSelection();
      const entries = this.selected ? (await this.hub.call(ChatHistory, { project: this.selected })).entries : [];
      this.postInit(this.selected ? this.ciViews(this.selected) : [], entries, 'connected');
      this.changeEmitter.fire();
    } catch (error) {
      this.view.post({ type: 'hub', state: this.hub.state, message: errorMessage(error) });
    }
  }

  private postInit(cis: CiView[], entries: ChatEntry[], hub: HubState): void {
    this.postedCis = this.selected ? { project: this.selected, json: JSON.stringify(cis) } : undefined;
    this.view.post({ type: 'init', projects: this.projectViews(), selected: this.selected, cis, entries, hub });
  }

  private ensureSelection(): void {
    if (this.selected && this.projects.some((p) => p.path === this.selected)) return;
    const here = this.localFolders();
    this.selected = here[0] ?? this.projects[0]?.path;
    void this.state.update(SELECTED, this.selected);
  }

  private projectViews(): ProjectView[] {
    const here = new Set(this.localFolders());
    return this.projects.map((p) => ({ path: p.path, name: p.name, here: here.has(p.path), windows: p.windows }));
  }

  private project(projectPath: string): ProjectInfo | undefined {
    return this.projects.find((p) => p.path === projectPath);
  }

  private ciViews(projectPath: string): CiView[] {
    const defaultCi = this.project(projectPath)?.defaultCi;
    const views: CiView[] = this.cis
      .filter((ci) => ci.project === projectPath)
      .map((ci) => ({
        name: ci.name,
        kind: ci.kind,
        state: ci.state,
        detail: ci.model ? `${ci.model.provider} ${ci.model.model}` : (ci.command?.join(' ') ?? ci.socket ?? ''),
        unread: ci.queue?.depth ?? 0,
        held: ci.queue?.held ?? 0,
        isDefault: ci.name === defaultCi,
        hasTerminal: ci.kind !== 'external',
      }));
    if (defaultCi && !views.some((v) => v.isDefault)) {
      views.unshift({ name: defaultCi, kind: 'process', state: 'not started', detail: this.settings().defaultCi || 'not configured', unread: 0, held: 0, isDefault: true, hasTerminal: false });
    }
    return views;
  }

  /** Shows a project: its history and CIs. */
  private async select(project: string): Promise<void> {
    this.selected = project;
    await this.state.update(SELECTED, project);
    this.view.post({ type: 'history', project, entries: (await this.hub.call(ChatHistory, { project })).entries });
    this.postCis(project, false);
  }

  /** Handles a message from the webview. */
  handle(message: WebviewToHost): void {
    void this.dispatch(message).catch((error) => this.fail(this.selected, errorMessage(error)));
  }

  private async dispatch(message: WebviewToHost): Promise<void> {
    switch (message.type) {
      case 'selectProject':
        return this.select(message.project);
      case 'send':
        return this.send(message.project, message.text);
      case 'openTerminal':
        this.terminals.show(message.ci);
        return;
      case 'stop':
        await this.hub.call(ChatStop, { ci: message.ci });
        return;
      case 'approve':
        await this.hub.call(Approve, { name: message.ci, ids: message.ids });
        return;
      case 'refuse':
        await this.hub.call(Refuse, { name: message.ci, ids: message.ids });
        return;
      case 'chooseDefaultCi':
        return this.chooseDefaultCi(message.project, message.option);
      case 'openSettings':
        await vscode.commands.executeCommand('workbench.action.openSettings', 'projectsChat');
        return;
    }
  }

  /** A line in the chat: persisted in the project's history when the hub is there, shown locally otherwise. */
  private async note(project: string | undefined, role: 'system' | 'error', text: string, format: ChatEntry['format'] = 'markdown'): Promise<void> {
    if (!project) {
      void (role === 'error' ? vscode.window.showErrorMessage(text) : vscode.window.showInformationMessage(text));
      return;
    }
    try {
      await this.hub.call(ChatAppend, { project, role, text, format });
    } catch {
      this.view.post({ type: 'entry', project, entry: { id: `local-${Date.now()}-${Math.random()}`, t: Date.now(), role, text, format } });
    }
  }

  private fail(project: string | undefined, text: string): void {
    void this.note(project, 'error', text);
  }

  /** What the user typed in the chat of `project`. */
  async send(project: string, text: string): Promise<void> {
    const input = parseChatInput(text);
    if (input.kind === 'invalid') return this.note(project, 'error', input.error);
    if (input.kind === 'command') return this.run(project, input.command);
    let to = input.to;
    if (!to) {
      const ci = await this.ensureDefaultCi(project, input.text);
      if (!ci) return;
      to = ci.name;
    }
    await this.hub.call(ChatSend, { project, to, text: input.text });
  }

  /** The default CI's command from the settings, or undefined when none is configured. */
  private defaultCommand(): string[] | undefined {
    const configured = this.settings().defaultCi;
    if (!configured) return undefined;
    const words = splitWords(configured);
    return Array.isArray(words) && words.length ? words : undefined;
  }

  /** Makes sure the project's default CI exists; with nothing configured, offers a choice instead. */
  private async ensureDefaultCi(project: string, pendingText?: string): Promise<CiInfo | undefined> {
    const s = this.settings();
    const model = parseModelSpec(s.defaultCi);
    if (model) {
      if (!(await this.models.ensureKey(model.provider, model.baseUrl))) return undefined;
      return this.hub.call(EnsureDefaultCi, { project, model, keep: s.keepDefaultCis });
    }
    const command = this.defaultCommand();
    if (!command) {
      if (pendingText) this.pending.set(project, pendingText);
      this.view.post({ type: 'chooseDefaultCi', project, options: this.defaultCiOptions(project) });
      return undefined;
    }
    return this.hub.call(EnsureDefaultCi, { project, command, env: processEnv(), policy: s.defaultCiPolicy, keep: s.keepDefaultCis });
  }

  /** The agents offered for `project`'s default CI: those the hub would find there, a shell and a model. */
  private defaultCiOptions(project: string): { id: string; label: string; detail: string }[] {
    const env = processEnv();
    const options = KNOWN_AGENTS.filter(([command]) => 'path' in resolveCommand(command, project, env)).map(([command, label]) => ({
      id: command,
      label,
      detail: `run \`${command}\` in the project folder`,
    }));
    const shell = process.env.SHELL ?? '/bin/sh';
    options.push({ id: shell, label: `A shell (${path.basename(shell)})`, detail: 'a plain terminal you and other CIs can type into' });
    options.push({ id: MODEL_OPTION, label: 'A model…', detail: 'Ollama, an OpenAI-compatible server or Anthropic: pick the provider and model' });
    return options;
  }

  private async chooseDefaultCi(project: string, option: string): Promise<void> {
    let value = option;
    if (option === MODEL_OPTION) {
      const picked = await this.models.pick();
      if (!picked) return;
      value = `${picked.provider}:${picked.model}${picked.baseUrl ? `@${picked.baseUrl}` : ''}`;
    }
    await vscode.workspace.getConfiguration('projectsChat').update('defaultCi', value, vscode.ConfigurationTarget.Global);
    const ci = await this.ensureDefaultCi(project);
    if (!ci) return;
    await this.note(project, 'system', `Default CI for this project: \`${ci.name}\` running \`${value}\` (change it in Settings → Projects Chat: Default CI).`);
    const text = this.pending.get(project);
    this.pending.delete(project);
    if (text) await this.hub.call(ChatSend, { project, to: ci.name, text });
  }

  /** Runs a slash command; its result (or failure) becomes an entry of the chat. */
  private async run(project: string, command: SlashCommand): Promise<void> {
    try {
      switch (command.name) {
        case 'help':
          return this.note(project, 'system', `| command | |\n|---|---|\n${SLASH_HELP.map(([c, d]) => `| \`${c}\` | ${d} |`).join('\n')}`);
        case 'status':
          return this.note(project, 'system', formatStatus(await this.hub.call(Status, {})), 'terminal');
        case 'jobs': {
          const { cis } = await this.hub.call(List, {});
          const { mailboxes } = await this.hub.call(Mailboxes, {});
          const boxes = mailboxes.length
            ? `\n\nmailboxes:\n${table(['NAME', 'QUEUE'], mailboxes.map((m) => [m.name, describeQueueStats(m.queue)]))}`
            : '';
          return this.note(project, 'system', `${formatList(cis)}${boxes}`, 'terminal');
        }
        case 'spawn': {
          if (command.provider && command.model) {
            const provider = ProviderKind.safeParse(command.provider);
            if (!provider.success) return this.note(project, 'error', `/spawn: --provider must be ollama, openai or anthropic (got "${command.provider}")`);
            if (!(await this.models.ensureKey(provider.data, command.baseUrl))) return this.note(project, 'error', `No API key for ${provider.data}: "Projects Chat: Set API Key…" sets one.`);
            const ci = await this.hub.call(Spawn, { kind: 'model', name: command.ci, provider: provider.data, model: command.model, baseUrl: command.baseUrl, project });
            return this.note(project, 'system', `Started model CI \`${ci.name}\`: ${ci.model?.provider} \`${ci.model?.model}\` at ${ci.model?.baseUrl}. Message it with \`@${ci.name} …\`.`);
          }
          const run = command.command ?? this.defaultCommand() ?? [process.env.SHELL ?? '/bin/sh'];
          const ci = await this.hub.call(Spawn, { kind: 'process', name: command.ci, command: run, cwd: project, project, env: processEnv() });
          if (ci.state === 'failed') return this.note(project, 'error', `${ci.name} failed: ${ci.reason ?? 'unknown reason'}`);
          return this.note(project, 'system', `Started \`${ci.name}\` (pid ${ci.pid}): \`${run.join(' ')}\`. Message it with \`@${ci.name} …\`, open its terminal with \`/attach ${ci.name}\`.`);
        }
        case 'kill': {
          const ci = await this.hub.call(Kill, { name: command.ci });
          return this.note(project, 'system', `Stopped \`${ci.name}\`${ci.reason ? ` (${ci.reason})` : ''}. \`/restart ${ci.name}\` starts it again.`);
        }
        case 'restart': {
          const ci = await this.hub.call(Restart, { name: command.ci });
          if (ci.state === 'failed') return this.note(project, 'error', `${ci.name} failed: ${ci.reason ?? 'unknown reason'}`);
          return this.note(project, 'system', `Restarted \`${ci.name}\` (pid ${ci.pid}).`);
        }
        case 'send': {
          const result = await this.hub.call(Send, { message: { from: 'you', to: command.to, content: command.text } });
          return this.note(project, 'system', `Sent to ${result.recipients.map((r) => `\`${r}\``).join(', ') || 'nobody (no other CI)'}.`);
        }
        case 'attach':
          if (!this.cis.some((c) => c.name === command.ci)) await this.refreshCis();
          if (!this.cis.some((c) => c.name === command.ci)) return this.note(project, 'error', `No CI named \`${command.ci}\`. \`/jobs\` lists them.`);
          this.terminals.show(command.ci);
          return;
        case 'export':
          return this.export(project, command.ci, command.format);
      }
    } catch (error) {
      return this.note(project, 'error', errorMessage(error));
    }
  }

  /** Saves a CI's transcript where the user says. */
  async export(project: string | undefined, ci: string, format: 'cast' | 'jsonl' | 'md'): Promise<void> {
    const result = await this.hub.call(Export, { name: ci, format });
    const target = await vscode.window.showSaveDialog({
      defaultUri: vscode.Uri.file(path.join(project ?? this.localFolders()[0] ?? process.env.HOME ?? '/', `${ci}-${result.session.id}.${format}`)),
      title: `Export the transcript of ${ci}`,
    });
    if (!target) return;
    await fs.promises.copyFile(result.path, target.fsPath);
    await this.note(project, 'system', `Saved the ${format} transcript of \`${ci}\` (session ${result.session.id}) to \`${target.fsPath}\`.`);
    if (format === 'md') await vscode.window.showTextDocument(target);
  }

  get selectedProject(): string | undefined {
    return this.selected;
  }

  dispose(): void {
    clearTimeout(this.refreshTimer);
    for (const d of this.disposables) d.dispose();
    this.changeEmitter.dispose();
  }
}
