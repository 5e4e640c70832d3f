/** Requests about model CIs: API keys (memory only) and the models a provider reports. */
import { HubErrorCode, ListModels, SetKey } from '../protocol';
import type { Client } from '../rpc';
import { hubError } from '../errors';
import { makeProvider } from '../model/providers';
import { explain } from '../model/provider';
import type { HubContext } from './context';

export function registerModelRequests(client: Client, hub: HubContext): void {
  const { log, cis, keys } = hub;
  client.handle(SetKey, ({ provider, key }) => {
    keys.setForProvider(provider, key ?? undefined);
    log.info(`API key for ${provider} ${key ? 'set' : 'forgotten'} (kept in memory only)`);
    return null;
  }, log);
  client.handle(ListModels, async ({ name, provider, baseUrl }) => {
    let source;
    if (name) {
      const ci = cis.require(name);
      if (ci.kind !== 'model') throw hubError(HubErrorCode.InvalidState, `${name} is not a model CI`);
      source = { provider: ci.record.provider, baseUrl: ci.record.baseUrl, key: keys.keyFor(name, ci.record.provider) };
    } else if (provider) {
      source = { provider, baseUrl, key: keys.keyFor('', provider) };
    } else {
      throw hubError(HubErrorCode.InvalidParams, 'give a model CI name or a provider');
    }
    const p = makeProvider(source.provider, source.baseUrl, source.key);
    try {
      return { models: await p.listModels(AbortSignal.timeout(10_000)) };
    } catch (error) {
      throw hubError(HubErrorCode.ProviderError, explain(error, p, '', '').message);
    }
  }, log);
}
