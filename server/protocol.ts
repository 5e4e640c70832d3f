/**
 * The hub's JSON-RPC protocol: every request and notification that crosses `hub.sock`, declared once,
 * each with the zod schema of its parameters and result. Imported by the hub (`server/`), the `cihub`
 * CLI and the VS Code extension; nothing else from `server/` is imported outside it.
 *
 * Transport: `vscode-jsonrpc` (LSP base protocol framing) over the Unix socket `hub.sock`. The VS Code
 * extension speaks through `vscode-languageclient`, so the hub also answers the LSP lifecycle
 * (`initialize`, `shutdown`, `exit`) per connection; those end a connection, never the hub.
 *
 * Every handler validates its parameters with the schema here; a bad request gets a `ResponseError`
 * whose code is one of {@link HubErrorCode} and whose message says what to do.
 *
 * This file imports nothing but zod and touches no Node globals, so the chat webview's bundle shares its
 * schemas. Where the hub's sockets and state live is in server/paths.ts.
 */
import { z } from 'zod';

// ---------------------------------------------------------------------------------------------------
// Errors

/** `ResponseError` codes the hub uses (the JSON-RPC "server error" range). */
export const HubErrorCode = {
  /** A parameter failed validation; the message names the field and what is allowed. */
  InvalidParams: -32602,
  /** No CI of that name. */
  NotFound: -32001,
  /** A CI of that name exists already. */
  AlreadyExists: -32002,
  /** The operation does not apply to the CI in its current state or kind. */
  InvalidState: -32003,
  /** The hub is shutting down or restarting; try again shortly. */
  ShuttingDown: -32004,
  /** The operating system refused (spawn, file, socket); the message carries its reason. */
  SystemError: -32005,
  /** A model provider failed; the message says what to do. */
  ProviderError: -32006,
  /** A limit was reached (a full mailbox, a full disk); the message says which and what to do. */
  LimitReached: -32007,
} as const;
export type HubErrorCode = (typeof HubErrorCode)[keyof typeof HubErrorCode];

// ---------------------------------------------------------------------------------------------------
// Names and shared shapes

/** A CI name, unanchored (to build patterns that contain one). */
export const CI_NAME_SOURCE = '[a-z0-9][a-z0-9._-]{0,62}';
/** A CI name: lowercase letters, digits, `.`, `_`, `-`; starts with a letter or digit; at most 63. */
export const CI_NAME_PATTERN = new RegExp(`^${CI_NAME_SOURCE}$`);

export const CiName = z.string().superRefine((value, ctx) => {
  const problem = nameProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** Why `name` is not a valid CI name (see {@link describeBadName}), or undefined when it is one. */
export function nameProblem(name: string): string | undefined {
  return CI_NAME_PATTERN.test(name) ? undefined : describeBadName(name);
}

/**
 * A valid CI name made from free text (a command, a model): lowercased, each run of other characters
 * as `-`, leading characters a name cannot start with dropped, at most `maxLength` (≤ 63) characters;
 * `fallback` (itself a valid name) when nothing is left.
 */
export function ciNameFrom(text: string, fallback: string, maxLength: number): string {
  return text.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, maxLength) || fallback;
}

/** Explains why `name` is not a valid CI name, in words a user can act on. */
function describeBadName(name: string): string {
  const shown = JSON.stringify(name);
  if (name.length === 0) return 'a CI name cannot be empty';
  if (name.length > 63) return `CI name ${shown.slice(0, 40)}…" is ${name.length} characters; the limit is 63`;
  if (/[A-Z]/.test(name)) return `CI name ${shown} has uppercase letters; use lowercase (${JSON.stringify(name.toLowerCase())})`;
  if (/[/\\]/.test(name)) return `CI name ${shown} contains a path separator; use only a-z, 0-9, ".", "_", "-"`;
  if (!/^[a-z0-9]/.test(name)) return `CI name ${shown} must start with a letter or digit`;
  return `CI name ${shown} may contain only a-z, 0-9, ".", "_" and "-"`;
}

export const CiKind = z.enum(['process', 'model', 'external']);
export type CiKind = z.infer<typeof CiKind>;

/**
 * Lifecycle of a CI. `starting` → `running` → `exited` (by itself) | `stopped` (killed by a user) |
 * `failed` (could not start: missing command or cwd, spawn error). `backoff`: waiting to restart.
 */
export const CiState = z.enum(['starting', 'running', 'exited', 'failed', 'stopped', 'backoff']);
export type CiState = z.infer<typeof CiState>;

/** What happens when a process CI exits by itself. */
export const RestartPolicy = z.enum(['never', 'on-failure', 'always']);
export type RestartPolicy = z.infer<typeof RestartPolicy>;

/** How bus messages reach a process CI: pulled (`inbox`), typed into its PTY (`inject`), or approved first (`hold`). */
export const DeliveryPolicy = z.enum(['inbox', 'inject', 'hold']);
export type DeliveryPolicy = z.infer<typeof DeliveryPolicy>;

/** The providers a model CI can use. */
export const ProviderKind = z.enum(['ollama', 'openai', 'anthropic']);
export type ProviderKind = z.infer<typeof ProviderKind>;

/** Where each provider is when no base URL is given. */
export const DEFAULT_BASE_URL: Record<ProviderKind, string> = {
  ollama: 'http://127.0.0.1:11434',
  openai: 'https://api.openai.com/v1',
  anthropic: 'https://api.anthropic.com',
};

/** The environment variable each provider's key is read from (by the CLI, and named in errors). */
export const KEY_ENV: Record<ProviderKind, string | undefined> = {
  ollama: undefined,
  openai: 'OPENAI_API_KEY',
  anthropic: 'ANTHROPIC_API_KEY',
};

/** Terminal size of a CI when its spawner gives none (nobody has attached to it yet). */
export const DEFAULT_COLS = 120;
/** See {@link DEFAULT_COLS}. */
export const DEFAULT_ROWS = 32;

const TerminalSize = {
  cols: z.number().int().min(2).max(1000),
  rows: z.number().int().min(1).max(500),
};

const Env = z.record(z.string(), z.string());

/** An absolute path (the hub does not know the client's working directory). */
const AbsolutePath = z.string().refine((p) => p.startsWith('/'), { message: 'must be an absolute path' });

/** What the hub reports about one CI. */
export const CiInfo = z.object({
  name: z.string(),
  kind: CiKind,
  state: CiState,
  /** Absolute path of the project folder this CI belongs to, if any. */
  project: z.string().optional(),
  /** For process CIs: the command line (argv). */
  command: z.array(z.string()).optional(),
  cwd: z.string().optional(),
  /** `hub`: the hub runs the PTY; `client`: a `cihub wrap` client runs it and streams it here. */
  host: z.enum(['hub', 'client']).optional(),
  pid: z.number().int().optional(),
  /** Process CIs: what happens when it exits by itself. */
  restart: RestartPolicy.optional(),
  /** Process CIs: how bus messages reach it. */
  policy: DeliveryPolicy.optional(),
  /** Why the CI is `failed`, or how it last ended. */
  reason: z.string().optional(),
  exitCode: z.number().int().optional(),
  signal: z.string().optional(),
  /** ms since epoch */
  createdAt: z.number(),
  startedAt: z.number().optional(),
  endedAt: z.number().optional(),
  lastOutputAt: z.number().optional(),
  /** Times the hub restarted it under its restart policy. */
  restarts: z.number().int().optional(),
  /** Id of the current (or last) capture session. */
  session: z.string().optional(),
  /** Bytes of output and input captured across all sessions. */
  bytesCaptured: z.number().optional(),
  cols: z.number().int().optional(),
  rows: z.number().int().optional(),
  /** Clients attached to its terminal now. */
  attached: z.number().int().optional(),
  /** Its bus queue (process, model and external CIs alike). */
  queue: z.lazy(() => QueueStats).optional(),
  /** External CIs: the socket the hub delivers to. */
  socket: z.string().optional(),
  /** Tekton-compatible port, when `ports.enabled` and the CI belongs to a project. */
  port: z.number().int().optional(),
  /** Where its messages go instead (`cihub forward`). */
  forwardedTo: z.string().optional(),
  /** Model CIs: the provider and its health. */
  model: z
    .object({
      provider: ProviderKind,
      model: z.string(),
      baseUrl: z.string(),
      /** Time to the first token of the last answer, ms. */
      lastLatencyMs: z.number().optional(),
      lastError: z.string().optional(),
      lastErrorAt: z.number().optional(),
      /** Answering now. */
      busy: z.boolean(),
      /** Turns in its conversation. */
      turns: z.number().int(),
    })
    .optional(),
});
export type CiInfo = z.infer<typeof CiInfo>;

/** Resource use of a CI's process tree, read from /proc. */
export const ProcessStats = z.object({
  /** Processes in the tree (the CI and its descendants). */
  processes: z.number().int(),
  /** Total CPU time of the tree, seconds. */
  cpuSeconds: z.number(),
  /** CPU use since the previous status call, percent of one core (absent on the first call). */
  cpuPercent: z.number().optional(),
  /** Resident memory of the tree, bytes. */
  rssBytes: z.number(),
});
export type ProcessStats = z.infer<typeof ProcessStats>;

export const HubInfo = z.object({
  pid: z.number().int(),
  version: z.string(),
  startedAt: z.number(),
  uptimeMs: z.number(),
  socket: z.string(),
  busDir: z.string(),
  runtimeDir: z.string(),
  stateDir: z.string(),
  clients: z.number().int(),
  rssBytes: z.number(),
  /** Free space on the state dir's file system, bytes (when it could be read). */
  diskFreeBytes: z.number().optional(),
  /** Bytes of captures kept on disk, across CIs (as of the last retention pass). */
  captureBytes: z.number().optional(),
});
export type HubInfo = z.infer<typeof HubInfo>;

// ---------------------------------------------------------------------------------------------------
// Declaring requests and notifications

/**
 * A request: its method and the schemas both sides validate with (the hub its params, clients its
 * result). Both ends parse, so the JSON-RPC layer carries plain values.
 */
export interface RequestDef<P extends z.ZodType, R extends z.ZodType> {
  readonly method: string;
  readonly params: P;
  readonly result: R;
}

/** A notification: its method and the schema the receiver validates with. */
export interface NotificationDef<P extends z.ZodType> {
  readonly method: string;
  readonly params: P;
}

function request<P extends z.ZodType, R extends z.ZodType>(method: string, params: P, result: R): RequestDef<P, R> {
  return { method, params, result };
}

function notification<P extends z.ZodType>(method: string, params: P): NotificationDef<P> {
  return { method, params };
}

const Empty = z.object({}).optional();

// ---------------------------------------------------------------------------------------------------
// Hub

/** Hub identity, its places, and every CI with the resource use of its process tree. */
export const Status = request(
  'cihub/status',
  Empty,
  z.object({ hub: HubInfo, cis: z.array(CiInfo.extend({ stats: ProcessStats.optional() })) }),
);

/**
 * Shuts the hub down cleanly: CIs get SIGHUP, then SIGTERM, then SIGKILL after a bounded wait; sockets
 * and the lock are removed. The registry is kept, so the next hub starts the CIs that should run.
 * Answers before the hub exits.
 */
export const StopHub = request('cihub/stopHub', Empty, z.null());

// ---------------------------------------------------------------------------------------------------
// CIs

/** Every CI the hub knows. */
export const List = request('cihub/list', Empty, z.object({ cis: z.array(CiInfo) }));

/** How a model CI asks its provider (persisted; never the API key). */
export const ModelSettings = z.object({
  provider: ProviderKind,
  model: z.string().min(1).max(200),
  /** The provider's base URL (default: Ollama 127.0.0.1:11434, api.openai.com/v1, api.anthropic.com). */
  baseUrl: z.string().url().optional(),
  temperature: z.number().min(0).max(2).optional(),
  maxTokens: z.number().int().min(1).max(1_000_000).optional(),
  /** Replaces the default system prompt (which names the CI and its project). */
  systemPrompt: z.string().max(100_000).optional(),
  /** History is trimmed to fit this many tokens (estimated), the system prompt always kept. */
  contextTokens: z.number().int().min(256).max(10_000_000).default(8192),
  /** No token for this long (ms) ends a request as timed out. */
  timeoutMs: z.number().int().min(100).max(3_600_000).default(120_000),
});
export type ModelSettings = z.infer<typeof ModelSettings>;

export const ModelSpawn = ModelSettings.extend({
  kind: z.literal('model'),
  name: CiName,
  project: AbsolutePath.optional(),
  /** Make it its project's default CI. Needs `project`. */
  defaultCi: z.boolean().optional(),
  /** The key to use (the CLI reads OPENAI_API_KEY / ANTHROPIC_API_KEY): kept in the hub's memory only. */
  apiKey: z.string().min(1).max(1000).optional(),
});

export const ProcessSpawn = z.object({
  kind: z.literal('process'),
  name: CiName,
  /** argv: the program and its arguments. The program is looked up on the CI's own `PATH`. */
  command: z.array(z.string()).min(1, 'give a command to run, e.g. -- bash'),
  cwd: AbsolutePath.optional(),
  /** The client's environment; the CI gets it plus `CIHUB_CI`, `CIHUB_SOCKET` and `cihub` on `PATH`. */
  env: Env.optional(),
  project: AbsolutePath.optional(),
  /** Make it its project's default CI (the one plain chat messages go to). Needs `project`. */
  defaultCi: z.boolean().optional(),
  restart: RestartPolicy.default('never'),
  policy: DeliveryPolicy.default('inbox'),
  ...TerminalSize,
});

/** Creates a CI and starts it. Fails with `AlreadyExists` for a taken name. */
export const Spawn = request(
  'cihub/spawn',
  z.discriminatedUnion('kind', [ProcessSpawn.partial({ cols: true, rows: true, restart: true, policy: true }), ModelSpawn]),
  CiInfo,
);
export type SpawnParams = z.input<typeof Spawn.params>;

const ByName = z.object({ name: CiName });

/** Stops a CI's process (SIGHUP, SIGTERM, SIGKILL, bounded) and keeps it, `stopped`, for restart/export. */
export const Kill = request('cihub/kill', ByName, CiInfo);

/** Starts a CI again (killing it first if it runs); a new capture session begins. */
export const Restart = request('cihub/restart', ByName, CiInfo);

/** Kills a CI if it runs and forgets it: registry entry and bus socket go; captures stay on disk. */
export const Remove = request('cihub/remove', ByName, z.null());

/** Sets a process CI's PTY size (the most recent attach also does this). */
export const Resize = request('cihub/resize', ByName.extend(TerminalSize), CiInfo);

// ---------------------------------------------------------------------------------------------------
// Attaching to a CI's terminal

/** Client-chosen id of one attachment, unique per connection. */
const AttachId = z.string().min(1).max(64);

/**
 * Attaches to a CI's terminal. The client picks `attachId` and listens for {@link Output} with it
 * *before* sending: the first notification (`kind: "replay"`) carries the serialized current screen
 * with bounded scrollback; `live` output follows. Unless `readOnly`, the PTY is resized to the
 * client's size (resize follows the most recent attach).
 */
export const Attach = request(
  'cihub/attach',
  z.object({ name: CiName, attachId: AttachId, readOnly: z.boolean().optional(), ...TerminalSize }),
  CiInfo,
);

/** Ends an attachment; the CI keeps running. */
export const Detach = notification('cihub/detach', z.object({ attachId: AttachId }));

/** Keys typed into an attached terminal; they go to the CI as they are. */
export const Input = notification('cihub/input', z.object({ attachId: AttachId, data: z.string() }));

/** The attached terminal changed size. */
export const AttachResize = notification('cihub/attachResize', z.object({ attachId: AttachId, ...TerminalSize }));

/**
 * Hub → client: terminal output for one attachment. `replay`: the screen at attach time (write it to a
 * fresh terminal); `live`: bytes as the CI printed them; `resync`: the client fell behind and its backlog
 * was dropped: a full reset (`ESC c`) plus the current screen, after which `live` continues.
 */
export const Output = notification(
  'cihub/output',
  z.object({ attachId: AttachId, kind: z.enum(['replay', 'live', 'resync']), data: z.string() }),
);

/** Hub → client: an attachment ended (the CI exited, was killed or removed, or the hub is stopping). */
export const AttachEnded = notification(
  'cihub/attachEnded',
  z.object({ attachId: AttachId, reason: z.string(), ci: CiInfo.optional() }),
);

// ---------------------------------------------------------------------------------------------------
// `cihub wrap`: a PTY run by a client, registered as a CI

/**
 * Registers a PTY that the client runs itself (`cihub wrap`) as a process CI with `host: "client"`.
 * A non-running wrapped CI of the same name is taken over with a new session. The client then streams
 * {@link WrapOutput} and ends with {@link WrapExit}; the hub sends {@link WrapInput} typed by attached
 * clients elsewhere. The CI is marked `exited` if the client's connection drops.
 */
export const Wrap = request(
  'cihub/wrap',
  z.object({
    name: CiName,
    command: z.array(z.string()).min(1),
    cwd: AbsolutePath,
    project: AbsolutePath.optional(),
    pid: z.number().int(),
    ...TerminalSize,
  }),
  CiInfo,
);

/** Client → hub: output of a wrapped PTY. */
export const WrapOutput = notification('cihub/wrapOutput', z.object({ name: CiName, data: z.string() }));

/** Client → hub: keys the local user typed into a wrapped PTY (captured as input). */
export const WrapTyped = notification('cihub/wrapTyped', z.object({ name: CiName, data: z.string() }));

/** Client → hub: the wrapped PTY's window changed size. */
export const WrapResize = notification('cihub/wrapResize', z.object({ name: CiName, ...TerminalSize }));

/** Client → hub: the wrapped command exited (after its output was drained). */
export const WrapExit = notification(
  'cihub/wrapExit',
  z.object({ name: CiName, exitCode: z.number().int().optional(), signal: z.string().optional() }),
);

/** Hub → client: keys typed by a client attached to a wrapped CI, to write into the local PTY. */
export const WrapInput = notification('cihub/wrapInput', z.object({ name: CiName, data: z.string() }));

/** Hub → client: signal the wrapped command's process tree (`cihub kill` on a wrapped CI). */
export const WrapSignal = notification(
  'cihub/wrapSignal',
  z.object({ name: CiName, signal: z.enum(['SIGHUP', 'SIGTERM', 'SIGKILL', 'SIGINT']) }),
);

// ---------------------------------------------------------------------------------------------------
// Captures and transcripts

export const ExportFormat = z.enum(['cast', 'jsonl', 'md']);
export type ExportFormat = z.infer<typeof ExportFormat>;

/** A capture session of one CI: one asciicast file. */
export const SessionInfo = z.object({
  id: z.string(),
  path: z.string(),
  bytes: z.number(),
  startedAt: z.number(),
});

/**
 * Exports a CI's capture. `cast`: the asciicast v2 file of one session (default: the latest);
 * `jsonl`/`md`: a transcript of the session's output rendered as text, input and events. The hub writes
 * the export to a 0600 file in its state dir and answers with its path (the caller copies or prints it).
 */
export const Export = request(
  'cihub/export',
  z.object({ name: CiName, format: ExportFormat.default('cast'), session: z.string().optional() }),
  z.object({ path: z.string(), format: ExportFormat, session: SessionInfo, sessions: z.array(SessionInfo) }),
);


// ---------------------------------------------------------------------------------------------------
// The message bus

/** Longest NDJSON line accepted on a bus socket (bytes, newline excluded). */
export const BUS_LINE_LIMIT_BYTES = 1024 * 1024;

/** A recipient: a CI or mailbox name, `*` (every CI), or `@project` (every CI of a project). */
export const BusAddress = z
  .string()
  .regex(new RegExp(`^(\\*|@?${CI_NAME_SOURCE})$`), 'must be a CI or mailbox name, "*" or "@project"');

/** Free-form sender label: a CI name, a person, `port:127.0.0.1:5555`… Printable, at most 128 characters. */
const Sender = z
  .string()
  .min(1)
  .max(128)
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'must not contain control characters');

/**
 * A message as senders write it (one JSON object per line on a bus socket, or `bus/send`). The hub stamps
 * `id` and `timestamp` when missing; `from` defaults to the sending CI when known, else `anonymous`; `to`
 * defaults to the CI whose socket it was written to. Unknown fields are ignored.
 */
export const MessageInput = z.object({
  id: z.string().min(1).max(128).optional(),
  type: z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'must be a short lowercase word such as request').default('request'),
  from: Sender.optional(),
  to: BusAddress.optional(),
  content: z.string(),
  /** ms since epoch */
  timestamp: z.number().optional(),
  in_reply_to: z.string().min(1).max(128).optional(),
  /** The sender's project (name); the hub fills it in for CIs that belong to one. */
  project: z.string().max(128).optional(),
  /** `high` is delivered before `normal`. */
  priority: z.enum(['normal', 'high']).default('normal'),
  /** Seconds until an undelivered message expires (dropped, and recorded as expired). */
  ttl: z.number().positive().max(31_536_000).optional(),
});
export type MessageInput = z.input<typeof MessageInput>;

/** A message as the hub stores and delivers it. */
export const Message = z.object({
  id: z.string(),
  type: z.string(),
  from: z.string(),
  to: z.string(),
  content: z.string(),
  timestamp: z.number(),
  in_reply_to: z.string().optional(),
  project: z.string().optional(),
  priority: z.enum(['normal', 'high']),
  /** ms since epoch */
  expires_at: z.number().optional(),
});
export type Message = z.infer<typeof Message>;

/** Error codes on a bus socket's reply line `{"ok":false,"error":{"code","message"}}`. */
export const BusErrorCode = z.enum([
  'invalid_json',
  'invalid_utf8',
  'invalid_message',
  'too_large',
  'unknown_recipient',
  'mailbox_full',
  'shutting_down',
  'internal',
]);
export type BusErrorCode = z.infer<typeof BusErrorCode>;

/** A mailbox's queue. */
export const QueueStats = z.object({
  /** Messages waiting (queued for delivery or for `recv`). */
  depth: z.number().int(),
  /** Messages waiting for a human's approval (`hold` policy). */
  held: z.number().int(),
  /** ms since epoch of the oldest waiting message. */
  oldest: z.number().optional(),
  /** Messages delivered since the queue was created. */
  delivered: z.number().int(),
});
export type QueueStats = z.infer<typeof QueueStats>;

/** Sends a message (to a name, `*` or `@project`). Answers once every copy is durably queued. */
export const Send = request(
  'bus/send',
  z.object({ message: MessageInput }),
  z.object({ id: z.string(), recipients: z.array(z.string()) }),
);

/** Sends a message and waits (up to `timeoutMs`) for the response to it, which it answers with. */
export const Ask = request(
  'bus/ask',
  z.object({ message: MessageInput, timeoutMs: z.number().int().min(1).max(3_600_000).default(300_000) }),
  z.object({ id: z.string(), reply: Message }),
);

/**
 * Takes up to `max` waiting messages of a mailbox, highest priority first, leasing them to this
 * connection; `waitMs` waits that long for at least one. Leased messages are not given to anyone else;
 * they are delivered once {@link Ack}ed, and go back to the queue if the connection closes first.
 */
export const Receive = request(
  'bus/receive',
  z.object({ name: z.string().min(1), max: z.number().int().min(1).max(10_000).default(100), waitMs: z.number().int().min(0).max(3_600_000).default(0) }),
  z.object({ messages: z.array(Message) }),
);

/** Marks leased messages delivered (received and handled). */
export const Ack = request('bus/ack', z.object({ name: z.string().min(1), ids: z.array(z.string()) }), z.null());

/** The messages in a mailbox without taking them: waiting, held and leased. */
export const Peek = request(
  'bus/peek',
  z.object({ name: z.string().min(1) }),
  z.object({ messages: z.array(Message.extend({ state: z.enum(['queued', 'held', 'leased']) })) }),
);

/** Approves held messages: they are delivered (typed into the CI, as `inject`). */
export const Approve = request('bus/approve', z.object({ name: CiName, ids: z.array(z.string()).optional() }), z.object({ approved: z.number().int() }));

/** Refuses held messages: they are dropped and recorded as refused. */
export const Refuse = request(
  'bus/refuse',
  z.object({ name: CiName, ids: z.array(z.string()).optional(), reason: z.string().max(500).optional() }),
  z.object({ refused: z.number().int() }),
);

/** Changes how messages reach a process CI. */
export const SetPolicy = request('bus/setPolicy', z.object({ name: CiName, policy: DeliveryPolicy }), CiInfo);

/** Routes messages for `name` to the mailbox `to` (created if it is not a CI) until {@link Unforward}. */
export const Forward = request('bus/forward', z.object({ name: CiName, to: CiName }), z.null());

export const Unforward = request('bus/unforward', z.object({ name: CiName }), z.null());

/** Mailboxes that are not CIs (a human's, created by `cihub forward --to`), with their queues. */
export const Mailboxes = request('bus/mailboxes', Empty, z.object({ mailboxes: z.array(z.object({ name: z.string(), queue: QueueStats })) }));

/** What happened to a message, as the timeline records it. */
export const MessageOutcome = z.enum(['sent', 'queued', 'delivered', 'injected', 'held', 'refused', 'expired', 'forwarded', 'response', 'failed']);
export type MessageOutcome = z.infer<typeof MessageOutcome>;

// ---------------------------------------------------------------------------------------------------
// Hub configuration

/** Retention limits (hub settings `retention.*`). */
export const RETENTION_DEFAULTS = { captureMaxMB: 1024, captureMaxAgeDays: 30, queueMaxMessages: 10_000, queueMaxAgeDays: 14 };
const RetentionLimits = {
  /** Capture kept per CI (MiB): the oldest sessions are removed first, and a live session continues in a new file past a quarter of it. */
  captureMaxMB: z.number().int().min(16).max(1_048_576),
  /** Capture sessions older than this (days) are removed; 0 keeps them. */
  captureMaxAgeDays: z.number().int().min(0).max(36_500),
  /** Messages a mailbox holds; a send to a full one is refused (`mailbox_full`). */
  queueMaxMessages: z.number().int().min(10).max(10_000_000),
  /** A message without its own ttl expires after this many days undelivered (recorded as expired); 0: never. Applies to messages sent after a change. */
  queueMaxAgeDays: z.number().int().min(0).max(36_500),
};
export const Retention = z.object({
  captureMaxMB: RetentionLimits.captureMaxMB.default(RETENTION_DEFAULTS.captureMaxMB),
  captureMaxAgeDays: RetentionLimits.captureMaxAgeDays.default(RETENTION_DEFAULTS.captureMaxAgeDays),
  queueMaxMessages: RetentionLimits.queueMaxMessages.default(RETENTION_DEFAULTS.queueMaxMessages),
  queueMaxAgeDays: RetentionLimits.queueMaxAgeDays.default(RETENTION_DEFAULTS.queueMaxAgeDays),
});
export type Retention = z.infer<typeof Retention>;

/** What each hub setting may be; {@link HubConfig} adds the defaults, {@link SetConfig} makes each optional. */
const ConfigLimits = {
  portsEnabled: z.boolean(),
  portsBase: z.number().int().min(1024).max(65000),
  contextPrefix: z.enum(['cross-project', 'always', 'never']),
  injectQuietMs: z.number().int().min(0).max(60_000),
  injectHumanIdleMs: z.number().int().min(0).max(600_000),
  defaultCiGraceMs: z.number().int().min(0).max(86_400_000),
  diskLowMB: z.number().int().min(0).max(1_048_576),
};

/** Hub settings, persisted in the state dir (`config.json`); every window and CLI sees the same. */
export const HubConfig = z.object({
  /** Tekton-compatible ports: each project CI also listens on 127.0.0.1:<base + index>. Off by default. */
  ports: z.object({ enabled: ConfigLimits.portsEnabled.default(false), base: ConfigLimits.portsBase.default(42100) }).prefault({}),
  /** When delivered messages carry `[Project: <name>]`: when the sender is from another project (default), always, never. */
  contextPrefix: ConfigLimits.contextPrefix.default('cross-project'),
  /** Inject only after the CI printed nothing for this long (ms). */
  injectQuietMs: ConfigLimits.injectQuietMs.default(1500),
  /** …and no human typed into an attached terminal for this long (ms). */
  injectHumanIdleMs: ConfigLimits.injectHumanIdleMs.default(5000),
  /** A project's default CI is removed this long (ms) after its folder left the last window (a reload reconnects well within it). */
  defaultCiGraceMs: ConfigLimits.defaultCiGraceMs.default(60_000),
  /** How much of the captures and mailboxes is kept. */
  retention: Retention.default(RETENTION_DEFAULTS),
  /** The hub warns (log, every window) when the state dir's disk has less free space than this (MiB). */
  diskLowMB: ConfigLimits.diskLowMB.default(512),
});
export type HubConfig = z.infer<typeof HubConfig>;

/** Reads the hub configuration. */
export const GetConfig = request('hub/getConfig', Empty, HubConfig);

/** Changes hub settings (a partial update); answers with the whole new configuration. */
export const SetConfig = request(
  'hub/setConfig',
  z.object({
    ports: z.object({ enabled: ConfigLimits.portsEnabled.optional(), base: ConfigLimits.portsBase.optional() }).optional(),
    contextPrefix: ConfigLimits.contextPrefix.optional(),
    injectQuietMs: ConfigLimits.injectQuietMs.optional(),
    injectHumanIdleMs: ConfigLimits.injectHumanIdleMs.optional(),
    defaultCiGraceMs: ConfigLimits.defaultCiGraceMs.optional(),
    retention: z
      .object({
        captureMaxMB: RetentionLimits.captureMaxMB.optional(),
        captureMaxAgeDays: RetentionLimits.captureMaxAgeDays.optional(),
        queueMaxMessages: RetentionLimits.queueMaxMessages.optional(),
        queueMaxAgeDays: RetentionLimits.queueMaxAgeDays.optional(),
      })
      .optional(),
    diskLowMB: ConfigLimits.diskLowMB.optional(),
  }),
  HubConfig,
);

// ---------------------------------------------------------------------------------------------------
// Projects and chat (the VS Code windows)

/** A workspace folder of a window. */
export const ProjectFolder = z.object({ path: AbsolutePath, name: z.string().min(1).max(200) });

/** A project as the hub knows it: the union of every connected window's folders. */
export const ProjectInfo = z.object({
  path: z.string(),
  name: z.string(),
  /** Connected windows that have it open. */
  windows: z.number().int(),
  /** Its default CI's name (`project-<slug>-ai`), whether or not it exists yet. */
  defaultCi: z.string(),
});
export type ProjectInfo = z.infer<typeof ProjectInfo>;

/**
 * Registers this connection's (window's) workspace folders, replacing what it registered before. The
 * hub keeps the union across windows and drops a window's folders when its connection closes. A
 * project's default CI is removed once no window has had the project for `defaultCiGraceMs` (hub
 * config), unless it is kept.
 */
export const RegisterProjects = request(
  'projects/register',
  z.object({ window: z.string().min(1).max(200), folders: z.array(ProjectFolder).max(1000) }),
  z.object({ projects: z.array(ProjectInfo) }),
);

export const ListProjects = request('projects/list', Empty, z.object({ projects: z.array(ProjectInfo) }));

/**
 * Makes sure a project has its default CI (`project-<slug>-ai`), creating it with `command` when it does
 * not exist. Answers with the CI. `keep` keeps it when the project leaves every window.
 */
export const EnsureDefaultCi = request(
  'projects/ensureDefaultCi',
  z
    .object({
      project: AbsolutePath,
      /** A process CI: its command line… */
      command: z.array(z.string()).min(1).optional(),
      env: Env.optional(),
      policy: DeliveryPolicy.optional(),
      /** …or a model CI. */
      model: ModelSettings.pick({ provider: true, model: true, baseUrl: true }).optional(),
      keep: z.boolean().optional(),
    })
    .refine((p) => (p.command === undefined) !== (p.model === undefined), 'give either a command or a model'),
  CiInfo,
);

/** One line of a project's chat. Entries are upserted by id: a streaming reply is sent again as it grows. */
export const ChatEntry = z.object({
  id: z.string(),
  /** ms since epoch */
  t: z.number(),
  /**
   * `user`: a person; `ci`: a CI's reply or activity; `bus`: a message between CIs; `system`: a command's
   * result; `error`: something that went wrong, with what to do.
   */
  role: z.enum(['user', 'ci', 'bus', 'system', 'error']),
  /** The CI it is from (ci) or addressed to (user). */
  ci: z.string().optional(),
  from: z.string().optional(),
  to: z.string().optional(),
  text: z.string(),
  /** `markdown`: render as Markdown (safely); `terminal`: what a terminal showed, monospace; `plain`. */
  format: z.enum(['markdown', 'terminal', 'plain']),
  /** Still growing (a reply streaming in). */
  streaming: z.boolean().optional(),
  /** The reply was cut off (a stream broken halfway, or stopped). */
  partial: z.boolean().optional(),
  /** Held messages (hold policy) this entry shows, for Approve/Refuse. */
  held: z.array(z.string()).optional(),
});
export type ChatEntry = z.infer<typeof ChatEntry>;

/** A project's chat, oldest first (the last `limit` entries). */
export const ChatHistory = request(
  'chat/history',
  z.object({ project: AbsolutePath, limit: z.number().int().min(1).max(10_000).default(500) }),
  z.object({ entries: z.array(ChatEntry) }),
);

/**
 * A person's chat message to a CI of a project. For a process CI the text is typed into its terminal
 * (as the person would), and what it prints afterwards streams into the chat as a `ci` entry, rendered
 * from the screen mirror as text; a model CI answers through its provider, streaming; an external CI
 * gets it as a bus message.
 */
export const ChatSend = request(
  'chat/send',
  z.object({ project: AbsolutePath, to: CiName, text: z.string().min(1).max(1_000_000), from: z.string().min(1).max(128).default('you') }),
  z.object({ entry: ChatEntry }),
);

/** Adds a `system` or `error` entry (a slash command's result) to a project's chat. */
export const ChatAppend = request(
  'chat/append',
  z.object({ project: AbsolutePath, role: z.enum(['system', 'error']), text: z.string().max(1_000_000), format: z.enum(['markdown', 'terminal', 'plain']) }),
  z.object({ entry: ChatEntry }),
);

/** Stops a CI's streaming reply (a model's request is cancelled; a process CI gets Ctrl-C). */
export const ChatStop = request('chat/stop', z.object({ ci: CiName }), z.null());

/**
 * Hands the hub an API key for a provider (from VS Code's SecretStorage), in memory only; `null` forgets
 * it. Model CIs without a key of their own use it.
 */
export const SetKey = request('model/setKey', z.object({ provider: ProviderKind, key: z.string().min(1).max(1000).nullable() }), z.null());

/** The models a provider reports (for a model picker): of a model CI's provider, or of a provider and base URL. */
export const ListModels = request(
  'model/list',
  z.object({ name: CiName.optional(), provider: ProviderKind.optional(), baseUrl: z.string().url().optional() }).refine(
    (p) => p.name !== undefined || p.provider !== undefined,
    'give a model CI name or a provider',
  ),
  z.object({ models: z.array(z.string()) }),
);

/** Recent hub log lines (for the extension's output channel). */
export const Logs = request('hub/logs', Empty, z.object({ lines: z.array(z.string()) }));

// ---------------------------------------------------------------------------------------------------
// Events

/** Something changed that a UI shows. */
export const HubEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ci'), ci: CiInfo }),
  z.object({ type: z.literal('ciRemoved'), name: z.string() }),
  /** A message was sent, queued, delivered, injected, held, refused, expired… (as the timeline records). */
  z.object({ type: z.literal('message'), outcome: MessageOutcome, mailbox: z.string(), message: Message, detail: z.string().optional() }),
  /** The set of projects across windows changed. */
  z.object({ type: z.literal('projects'), projects: z.array(ProjectInfo) }),
  /** A chat entry of a project was added or updated. */
  z.object({ type: z.literal('chat'), project: z.string(), entry: ChatEntry }),
  /** A warning or error line of the hub's log. */
  z.object({ type: z.literal('log'), line: z.string() }),
  /** Something the user should see and act on (the disk is nearly full, captures stopped): shown once per window. */
  z.object({ type: z.literal('alert'), message: z.string() }),
  /**
   * This connection fell behind (its unread data passed a bound, e.g. a busy window during a bus flood):
   * `dropped` events since the last one it got were not sent. Fetch what you show again (list, projects,
   * chat history). Alerts are never dropped.
   */
  z.object({ type: z.literal('resync'), dropped: z.number().int().positive() }),
]);
export type HubEvent = z.infer<typeof HubEvent>;

/** Subscribes this connection to {@link Event} notifications (until it closes). */
export const Watch = request('cihub/watch', Empty, z.null());

/** Hub → watching clients: a change. */
export const Event = notification('cihub/event', HubEvent);

// ---------------------------------------------------------------------------------------------------
// Helpers for both sides

/**
 * `value` without the parts zod rejected, so their defaults apply and everything valid is kept. Copies
 * only the objects along each rejected path, never a value itself (VS Code hands settings over as
 * proxies, which cannot be cloned).
 */
export function withoutInvalid(value: unknown, error: z.ZodError): unknown {
  let root = value;
  for (const issue of error.issues) root = removeAt(root, issue.path);
  return root;
}

function removeAt(value: unknown, at: readonly PropertyKey[]): unknown {
  if (at.length === 0) return undefined;
  if (typeof value !== 'object' || value === null) return value;
  const [key, ...rest] = at;
  const copy: object = Array.isArray(value) ? [...value] : { ...value };
  if (rest.length === 0) Reflect.deleteProperty(copy, key);
  else Reflect.set(copy, key, removeAt(Reflect.get(value, key), rest));
  return copy;
}

/** Formats zod issues as one line a user can act on: `field: problem; field: problem`. */
export function describeZodError(error: z.ZodError): string {
  return error.issues
    .map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
    .join('; ');
}
