/** Projects Chat extension entry point. */
import * as vscode from 'vscode';

export function activate(context: vscode.ExtensionContext): void {
  const channel = vscode.window.createOutputChannel('Projects Chat');
  context.subscriptions.push(channel);
  channel.appendLine('Projects Chat activated');
}

export function deactivate(): void {
  // Nothing to release yet.
}
