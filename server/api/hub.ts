/** Requests about the hub itself: status, stop, watch, settings. */
import { GetConfig, SetConfig, Status, StopHub, Watch } from '../protocol';
import type { Client } from '../rpc';
import type { HubContext } from './context';

export function registerHubRequests(client: Client, hub: HubContext): void {
  const { log } = hub;
  client.handle(Status, () => hub.status(), log);
  client.handle(StopHub, () => {
    setImmediate(() => void hub.stop('requested by a client'));
    return null;
  }, log);
  client.handle(Watch, () => {
    client.watching = true;
    return null;
  }, log);
  client.handle(GetConfig, () => hub.config.current, log);
  client.handle(SetConfig, (change) => {
    const next = hub.config.update(change);
    hub.updatePorts();
    return next;
  }, log);
}
