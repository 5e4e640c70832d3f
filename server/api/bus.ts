/** Requests about the message bus: send, receive, approve/refuse, policy, forwarding. */
import { ResponseError } from 'vscode-jsonrpc';
import {
  Ack,
  Ask,
  Approve,
  Forward,
  HubErrorCode,
  Mailboxes,
  Peek,
  Receive,
  Refuse,
  Send,
  SetPolicy,
  Unforward,
  type BusErrorCode,
} from '../protocol';
import type { Client } from '../rpc';
import { BusError } from '../bus/bus';
import { hubError, notFound } from '../errors';
import type { HubContext } from './context';

/** JSON-RPC error codes of bus refusals; any other refusal is about the request's params. */
const RPC_CODES: Partial<Record<BusErrorCode, HubErrorCode>> = {
  unknown_recipient: HubErrorCode.NotFound,
  shutting_down: HubErrorCode.ShuttingDown,
  mailbox_full: HubErrorCode.LimitReached,
  internal: HubErrorCode.SystemError,
};

/** A bus refusal as a JSON-RPC error: the bus code goes in the message's data. */
function rpcError(error: unknown): unknown {
  if (!(error instanceof BusError)) return error;
  return new ResponseError(RPC_CODES[error.code] ?? HubErrorCode.InvalidParams, error.message, { bus: error.code });
}

function busCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw rpcError(error);
  }
}

export function registerBusRequests(client: Client, hub: HubContext): void {
  const { log, bus, cis } = hub;
  client.onClose(() => bus.releaseLessee(client));

  client.handle(Send, ({ message }) => busCall(() => bus.send(message)), log);
  client.handle(Ask, async ({ message, timeoutMs }) => {
    try {
      const reply = await bus.ask(message, {}, timeoutMs);
      return { id: reply.in_reply_to ?? '', reply };
    } catch (error) {
      throw rpcError(error);
    }
  }, log);
  client.handle(Receive, async ({ name, max, waitMs }) => ({ messages: await busCall(() => bus.receive(name, max, waitMs, client)) }), log);
  client.handle(Ack, ({ name, ids }) => {
    bus.ack(name, ids, client);
    return null;
  }, log);
  client.handle(Peek, ({ name }) => ({ messages: busCall(() => bus.peek(name)) }), log);
  client.handle(Approve, ({ name, ids }) => {
    cis.require(name);
    return { approved: bus.approve(name, ids) };
  }, log);
  client.handle(Refuse, ({ name, ids, reason }) => {
    cis.require(name);
    return { refused: bus.refuse(name, ids, reason) };
  }, log);
  client.handle(SetPolicy, ({ name, policy }) => {
    const ci = cis.requireProcess(name, 'a delivery policy');
    ci.record.policy = policy;
    bus.setPolicy(name, policy);
    cis.persist();
    const info = hub.info(ci);
    hub.emit({ type: 'ci', ci: info });
    return info;
  }, log);
  client.handle(Forward, ({ name, to }) => {
    if (!cis.get(name) && !bus.isExternal(name)) throw notFound(name);
    busCall(() => bus.forward(name, to));
    return null;
  }, log);
  client.handle(Unforward, ({ name }) => {
    if (!bus.unforward(name)) throw hubError(HubErrorCode.InvalidState, `${name} is not forwarded`);
    return null;
  }, log);
  client.handle(Mailboxes, () => ({ mailboxes: bus.mailboxes() }), log);
}
