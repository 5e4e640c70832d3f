/**
 * Model CIs from VS Code: API keys kept in SecretStorage (asked for once, handed to the hub in memory on
 * every connect), a model picker that lists what the provider reports, and the `provider:model` form of
 * the default-CI setting.
 */
import * as vscode from 'vscode';
import { DEFAULT_BASE_URL, KEY_ENV, ListModels, ProviderKind, SetKey } from '../server/protocol';
import { errorMessage } from '../server/errors';
import type { HubConnection } from './hubConnection';

const PROVIDERS: readonly { id: ProviderKind; label: string; detail: string }[] = [
  { id: 'ollama', label: 'Ollama', detail: 'local models, no key' },
  { id: 'openai', label: 'OpenAI-compatible', detail: 'OpenAI, LM Studio, vLLM, llama.cpp… (a key for OpenAI itself)' },
  { id: 'anthropic', label: 'Anthropic', detail: 'Claude models (needs a key)' },
];

function secretName(provider: ProviderKind): string {
  return `projectsChat.apiKey.${provider}`;
}

const MODEL_SPEC = new RegExp(`^(${ProviderKind.options.join('|')}):([^@\\s]+)(?:@(\\S+))?$`);

/** `ollama:llama3.2`, `openai:gpt-4.1@http://127.0.0.1:1234/v1`: a model CI spec, or undefined for a command line. */
export function parseModelSpec(setting: string): { provider: ProviderKind; model: string; baseUrl?: string } | undefined {
  const m = MODEL_SPEC.exec(setting.trim());
  if (!m) return undefined;
  const provider = ProviderKind.parse(m[1]);
  return { provider, model: m[2], ...(m[3] ? { baseUrl: m[3] } : {}) };
}

export class Models {
  constructor(
    private readonly hub: HubConnection,
    private readonly secrets: vscode.SecretStorage,
  ) {}

  /** Hands every stored key to the hub (its memory only). Called on each connect. */
  async pushKeys(): Promise<void> {
    for (const { id } of PROVIDERS) {
      const key = await this.secrets.get(secretName(id));
      if (key) await this.hub.call(SetKey, { provider: id, key });
    }
  }

  /** Makes sure a key is known for `provider`: stored, in the environment, or asked for now (once). */
  async ensureKey(provider: ProviderKind, baseUrl: string | undefined): Promise<boolean> {
    const env = KEY_ENV[provider];
    if (env === undefined) return true;
    // A local OpenAI-compatible server rarely wants a key.
    if (baseUrl && /^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/]/.test(baseUrl)) return true;
    if (await this.secrets.get(secretName(provider))) return true;
    if (process.env[env]) return true;
    return this.setKey(provider);
  }

  /** Asks for a provider's key, stores it in SecretStorage and hands it to the hub. */
  async setKey(provider?: ProviderKind): Promise<boolean> {
    const chosen =
      provider ??
      (await vscode.window.showQuickPick(
        PROVIDERS.filter((p) => KEY_ENV[p.id] !== undefined).map((p) => ({ label: p.label, detail: p.detail, id: p.id })),
        { title: 'Set the API key of which provider?' },
      ))?.id;
    if (!chosen) return false;
    const key = await vscode.window.showInputBox({
      title: `API key for ${PROVIDERS.find((p) => p.id === chosen)?.label}`,
      prompt: 'Stored in VS Code\'s secret storage and handed to the hub in memory; never written to its files.',
      password: true,
      ignoreFocusOut: true,
      validateInput: (v) => (v.trim().length >= 8 ? undefined : 'That is too short to be an API key'),
    });
    if (!key) return false;
    await this.secrets.store(secretName(chosen), key.trim());
    await this.hub.call(SetKey, { provider: chosen, key: key.trim() });
    return true;
  }

  /**
   * Picks a provider and one of the models it reports. Returns undefined if the user cancels; a
   * provider that cannot be reached is explained and the user may type a model name instead.
   */
  async pick(): Promise<{ provider: ProviderKind; model: string; baseUrl?: string } | undefined> {
    const provider = await vscode.window.showQuickPick(
      PROVIDERS.map((p) => ({ label: p.label, detail: p.detail, id: p.id, url: DEFAULT_BASE_URL[p.id] })),
      { title: 'Model CI (1/3): provider' },
    );
    if (!provider) return undefined;
    const url = await vscode.window.showInputBox({
      title: 'Model CI (2/3): base URL',
      value: provider.url,
      prompt: 'Where the provider answers (for OpenAI-compatible servers: the URL ending in /v1)',
      validateInput: (v) => (/^https?:\/\/\S+$/.test(v) ? undefined : 'An http(s) URL'),
    });
    if (!url) return undefined;
    const baseUrl = url === provider.url ? undefined : url;
    if (!(await this.ensureKey(provider.id, baseUrl))) return undefined;
    let models: string[] = [];
    let problem: string | undefined;
    try {
      models = (await this.hub.call(ListModels, { provider: provider.id, baseUrl })).models;
    } catch (error) {
      problem = errorMessage(error);
    }
    if (models.length) {
      const model = await vscode.window.showQuickPick(models, { title: `Model CI (3/3): model (${provider.label} reports ${models.length})` });
      return model ? { provider: provider.id, model, baseUrl } : undefined;
    }
    const typed = await vscode.window.showInputBox({
      title: 'Model CI (3/3): model',
      prompt: problem ? `Could not list models: ${problem}. Type a model name anyway:` : 'The provider reports no models; type one:',
    });
    return typed ? { provider: provider.id, model: typed.trim(), baseUrl } : undefined;
  }
}
