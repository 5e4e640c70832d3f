/**
 * The command palette: every command answers even while the hub is away (it says the hub is restarting
 * instead of failing silently).
 */
import * as vscode from 'vscode';
import { ciNameFrom, Kill, Logs, nameProblem, Restart, Send, Spawn, Status, StopHub } from '../server/protocol';
import { processEnv } from '../server/env';
import { errorMessage } from '../server/errors';
import { formatStatus } from '../client/format';
import { HubUnavailable, type HubConnection } from './hubConnection';
import type { ChatController } from './chatController';
import type { ChatViewProvider } from './chatView';
import type { Terminals } from './terminals';
import { splitWords } from './slashCommands';
import type { Models } from './models';

/** Scheme of the read-only status document. */
const STATUS_SCHEME = 'projects-chat';

export function registerCommands(
  context: vscode.ExtensionContext,
  hub: HubConnection,
  chat: ChatController,
  view: ChatViewProvider,
  terminals: Terminals,
  output: vscode.LogOutputChannel,
  models: Models,
): void {
  let statusText = '';
  const statusChanged = new vscode.EventEmitter<vscode.Uri>();
  const statusUri = vscode.Uri.parse(`${STATUS_SCHEME}:Hub%20Status`);

  const command = (id: string, run: (...args: unknown[]) => Promise<unknown> | unknown) =>
    vscode.commands.registerCommand(id, async (...args: unknown[]) => {
      try {
        await run(...args);
      } catch (error) {
        const message = errorMessage(error);
        output.error(`${id}: ${message}`);
        if (error instanceof HubUnavailable) void vscode.window.showWarningMessage(`Projects Chat: ${message}`);
        else void vscode.window.showErrorMessage(`Projects Chat: ${message}`, 'Show Logs').then((a) => a && output.show());
      }
    });

  context.subscriptions.push(
    statusChanged,
    vscode.workspace.registerTextDocumentContentProvider(STATUS_SCHEME, { onDidChange: statusChanged.event, provideTextDocumentContent: () => statusText }),

    command('projectsChat.openChat', () => view.reveal()),

    command('projectsChat.spawnCi', async () => {
      const name = await vscode.window.showInputBox({
        title: 'Spawn CI (1/2): name',
        prompt: 'Lowercase letters, digits, ".", "_", "-"',
        validateInput: nameProblem,
      });
      if (!name) return;
      const line = await vscode.window.showInputBox({ title: `Spawn CI (2/2): command for ${name}`, prompt: 'e.g. claude, aider, bash', value: vscode.workspace.getConfiguration('projectsChat').get('defaultCi') || process.env.SHELL || 'bash' });
      if (!line) return;
      const words = splitWords(line);
      if (!Array.isArray(words) || words.length === 0) throw new Error(Array.isArray(words) ? 'give a command' : words.error);
      const project = chat.selectedProject;
      const ci = await hub.call(Spawn, { kind: 'process', name, command: words, cwd: project, project, env: processEnv() });
      if (ci.state === 'failed') throw new Error(`${name} failed: ${ci.reason ?? 'unknown reason'}`);
      void vscode.window.showInformationMessage(`Started ${name} (pid ${ci.pid}).`, 'Open Terminal').then((a) => a && terminals.show(name));
    }),

    command('projectsChat.spawnModelCi', async () => {
      const picked = await models.pick();
      if (!picked) return;
      const name = await vscode.window.showInputBox({
        title: 'Name of the model CI',
        value: ciNameFrom(picked.model, 'model', 63),
        validateInput: nameProblem,
      });
      if (!name) return;
      const ci = await hub.call(Spawn, { kind: 'model', name, ...picked, project: chat.selectedProject });
      void vscode.window.showInformationMessage(`Model CI ${ci.name} is ready (${picked.provider} ${picked.model}). Message it in the chat with @${ci.name}.`);
    }),

    command('projectsChat.setApiKey', () => models.setKey()),

    command('projectsChat.killCi', async () => {
      const ci = await terminals.pick('Stop which CI?', (c) => c.kind !== 'external' && (c.state === 'running' || c.state === 'backoff' || c.state === 'starting'));
      if (ci) await hub.call(Kill, { name: ci.name });
    }),

    command('projectsChat.restartCi', async () => {
      const ci = await terminals.pick('Restart which CI?', (c) => c.kind === 'process' && c.host !== 'client');
      if (!ci) return;
      const info = await hub.call(Restart, { name: ci.name });
      if (info.state === 'failed') throw new Error(`${ci.name} failed: ${info.reason ?? 'unknown reason'}`);
    }),

    command('projectsChat.attachTerminal', async (name?: unknown) => {
      if (typeof name === 'string') return terminals.show(name);
      const ci = await terminals.pick('Attach a terminal to which CI?', (c) => c.kind !== 'external');
      if (ci) terminals.show(ci.name);
    }),

    command('projectsChat.sendMessage', async () => {
      const ci = await terminals.pick('Send a message to which CI?');
      if (!ci) return;
      const text = await vscode.window.showInputBox({ title: `Message to ${ci.name}`, prompt: 'Delivered through the bus, by its policy' });
      if (!text) return;
      const result = await hub.call(Send, { message: { from: 'you', to: ci.name, content: text } });
      void vscode.window.showInformationMessage(`Sent to ${result.recipients.join(', ')}.`);
    }),

    command('projectsChat.showStatus', async () => {
      statusText = formatStatus(await hub.call(Status, {}));
      statusChanged.fire(statusUri);
      const doc = await vscode.workspace.openTextDocument(statusUri);
      await vscode.window.showTextDocument(doc, { preview: true });
    }),

    command('projectsChat.exportTranscript', async () => {
      const ci = await terminals.pick('Export the transcript of which CI?', (c) => c.kind !== 'external');
      if (!ci) return;
      const format = await vscode.window.showQuickPick(
        [
          { label: 'md', description: 'Markdown: the terminal as text, what was typed, the messages' },
          { label: 'jsonl', description: 'JSON lines: the same, for tools' },
          { label: 'cast', description: 'asciicast v2: play it with `asciinema play`' },
        ],
        { title: 'Format' },
      );
      if (format?.label === 'md' || format?.label === 'jsonl' || format?.label === 'cast') await chat.export(chat.selectedProject, ci.name, format.label);
    }),

    command('projectsChat.restartHub', async () => {
      const answer = await vscode.window.showWarningMessage(
        'Restart the Projects Chat hub? Its CIs are stopped and started again (in every window).',
        { modal: true },
        'Restart Hub',
      );
      if (answer !== 'Restart Hub') return;
      await hub.restartHub(() => hub.call(StopHub, {}));
    }),

    command('projectsChat.showLogs', async () => {
      try {
        const { lines } = await hub.call(Logs, {});
        output.info(`--- the hub's recent log (${lines.length} lines) ---`);
        for (const line of lines) output.appendLine(`  ${line}`);
      } catch (error) {
        output.warn(`hub log unavailable: ${errorMessage(error)}`);
      }
      output.show();
    }),
  );
}
