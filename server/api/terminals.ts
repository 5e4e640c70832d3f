/** Requests about terminals: attaching to a CI's PTY, and PTYs that `cihub wrap` clients run. */
import { Attach, AttachResize, Detach, HubErrorCode, Input, Wrap, WrapExit, WrapOutput, WrapResize, WrapTyped } from '../protocol';
import type { Client } from '../rpc';
import type { ProcessCi } from '../ci';
import { hubError } from '../errors';
import type { HubContext } from './context';

export function registerTerminalRequests(client: Client, hub: HubContext): void {
  const { log, cis } = hub;
  client.onClose(() => {
    for (const [attachId, ci] of client.attachments) ci.terminal.detach(client, attachId);
    client.attachments.clear();
    for (const ci of cis.all()) if (ci.kind === 'process' && ci.wrappedBy === client) ci.wrapEnded(undefined);
  });

  client.handle(Attach, ({ name, attachId, cols, rows, readOnly }) => {
    hub.assertAccepting();
    const ci = cis.require(name);
    if (!ci.running && ci.state !== 'backoff') {
      throw hubError(
        HubErrorCode.InvalidState,
        `${name} is ${ci.state}${ci.record.reason ? ` (${ci.record.reason})` : ''}; start it with \`cihub restart ${name}\``,
      );
    }
    if (client.attachments.has(attachId)) {
      throw hubError(HubErrorCode.AlreadyExists, `attachment id ${attachId} is in use on this connection`);
    }
    client.attachments.set(attachId, ci);
    ci.terminal.attach(client, attachId, cols, rows, readOnly ?? false);
    hub.emit({ type: 'ci', ci: hub.info(ci) });
    return hub.info(ci);
  }, log);
  client.on(Detach, ({ attachId }) => {
    const ci = client.attachments.get(attachId);
    if (!ci) return;
    client.attachments.delete(attachId);
    ci.terminal.detach(client, attachId);
    hub.emit({ type: 'ci', ci: hub.info(ci) });
  }, log);
  client.on(Input, ({ attachId, data }) => {
    client.attachments.get(attachId)?.terminal.typed(client, attachId, data);
  }, log);
  client.on(AttachResize, ({ attachId, cols, rows }) => {
    client.attachments.get(attachId)?.terminal.attachmentResized(client, attachId, cols, rows);
  }, log);

  client.handle(Wrap, (p) => {
    hub.assertAccepting();
    const existing = cis.get(p.name);
    if (existing && (existing.kind !== 'process' || existing.record.host !== 'client' || existing.running)) {
      throw hubError(
        HubErrorCode.AlreadyExists,
        `a CI named "${p.name}" exists already${existing.running ? ' and is running' : ''}; pick another name with --name`,
      );
    }
    const ci = existing ?? cis.create({
      name: p.name,
      command: p.command,
      cwd: p.cwd,
      env: {},
      project: p.project,
      restart: 'never',
      policy: 'inbox',
      cols: p.cols,
      rows: p.rows,
      host: 'client',
    });
    ci.wrapStarted(client, p.pid, p.cols, p.rows);
    return hub.info(ci);
  }, log);
  const wrapped = (name: string): ProcessCi | undefined => {
    const ci = cis.get(name);
    return ci?.kind === 'process' && ci.wrappedBy === client ? ci : undefined;
  };
  client.on(WrapOutput, ({ name, data }) => wrapped(name)?.terminal.outputText(data), log);
  client.on(WrapTyped, ({ name, data }) => wrapped(name)?.terminal.inputSeen(data), log);
  client.on(WrapResize, ({ name, cols, rows }) => wrapped(name)?.terminal.resize(cols, rows), log);
  client.on(WrapExit, ({ name, exitCode, signal }) => wrapped(name)?.wrapEnded({ exitCode, signal }), log);
}
