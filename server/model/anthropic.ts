/** Anthropic's Messages API (`/v1/messages` SSE streaming, `/v1/models`), with `@anthropic-ai/sdk`. */
import Anthropic from '@anthropic-ai/sdk';
import { IncompleteStream, Unreachable, type Provider, type StreamRequest } from './provider';

function unreachable(error: unknown): unknown {
  return error instanceof Anthropic.APIConnectionError && !(error instanceof Anthropic.APIConnectionTimeoutError) ? new Unreachable(error.message) : error;
}

/** Anthropic requires max_tokens; this is used when the CI does not set one. */
const ANTHROPIC_DEFAULT_MAX_TOKENS = 4096;

export class AnthropicProvider implements Provider {
  readonly kind = 'anthropic';
  private readonly client: Anthropic;

  constructor(
    readonly baseUrl: string,
    apiKey: string | undefined,
  ) {
    this.client = new Anthropic({ apiKey: apiKey ?? 'no-key', baseURL: baseUrl, maxRetries: 0, timeout: 24 * 3600_000 });
  }

  async stream(request: StreamRequest, onToken: (token: string) => void): Promise<string> {
    try {
      return await this.streamChat(request, onToken);
    } catch (error) {
      throw unreachable(error);
    }
  }

  private async streamChat(request: StreamRequest, onToken: (token: string) => void): Promise<string> {
    const stream = await this.client.messages.create(
      {
        model: request.model,
        max_tokens: request.maxTokens ?? ANTHROPIC_DEFAULT_MAX_TOKENS,
        stream: true,
        messages: request.messages,
        ...(request.system ? { system: request.system } : {}),
        ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
      },
      { signal: request.signal },
    );
    let text = '';
    let stopped = false;
    for await (const event of stream) {
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
        text += event.delta.text;
        onToken(event.delta.text);
      }
      stopped ||= event.type === 'message_stop';
    }
    if (!stopped) throw new IncompleteStream();
    return text;
  }

  async listModels(signal: AbortSignal): Promise<string[]> {
    try {
      const out: string[] = [];
      for await (const model of this.client.models.list({}, { signal })) out.push(model.id);
      return out;
    } catch (error) {
      throw unreachable(error);
    }
  }
}
