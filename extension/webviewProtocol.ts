/**
 * The chat webview's protocol: what the extension host sends the webview and what the webview sends back,
 * as two discriminated unions validated with zod on both sides (the webview is a trust boundary: it
 * renders agent output). The webview says `ready` first; the host answers with `init`.
 *
 * No `vscode` import here: the webview bundle (media/chat) imports this file too. `ChatEntry` is the hub's
 * (server/protocol.ts, which imports nothing but zod).
 */
import { z } from 'zod';
import { ChatEntry } from '../server/protocol';

export { ChatEntry };

/** A project in the selector: every workspace folder of every window connected to the hub. */
export const ProjectView = z.object({
  path: z.string(),
  name: z.string(),
  /** Open in this window (others come from other windows). */
  here: z.boolean(),
  /** Windows that have it open. */
  windows: z.number().int(),
});
export type ProjectView = z.infer<typeof ProjectView>;

/** A CI of the selected project. */
export const CiView = z.object({
  name: z.string(),
  kind: z.enum(['process', 'model', 'external']),
  state: z.string(),
  /** Short description: the command, or provider/model. */
  detail: z.string(),
  /** Messages waiting in its inbox. */
  unread: z.number().int(),
  /** Messages held for approval. */
  held: z.number().int(),
  /** The project's default CI (project-<slug>-ai): what plain messages go to. */
  isDefault: z.boolean(),
  /** It has a terminal to open (process and model CIs). */
  hasTerminal: z.boolean(),
});
export type CiView = z.infer<typeof CiView>;

export const HubState = z.enum(['connecting', 'connected', 'restarting', 'down']);
export type HubState = z.infer<typeof HubState>;

/** A way to create a project's default CI when none is configured. */
export const DefaultCiOption = z.object({ id: z.string(), label: z.string(), detail: z.string() });

export const HostToWebview = z.discriminatedUnion('type', [
  /** Everything, after `ready` (and after a reconnect). */
  z.object({
    type: z.literal('init'),
    projects: z.array(ProjectView),
    selected: z.string().optional(),
    cis: z.array(CiView),
    entries: z.array(ChatEntry),
    hub: HubState,
  }),
  z.object({ type: z.literal('projects'), projects: z.array(ProjectView), selected: z.string().optional() }),
  /** The selected project's CIs changed. */
  z.object({ type: z.literal('cis'), project: z.string(), cis: z.array(CiView) }),
  /** The selected project's whole history (after selecting it). */
  z.object({ type: z.literal('history'), project: z.string(), entries: z.array(ChatEntry) }),
  /** A new or updated entry of a project's chat. */
  z.object({ type: z.literal('entry'), project: z.string(), entry: ChatEntry }),
  z.object({ type: z.literal('hub'), state: HubState, message: z.string().optional() }),
  /** No default CI is configured for this project: offer these choices instead of failing. */
  z.object({ type: z.literal('chooseDefaultCi'), project: z.string(), options: z.array(DefaultCiOption) }),
]);
export type HostToWebview = z.infer<typeof HostToWebview>;

export const WebviewToHost = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready') }),
  z.object({ type: z.literal('selectProject'), project: z.string() }),
  /** What the user typed: a message (`@name …` addresses another CI) or a slash command. */
  z.object({ type: z.literal('send'), project: z.string(), text: z.string().max(1_000_000) }),
  z.object({ type: z.literal('openTerminal'), ci: z.string() }),
  /** Stop a streaming reply. */
  z.object({ type: z.literal('stop'), ci: z.string() }),
  z.object({ type: z.literal('approve'), ci: z.string(), ids: z.array(z.string()).optional() }),
  z.object({ type: z.literal('refuse'), ci: z.string(), ids: z.array(z.string()).optional() }),
  z.object({ type: z.literal('chooseDefaultCi'), project: z.string(), option: z.string() }),
  z.object({ type: z.literal('openSettings') }),
]);
export type WebviewToHost = z.infer<typeof WebviewToHost>;
