/**
 * One model answer: stream it, with an idle timeout, a bounded retry of rate limits that honours
 * `retry-after`, cancellation, and a failure that says what to do — keeping what arrived before it.
 */
import { QuietTimer } from '../quietTimer';
import { explain, PROVIDER_NAMES, ProviderFailure, type ChatTurn, type Provider } from './provider';

/** Rate-limited requests are retried at most this many times… */
const RATE_LIMIT_RETRIES = 2;
/** …and only when the provider asks to wait no longer than this. */
const RATE_LIMIT_MAX_WAIT_MS = 20_000;
/** Without `retry-after`, wait this long before retrying. */
const RATE_LIMIT_DEFAULT_WAIT_MS = 1000;

export interface TurnRequest {
  provider: Provider;
  model: string;
  system?: string;
  messages: ChatTurn[];
  temperature?: number;
  maxTokens?: number;
  /** No token for this long: give up (the model may still be loading, or the server is stuck). */
  idleTimeoutMs: number;
  /** Aborted: stop now (Stop button, Ctrl-C, RPC). */
  signal: AbortSignal;
  onToken(token: string): void;
  /** Progress worth showing (a rate-limit wait). */
  onNotice(text: string): void;
}

export interface TurnResult {
  text: string;
  /** From sending the request to the first token, ms. */
  firstTokenMs: number;
  durationMs: number;
}

function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

export async function runTurn(request: TurnRequest): Promise<TurnResult> {
  const { provider, model } = request;
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    const controller = new AbortController();
    const cancel = () => controller.abort('cancel');
    request.signal.addEventListener('abort', cancel, { once: true });
    const idle = new QuietTimer(request.idleTimeoutMs, () => controller.abort('timeout'));
    let received = '';
    let firstTokenMs = -1;
    const sent = Date.now();
    idle.touch();
    try {
      if (request.signal.aborted) throw new ProviderFailure('cancelled', 'stopped');
      const text = await provider.stream(
        { model, system: request.system, messages: request.messages, temperature: request.temperature, maxTokens: request.maxTokens, signal: controller.signal },
        (token) => {
          if (firstTokenMs < 0) firstTokenMs = Date.now() - sent;
          received += token;
          idle.touch();
          request.onToken(token);
        },
      );
      return { text, firstTokenMs: Math.max(0, firstTokenMs), durationMs: Date.now() - started };
    } catch (error) {
      if (controller.signal.aborted) {
        if (controller.signal.reason === 'timeout') {
          throw new ProviderFailure(
            'timeout',
            `no answer from ${PROVIDER_NAMES[provider.kind]} at ${provider.baseUrl} for ${request.idleTimeoutMs / 1000} s (timed out): the model may still be loading, or the server is stuck${received ? '; the part received is kept' : ''}`,
            received,
          );
        }
        throw new ProviderFailure('cancelled', 'stopped', received);
      }
      let failure = explain(error, provider, model, received);
      if (failure.kind === 'unknown_model') {
        const models = await provider.listModels(AbortSignal.timeout(5000)).catch(() => undefined);
        failure = explain(error, provider, model, received, models);
      }
      const delay = failure.retryAfterMs ?? RATE_LIMIT_DEFAULT_WAIT_MS;
      if (failure.kind === 'rate_limit' && !received && attempt < RATE_LIMIT_RETRIES && delay <= RATE_LIMIT_MAX_WAIT_MS) {
        request.onNotice(`rate limited by ${PROVIDER_NAMES[provider.kind]}; retrying in ${Math.ceil(delay / 1000)} s (${attempt + 1}/${RATE_LIMIT_RETRIES})`);
        await wait(delay, request.signal);
        continue;
      }
      throw failure;
    } finally {
      idle.cancel();
      request.signal.removeEventListener('abort', cancel);
    }
  }
}
