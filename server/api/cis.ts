/** Requests about CIs: create, list, stop, restart, remove, resize, export. */
import * as os from 'node:os';
import { DEFAULT_COLS, DEFAULT_ROWS, Export, HubErrorCode, Kill, List, Remove, Resize, Restart, Spawn } from '../protocol';
import type { Client } from '../rpc';
import { hubError } from '../errors';
import { processEnv } from '../env';
import { exportCapture } from '../export';
import type { HubContext } from './context';

export function registerCiRequests(client: Client, hub: HubContext): void {
  const { log, cis } = hub;
  client.handle(List, () => ({ cis: [...cis.all().map((ci) => hub.info(ci)), ...hub.bus.externalInfos()] }), log);
  client.handle(Spawn, (p) => {
    hub.assertAccepting();
    if (hub.bus.isExternal(p.name)) {
      throw hubError(HubErrorCode.AlreadyExists, `"${p.name}" is taken by an external socket in ${hub.paths.busDir}; pick another name`);
    }
    if (p.defaultCi && !p.project) throw hubError(HubErrorCode.InvalidParams, 'a default CI needs its project (--project DIR)');
    const defaultFor = p.defaultCi ? p.project : undefined;
    if (defaultFor) {
      const current = cis.all().find((c) => c.record.defaultFor === defaultFor);
      if (current) throw hubError(HubErrorCode.AlreadyExists, `${defaultFor} already has a default CI: ${current.name}`);
    }
    if (p.kind === 'model') {
      const { kind: _kind, apiKey, defaultCi: _default, ...spec } = p;
      hub.keys.setForCi(p.name, apiKey);
      const model = cis.createModel({ ...spec, defaultFor });
      model.start();
      return hub.info(model);
    }
    const env = p.env ?? processEnv();
    const ci = cis.create({
      name: p.name,
      command: p.command,
      cwd: p.cwd ?? p.project ?? env.HOME ?? os.homedir(),
      env,
      project: p.project,
      restart: p.restart ?? 'never',
      policy: p.policy ?? 'inbox',
      cols: p.cols ?? DEFAULT_COLS,
      rows: p.rows ?? DEFAULT_ROWS,
      host: 'hub',
      defaultFor,
    });
    ci.start();
    return hub.info(ci);
  }, log);
  client.handle(Kill, async ({ name }) => {
    const ci = cis.require(name);
    await ci.stop();
    return hub.info(ci);
  }, log);
  client.handle(Restart, async ({ name }) => {
    hub.assertAccepting();
    const ci = cis.require(name);
    if (ci.kind === 'process' && ci.record.host === 'client') {
      throw hubError(HubErrorCode.InvalidState, `${name} is run by \`cihub wrap\` in another terminal; restart it there`);
    }
    await ci.restart();
    return hub.info(ci);
  }, log);
  client.handle(Remove, async ({ name }) => {
    await cis.remove(name);
    return null;
  }, log);
  client.handle(Resize, ({ name, cols, rows }) => {
    const ci = cis.require(name);
    ci.terminal.resize(cols, rows);
    return hub.info(ci);
  }, log);
  client.handle(Export, async ({ name, format, session }) => {
    const r = cis.require(name).record;
    return exportCapture(
      hub.paths.stateDir,
      hub.captures.dirOf(name),
      r.kind === 'process' ? { name, command: r.command, cwd: r.cwd, project: r.project } : { name, command: [`${r.provider}:${r.model}`], project: r.project },
      format,
      session,
      hub.mirrors,
      () => hub.bus.history(name),
    );
  }, log);
}
