/**
 * Projects Chat: the VS Code side. Thin by design — it connects to the hub, registers this window's
 * folders, and renders: the chat view, agent terminals, commands and the status bar. All state lives in
 * the hub, shared by every window.
 */
import * as vscode from 'vscode';
import { Event, RegisterProjects, SetConfig, Watch } from '../server/protocol';
import { errorMessage } from '../server/errors';
import { HubConnection } from './hubConnection';
import { ChatViewProvider } from './chatView';
import { ChatController } from './chatController';
import { Terminals } from './terminals';
import { StatusBar } from './statusBar';
import { registerCommands } from './commands';
import { hubConfigOf, readSettings, type Settings } from './settings';
import { Models } from './models';

/** This window's workspace folders that are on this machine's disk (`file:`), not remote or virtual. */
function localWorkspaceFolders(): vscode.WorkspaceFolder[] {
  return (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file');
}

/** The paths of those folders: the projects this window has open. */
function localFolders(): string[] {
  return localWorkspaceFolders().map((f) => f.uri.fsPath);
}

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('Projects Chat', { log: true });
  const log = (line: string) => output.info(line);
  let settings: Settings = readSettings((m) => {
    output.warn(m);
    void vscode.window.showWarningMessage(m, 'Open Settings').then((a) => a && vscode.commands.executeCommand('workbench.action.openSettings', 'projectsChat'));
  });

  const hub = new HubConnection(context.extensionPath, output, log);
  const terminals = new Terminals(hub, context.workspaceState);
  let controller: ChatController | undefined;
  const view = new ChatViewProvider(context.extensionUri, (m) => controller?.handle(m), (line) => output.warn(line));
  const models = new Models(hub, context.secrets);
  controller = new ChatController(hub, view, terminals, context.workspaceState, () => settings, localFolders, models);
  const chat = controller;
  const statusBar = new StatusBar();
  const refreshStatus = () => statusBar.update(hub.state, hub.message, chat.allCis);

  const register = async () => {
    const folders = localWorkspaceFolders().map((f) => ({ path: f.uri.fsPath, name: f.name }));
    await hub.call(RegisterProjects, { window: `${vscode.env.appName} ${vscode.workspace.name ?? '(no folder)'} ${vscode.env.sessionId.slice(0, 8)}`, folders });
  };
  const pushSettings = () => hub.call(SetConfig, hubConfigOf(settings));

  context.subscriptions.push(
    output,
    hub,
    terminals,
    view,
    chat,
    statusBar,
    vscode.window.registerWebviewViewProvider(ChatViewProvider.viewType, view, { webviewOptions: { retainContextWhenHidden: true } }),
    hub.onDidChangeState(refreshStatus),
    chat.onDidChange(refreshStatus),
    // Connection lifetime: on every (re)connect, subscribe and register this window again.
    hub.onDidConnect(async () => {
      try {
        await hub.call(Watch, {});
        await register();
        await pushSettings();
        await models.pushKeys();
      } catch (error) {
        output.error(`setting up the hub connection failed: ${errorMessage(error)}`);
      }
    }),
    // The one listener of hub events: each is validated once, then handed to the chat.
    hub.on(Event, (event) => {
      chat.handleEvent(event);
      if (event.type === 'log') output.appendLine(`[hub] ${event.line}`);
      else if (event.type === 'resync') output.warn(`this window fell behind the hub's updates (${event.dropped} skipped); refreshed`);
      else if (event.type === 'alert') {
        void vscode.window.showWarningMessage(`Projects Chat: ${event.message}`, 'Show Logs').then((choice) => {
          if (choice) void vscode.commands.executeCommand('projectsChat.showLogs');
        });
      }
    }),
    vscode.workspace.onDidChangeWorkspaceFolders(() => void register().catch(() => undefined)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration('projectsChat')) return;
      settings = readSettings((m) => output.warn(m));
      void pushSettings().catch(() => undefined);
    }),
  );
  registerCommands(context, hub, chat, view, terminals, output, models);
  void hub.start();
}

export function deactivate(): void {
  // Everything is in context.subscriptions; the hub and its CIs keep running for other windows.
}
