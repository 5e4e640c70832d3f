/**
 * API keys, in the hub's memory only — never in the registry, a capture, the timeline or the log (each
 * key is registered with the log's redaction as it arrives). A CI's own key (given at spawn, from the
 * CLI's environment) wins over the provider-wide one a VS Code window hands over from its SecretStorage,
 * which wins over the hub's own environment.
 */
import type { Log } from '../log';
import { KEY_ENV, type ProviderKind } from '../protocol';

export class KeyStore {
  private readonly byCi = new Map<string, string>();
  private readonly byProvider = new Map<ProviderKind, string>();
  private readonly listeners = new Set<() => void>();

  constructor(private readonly log: Log) {}

  setForCi(ci: string, key: string | undefined): void {
    if (key) {
      this.log.redact(key);
      this.byCi.set(ci, key);
    } else this.byCi.delete(ci);
  }

  setForProvider(provider: ProviderKind, key: string | undefined): void {
    if (key) {
      this.log.redact(key);
      this.byProvider.set(provider, key);
    } else this.byProvider.delete(provider);
    for (const listener of this.listeners) listener();
  }

  /** Called when a provider-wide key changes (model CIs rebuild their clients). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  keyFor(ci: string, provider: ProviderKind): string | undefined {
    const env = KEY_ENV[provider];
    const fromEnv = env ? process.env[env] : undefined;
    if (fromEnv) this.log.redact(fromEnv);
    return this.byCi.get(ci) ?? this.byProvider.get(provider) ?? fromEnv;
  }

  forget(ci: string): void {
    this.byCi.delete(ci);
  }
}
