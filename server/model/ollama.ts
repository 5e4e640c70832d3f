/** Ollama through its native API (`/api/chat` NDJSON streaming, `/api/tags`), with the `ollama` package. */
import { Ollama } from 'ollama';
import { IncompleteStream, RateLimited, retryAfterOf, statusOf, Unreachable, type Provider, type StreamRequest } from './provider';

/** undici's fetch fails with a TypeError when it cannot connect at all. */
function unreachable(error: unknown): unknown {
  return error instanceof TypeError && /fetch failed/i.test(error.message) ? new Unreachable(error.message) : error;
}

export class OllamaProvider implements Provider {
  readonly kind = 'ollama';

  constructor(readonly baseUrl: string) {}

  /**
   * A client per call (`abort()` on an Ollama client stops all of its streams), whose fetch also keeps
   * the last response's headers: the package's errors do not carry them, and a 429 needs `retry-after`.
   */
  private client(signal: AbortSignal, seen?: { headers?: Headers }): Ollama {
    return new Ollama({
      host: this.baseUrl,
      fetch: async (input, init) => {
        const response = await fetch(input, { ...init, signal });
        if (seen) seen.headers = response.headers;
        return response;
      },
    });
  }

  async stream(request: StreamRequest, onToken: (token: string) => void): Promise<string> {
    const seen: { headers?: Headers } = {};
    try {
      return await this.streamChat(request, onToken, seen);
    } catch (error) {
      if (statusOf(error) === 429 && error instanceof Error) throw new RateLimited(error.message, retryAfterOf({ headers: seen.headers }));
      throw unreachable(error);
    }
  }

  private async streamChat(request: StreamRequest, onToken: (token: string) => void, seen: { headers?: Headers }): Promise<string> {
    const messages = [...(request.system ? [{ role: 'system', content: request.system }] : []), ...request.messages];
    const stream = await this.client(request.signal, seen).chat({
      model: request.model,
      messages,
      stream: true,
      options: {
        ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
        ...(request.maxTokens !== undefined ? { num_predict: request.maxTokens } : {}),
      },
    });
    let text = '';
    let done = false;
    for await (const part of stream) {
      const token = part.message?.content ?? '';
      if (token) {
        text += token;
        onToken(token);
      }
      done ||= part.done;
    }
    if (!done) throw new IncompleteStream();
    return text;
  }

  async listModels(signal: AbortSignal): Promise<string[]> {
    try {
      const { models } = await this.client(signal).list();
      return models.map((m) => m.name);
    } catch (error) {
      throw unreachable(error);
    }
  }
}
