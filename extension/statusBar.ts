/** The status bar item: hub state, running CIs, unread messages; clicking opens the chat. */
import * as vscode from 'vscode';
import type { CiInfo } from '../server/protocol';
import type { HubState } from './webviewProtocol';

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('projectsChat.status', vscode.StatusBarAlignment.Left, 50);

  constructor() {
    this.item.name = 'Projects Chat';
    this.item.command = 'projectsChat.openChat';
    this.update('connecting', undefined, []);
    this.item.show();
  }

  update(state: HubState, message: string | undefined, cis: readonly CiInfo[]): void {
    const running = cis.filter((c) => c.state === 'running').length;
    const unread = cis.reduce((n, c) => n + (c.queue?.depth ?? 0) + (c.queue?.held ?? 0), 0);
    switch (state) {
      case 'connected':
        this.item.text = `$(hubot) ${running}${unread ? ` $(mail) ${unread}` : ''}`;
        this.item.tooltip = `Projects Chat: ${running} CI(s) running, ${unread} message(s) waiting. Click to open the chat.`;
        this.item.backgroundColor = undefined;
        break;
      case 'connecting':
        this.item.text = '$(loading~spin) CIs';
        this.item.tooltip = 'Projects Chat: connecting to the hub…';
        this.item.backgroundColor = undefined;
        break;
      case 'restarting':
        this.item.text = '$(sync~spin) hub restarting';
        this.item.tooltip = `Projects Chat: the hub is restarting… ${message ?? ''}`;
        this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
        break;
      case 'down':
        this.item.text = '$(warning) hub down';
        this.item.tooltip = `Projects Chat: the hub is not reachable (${message ?? 'unknown reason'}); retrying. "Projects Chat: Show Logs" has details.`;
        this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
        break;
    }
  }

  dispose(): void {
    this.item.dispose();
  }
}
