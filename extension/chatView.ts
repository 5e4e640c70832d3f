/**
 * The Projects Chat sidebar view: a webview whose UI lives in media/chat (bundled to dist/webview.js).
 * Strict CSP with a nonce; resources only from media/ and dist/; every message from the webview is
 * validated with zod before anything acts on it.
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { WebviewToHost, type HostToWebview } from './webviewProtocol';
import { describeZodError } from '../server/protocol';

export class ChatViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  static readonly viewType = 'projectsChat.chat';
  private view: vscode.WebviewView | undefined;
  private ready = false;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly readyEmitter = new vscode.EventEmitter<void>();
  /** The webview said `ready`: send it everything. */
  readonly onDidBecomeReady = this.readyEmitter.event;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly handle: (message: WebviewToHost) => void,
    private readonly log: (line: string) => void,
  ) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    this.ready = false;
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    const dist = vscode.Uri.joinPath(this.extensionUri, 'dist');
    view.webview.options = { enableScripts: true, localResourceRoots: [media, dist] };
    view.webview.html = this.html(view.webview, media, dist);
    this.disposables.push(
      view.webview.onDidReceiveMessage((raw: unknown) => {
        const parsed = WebviewToHost.safeParse(raw);
        if (!parsed.success) {
          this.log(`ignored an invalid message from the chat view: ${describeZodError(parsed.error)}`);
          return;
        }
        if (parsed.data.type === 'ready') {
          this.ready = true;
          this.readyEmitter.fire();
          return;
        }
        this.handle(parsed.data);
      }),
      view.onDidDispose(() => {
        this.view = undefined;
        this.ready = false;
      }),
    );
  }

  /** Sends a message to the webview (typed here, validated there). Dropped until `ready`. */
  post(message: HostToWebview): void {
    if (!this.view || !this.ready) return;
    void this.view.webview.postMessage(message);
  }

  async reveal(): Promise<void> {
    await vscode.commands.executeCommand(`${ChatViewProvider.viewType}.focus`);
  }

  private html(webview: vscode.Webview, media: vscode.Uri, dist: vscode.Uri): string {
    const nonce = randomBytes(16).toString('base64');
    const src = (base: vscode.Uri, ...parts: string[]) => webview.asWebviewUri(vscode.Uri.joinPath(base, ...parts)).toString();
    const csp = [
      "default-src 'none'",
      `style-src ${webview.cspSource} 'nonce-${nonce}'`,
      `font-src ${webview.cspSource}`,
      `img-src ${webview.cspSource} data:`,
      `script-src 'nonce-${nonce}'`,
    ].join('; ');
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${src(dist, 'codicons', 'codicon.css')}" nonce="${nonce}">
<link rel="stylesheet" href="${src(media, 'chat', 'chat.css')}" nonce="${nonce}">
<title>Projects Chat</title>
</head>
<body>
<div id="app"></div>
<script nonce="${nonce}" src="${src(dist, 'webview.js')}"></script>
</body>
</html>`;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
    this.readyEmitter.dispose();
  }
}
