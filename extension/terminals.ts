/**
 * Integrated terminals bound to CIs' PTYs through the hub: a `Pseudoterminal` per attachment (current
 * screen first, then live; typing and resizing go to the agent), the `projectsChat.agent` terminal
 * profile, and revival after a window reload — the CIs keep running in the hub, so the terminals are
 * re-attached, not restarted.
 */
import { randomUUID } from 'node:crypto';
import * as vscode from 'vscode';
import { Attach, AttachEnded, AttachResize, Detach, Input, List, Output, type CiInfo } from '../server/protocol';
import { errorMessage } from '../server/errors';
import type { HubConnection } from './hubConnection';

/** workspaceState key: the CIs this window had terminals on, to bring them back after a reload. */
const OPEN_TERMINALS = 'projectsChat.terminals';

class CiPseudoterminal implements vscode.Pseudoterminal {
  private readonly writeEmitter = new vscode.EventEmitter<string>();
  private readonly closeEmitter = new vscode.EventEmitter<number | void>();
  readonly onDidWrite = this.writeEmitter.event;
  readonly onDidClose = this.closeEmitter.event;
  attachId: string | undefined;
  private dimensions: vscode.TerminalDimensions = { columns: 80, rows: 24 };
  private opened = false;
  ended = false;

  constructor(
    readonly ci: string,
    private readonly hub: HubConnection,
    private readonly terminals: Terminals,
  ) {}

  open(dimensions: vscode.TerminalDimensions | undefined): void {
    if (dimensions) this.dimensions = dimensions;
    this.opened = true;
    void this.attach(false);
  }

  /** Attaches (again, after a reconnect: the screen is reset and replayed). */
  async attach(again: boolean): Promise<void> {
    if (!this.opened) return;
    const attachId = randomUUID();
    this.attachId = attachId;
    this.terminals.route(attachId, this);
    try {
      if (again) this.writeEmitter.fire('\x1bc');
      await this.hub.call(Attach, { name: this.ci, attachId, cols: this.dimensions.columns, rows: this.dimensions.rows });
      this.ended = false;
    } catch (error) {
      this.terminals.unroute(attachId);
      this.attachId = undefined;
      this.writeEmitter.fire(`\r\n\x1b[33m[Projects Chat] cannot attach to ${this.ci}: ${errorMessage(error)}\x1b[0m\r\n`);
    }
  }

  output(data: string): void {
    this.writeEmitter.fire(data);
  }

  /** The hub ended the attachment: the CI exited or was stopped. The terminal stays, with the reason. */
  endedBy(reason: string): void {
    this.ended = true;
    if (this.attachId) this.terminals.unroute(this.attachId);
    this.attachId = undefined;
    this.writeEmitter.fire(`\r\n\x1b[2m[Projects Chat] ${reason}. Press Enter to attach again.\x1b[0m\r\n`);
  }

  handleInput(data: string): void {
    if (this.ended) {
      if (data.includes('\r')) void this.attach(true);
      return;
    }
    if (this.attachId) this.hub.notify(Input, { attachId: this.attachId, data });
  }

  setDimensions(dimensions: vscode.TerminalDimensions): void {
    this.dimensions = dimensions;
    if (this.attachId) this.hub.notify(AttachResize, { attachId: this.attachId, cols: dimensions.columns, rows: dimensions.rows });
  }

  close(): void {
    if (this.attachId) {
      this.hub.notify(Detach, { attachId: this.attachId });
      this.terminals.unroute(this.attachId);
    }
    this.attachId = undefined;
    this.terminals.closed(this);
  }

  dispose(): void {
    this.writeEmitter.dispose();
    this.closeEmitter.dispose();
  }
}

export class Terminals implements vscode.Disposable {
  private readonly byAttach = new Map<string, CiPseudoterminal>();
  private readonly open = new Map<vscode.Terminal, CiPseudoterminal>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly hub: HubConnection,
    private readonly state: vscode.Memento,
  ) {
    this.disposables.push(
      hub.on(Output, ({ attachId, data }) => this.byAttach.get(attachId)?.output(data)),
      hub.on(AttachEnded, ({ attachId, reason }) => this.byAttach.get(attachId)?.endedBy(reason)),
      hub.onDidConnect(() => void this.reconnected()),
      vscode.window.onDidCloseTerminal((t) => {
        const pty = this.open.get(t);
        if (!pty) return;
        this.open.delete(t);
        pty.dispose();
        void this.remember();
      }),
      vscode.window.onDidOpenTerminal((t) => this.adopt(t)),
      vscode.window.registerTerminalProfileProvider('projectsChat.agent', {
        provideTerminalProfile: async () => {
          const ci = await this.pick('Attach a terminal to which CI?');
          return ci ? new vscode.TerminalProfile(this.options(ci.name)) : undefined;
        },
      }),
    );
  }

  route(attachId: string, pty: CiPseudoterminal): void {
    this.byAttach.set(attachId, pty);
  }

  unroute(attachId: string): void {
    this.byAttach.delete(attachId);
  }

  closed(pty: CiPseudoterminal): void {
    for (const [t, p] of this.open) if (p === pty) this.open.delete(t);
    void this.remember();
  }

  private options(ci: string): vscode.ExtensionTerminalOptions {
    const pty = new CiPseudoterminal(ci, this.hub, this);
    return { name: `CI: ${ci}`, pty, iconPath: new vscode.ThemeIcon('hubot') };
  }

  /** Opens (or shows) a terminal attached to `ci`. */
  show(ci: string, preserveFocus = false): vscode.Terminal {
    for (const [t, p] of this.open) {
      if (p.ci === ci) {
        t.show(preserveFocus);
        return t;
      }
    }
    const options = this.options(ci);
    const terminal = vscode.window.createTerminal(options);
    if (options.pty instanceof CiPseudoterminal) this.open.set(terminal, options.pty);
    terminal.show(preserveFocus);
    void this.remember();
    return terminal;
  }

  /** Terminals opened from the profile are adopted when VS Code reports them. */
  adopt(terminal: vscode.Terminal): void {
    const options = terminal.creationOptions;
    if ('pty' in options && options.pty instanceof CiPseudoterminal && !this.open.has(terminal)) {
      this.open.set(terminal, options.pty);
      void this.remember();
    }
  }

  private async remember(): Promise<void> {
    await this.state.update(OPEN_TERMINALS, [...new Set([...this.open.values()].map((p) => p.ci))]);
  }

  private revived = false;

  /** After a (re)connect: re-attach open terminals, and on the first one bring back those of before a reload. */
  private async reconnected(): Promise<void> {
    for (const pty of new Set(this.open.values())) void pty.attach(true);
    if (this.revived) return;
    this.revived = true;
    const wanted = this.state.get<unknown>(OPEN_TERMINALS);
    if (!Array.isArray(wanted) || wanted.length === 0) return;
    const { cis } = await this.hub.call(List, {}).catch(() => ({ cis: [] as CiInfo[] }));
    for (const name of wanted) {
      if (typeof name !== 'string') continue;
      const ci = cis.find((c) => c.name === name);
      if (ci && (ci.state === 'running' || ci.state === 'starting' || ci.state === 'backoff')) this.show(name, true);
    }
  }

  /** Asks for a CI (running ones first). */
  async pick(title: string, filter: (ci: CiInfo) => boolean = () => true): Promise<CiInfo | undefined> {
    const { cis } = await this.hub.call(List, {});
    const items = cis
      .filter(filter)
      .sort((a, b) => Number(b.state === 'running') - Number(a.state === 'running') || a.name.localeCompare(b.name))
      .map((ci) => ({ label: ci.name, description: `${ci.kind} · ${ci.state}`, detail: ci.command?.join(' ') ?? ci.socket, ci }));
    if (items.length === 0) {
      void vscode.window.showInformationMessage('No CIs yet. Start one with "Projects Chat: Spawn CI…" or /spawn in the chat.');
      return undefined;
    }
    return (await vscode.window.showQuickPick(items, { title, matchOnDescription: true, matchOnDetail: true }))?.ci;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
