/** OpenAI-compatible endpoints (OpenAI, LM Studio, vLLM, llama.cpp, Ollama's /v1…), with the `openai` SDK. */
import OpenAI from 'openai';
import { IncompleteStream, Unreachable, type Provider, type StreamRequest } from './provider';

function unreachable(error: unknown): unknown {
  return error instanceof OpenAI.APIConnectionError && !(error instanceof OpenAI.APIConnectionTimeoutError) ? new Unreachable(error.message) : error;
}

export class OpenAiProvider implements Provider {
  readonly kind = 'openai';
  private readonly client: OpenAI;

  constructor(
    readonly baseUrl: string,
    apiKey: string | undefined,
  ) {
    // Retries are ours (bounded, reported); local servers need no key but the SDK insists on one.
    this.client = new OpenAI({ apiKey: apiKey ?? 'no-key', baseURL: baseUrl, maxRetries: 0, timeout: 24 * 3600_000 });
  }

  async stream(request: StreamRequest, onToken: (token: string) => void): Promise<string> {
    try {
      return await this.streamChat(request, onToken);
    } catch (error) {
      throw unreachable(error);
    }
  }

  private async streamChat(request: StreamRequest, onToken: (token: string) => void): Promise<string> {
    const stream = await this.client.chat.completions.create(
      {
        model: request.model,
        stream: true,
        messages: [...(request.system ? [{ role: 'system' as const, content: request.system }] : []), ...request.messages],
        ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
        ...(request.maxTokens !== undefined ? { max_tokens: request.maxTokens } : {}),
      },
      { signal: request.signal },
    );
    let text = '';
    let finished = false;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      const token = choice?.delta?.content ?? '';
      if (token) {
        text += token;
        onToken(token);
      }
      finished ||= Boolean(choice?.finish_reason);
    }
    if (!finished) throw new IncompleteStream();
    return text;
  }

  async listModels(signal: AbortSignal): Promise<string[]> {
    try {
      const out: string[] = [];
      for await (const model of this.client.models.list({ signal })) out.push(model.id);
      return out;
    } catch (error) {
      throw unreachable(error);
    }
  }
}
