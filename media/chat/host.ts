/**
 * The webview's side of the channel to the extension host: typed, validated posting, and the state
 * VS Code keeps for the view while it is hidden (the draft, the scroll position, the sent messages).
 */
import { z } from 'zod';
import { WebviewToHost } from '../../extension/webviewProtocol';

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();

/** Sends a message to the host, validated against the protocol (a bug here throws, loudly). */
export function post(message: WebviewToHost): void {
  vscode.postMessage(WebviewToHost.parse(message));
}

const ViewState = z.object({
  draft: z.string().catch(''),
  sent: z.array(z.string()).catch([]),
  /** Where the message list was scrolled to; undefined (or atBottom) means follow the latest. */
  scrollTop: z.number().optional().catch(undefined),
  atBottom: z.boolean().catch(true),
});
export type ViewState = z.infer<typeof ViewState>;

const EMPTY: ViewState = { draft: '', sent: [], atBottom: true };

let current: ViewState = loadState();

function loadState(): ViewState {
  const parsed = ViewState.safeParse(vscode.getState());
  return parsed.success ? parsed.data : { ...EMPTY };
}

/** The state saved before the view was last hidden (or an empty one). */
export function savedState(): Readonly<ViewState> {
  return current;
}

/** Saves part of the view's state; the rest is kept. */
export function saveState(patch: Partial<ViewState>): void {
  current = { ...current, ...patch };
  vscode.setState(current);
}
