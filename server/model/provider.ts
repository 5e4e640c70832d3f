/**
 * Model providers behind one small interface — stream a chat, list models — implemented with the
 * official SDKs (ollama, openai, @anthropic-ai/sdk), plus what every provider shares: turning SDK and
 * network failures into errors that say what to do, and a bounded retry of rate limits that honours
 * `retry-after`.
 */
import { KEY_ENV, type ProviderKind } from '../protocol';

export interface ChatTurn {
  role: 'user' | 'assistant';
  content: string;
}

export interface StreamRequest {
  model: string;
  system?: string;
  messages: ChatTurn[];
  temperature?: number;
  maxTokens?: number;
  signal: AbortSignal;
}

export interface Provider {
  readonly kind: ProviderKind;
  readonly baseUrl: string;
  /** Streams an answer, calling `onToken` with each piece as it arrives; resolves with the whole text. */
  stream(request: StreamRequest, onToken: (token: string) => void): Promise<string>;
  /** The models the provider reports. */
  listModels(signal: AbortSignal): Promise<string[]>;
}

export const PROVIDER_NAMES: Record<ProviderKind, string> = { ollama: 'Ollama', openai: 'the OpenAI-compatible server', anthropic: 'Anthropic' };

export type FailureKind = 'unreachable' | 'unknown_model' | 'auth' | 'rate_limit' | 'timeout' | 'cut' | 'server' | 'cancelled' | 'bad_request';

/** A provider failure with a message that says what to do; `partial` is the answer received before it. */
export class ProviderFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly partial = '',
    /** For rate limits: how long the provider asked to wait, ms. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** The HTTP status of an SDK error (openai/anthropic `status`, ollama `status_code`), if any. */
export function statusOf(error: unknown): number | undefined {
  if (!error || typeof error !== 'object') return undefined;
  for (const key of ['status', 'status_code'] as const) {
    const value: unknown = Reflect.get(error, key);
    if (typeof value === 'number') return value;
  }
  return undefined;
}

/** A 429 whose `retry-after` a provider read itself (the ollama package does not keep response headers). */
export class RateLimited extends Error {
  readonly status = 429;
  constructor(
    message: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
  }
}

/** `retry-after` / `retry-after-ms` of an SDK error's response, in ms. */
export function retryAfterOf(error: unknown): number | undefined {
  if (error instanceof RateLimited) return error.retryAfterMs;
  const headers: unknown = error && typeof error === 'object' ? Reflect.get(error, 'headers') : undefined;
  if (!headers || typeof headers !== 'object' || !('get' in headers) || typeof headers.get !== 'function') return undefined;
  const ms = Number(headers.get('retry-after-ms'));
  if (Number.isFinite(ms) && ms > 0) return ms;
  const raw: unknown = headers.get('retry-after');
  if (typeof raw !== 'string') return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(raw);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

/** The provider could not be reached at all (each provider maps its SDK's connection errors to this). */
export class Unreachable extends Error {}

/** A stream that ended without the provider's end-of-answer marker: the connection was cut. */
export class IncompleteStream extends Error {
  constructor() {
    super('the stream ended before the answer was complete');
  }
}

/**
 * True if an error (or its cause) is a refused/unresolvable connection. Each provider maps its SDK's
 * connection errors to {@link Unreachable}; the codes catch what reaches here unmapped.
 */
function isConnectionFailure(error: unknown): boolean {
  if (error instanceof Unreachable) return true;
  for (let e: unknown = error, depth = 0; e && typeof e === 'object' && depth < 5; e = Reflect.get(e, 'cause'), depth++) {
    const code: unknown = Reflect.get(e, 'code');
    if (typeof code === 'string' && /^(ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ECONNRESET|EAI_AGAIN|UND_ERR_CONNECT_TIMEOUT)$/.test(code)) return true;
  }
  return false;
}

function detail(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // SDKs put the server's own message in `error.error.message` (openai/anthropic) or `error` (ollama).
  const body: unknown = Reflect.get(error, 'error');
  if (typeof body === 'string') return body;
  if (body && typeof body === 'object') {
    const inner: unknown = Reflect.get(body, 'error');
    const message: unknown = inner && typeof inner === 'object' ? Reflect.get(inner, 'message') : Reflect.get(body, 'message');
    if (typeof message === 'string') return message;
  }
  return error.message;
}

/**
 * Says what went wrong and what to do (cancellation and timeouts are the caller's: it knows why it
 * aborted). `models` lists what the provider has (for an unknown model);
 * `received` is the answer so far (a stream cut halfway keeps it).
 */
export function explain(error: unknown, provider: Provider, model: string, received: string, models?: string[]): ProviderFailure {
  if (error instanceof ProviderFailure) return error;
  const where = `${PROVIDER_NAMES[provider.kind]} at ${provider.baseUrl}`;
  const status = statusOf(error);
  if (received && status === undefined) {
    return new ProviderFailure('cut', `the answer from ${where} was cut off (${detail(error)}); the part received is kept`, received);
  }
  if (status === undefined && isConnectionFailure(error)) {
    const hint =
      provider.kind === 'ollama'
        ? 'start it with `ollama serve`, or pick another provider'
        : `check that it is running and the base URL is right (--base-url), or pick another provider`;
    return new ProviderFailure('unreachable', `${provider.kind === 'ollama' ? 'Ollama is not running' : `cannot reach ${PROVIDER_NAMES[provider.kind]}`} at ${provider.baseUrl}: ${hint}`);
  }
  if (status === 401 || status === 403) {
    const env = KEY_ENV[provider.kind];
    return new ProviderFailure(
      'auth',
      `${where} rejected the API key (${status}: ${detail(error)}): set a valid key${env ? ` in ${env} (CLI)` : ''} or with "Projects Chat: Set API Key…" (VS Code)`,
    );
  }
  if (status === 404 || /model .*not found|does not exist|not_found/i.test(detail(error))) {
    const list = models?.length ? `; it has: ${models.join(', ')}` : '';
    const pull = provider.kind === 'ollama' ? ` (or \`ollama pull ${model}\`)` : '';
    return new ProviderFailure('unknown_model', `${where} has no model "${model}"${list}. Pick one of those${pull}.`);
  }
  if (status === 429) {
    const wait = retryAfterOf(error);
    return new ProviderFailure('rate_limit', `${where} is rate limiting requests${wait ? ` (retry after ${Math.ceil(wait / 1000)} s)` : ''}: wait and try again`, received, wait);
  }
  if (status !== undefined && status >= 500) {
    return new ProviderFailure('server', `${where} failed (${status}: ${detail(error)}); try again, or check the server`, received);
  }
  if (status !== undefined) return new ProviderFailure('bad_request', `${where} refused the request (${status}: ${detail(error)})`, received);
  return new ProviderFailure('server', `${where}: ${detail(error)}`, received);
}
