/** Makes the provider for a model CI. */
import { AnthropicProvider } from './anthropic';
import { OllamaProvider } from './ollama';
import { OpenAiProvider } from './openai';
import { DEFAULT_BASE_URL, type ProviderKind } from '../protocol';
import type { Provider } from './provider';

export function makeProvider(kind: ProviderKind, baseUrl: string | undefined, apiKey: string | undefined): Provider {
  const url = (baseUrl ?? DEFAULT_BASE_URL[kind]).replace(/\/+$/, '');
  switch (kind) {
    case 'ollama':
      return new OllamaProvider(url);
    case 'openai':
      return new OpenAiProvider(url, apiKey);
    case 'anthropic':
      return new AnthropicProvider(url, apiKey);
  }
}
