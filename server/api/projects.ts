/** Requests from VS Code windows: their projects, each project's default CI, and its chat. */
import {
  HubErrorCode,
  ChatAppend,
  ChatHistory,
  ChatSend,
  ChatStop,
  DEFAULT_COLS,
  DEFAULT_ROWS,
  EnsureDefaultCi,
  ListProjects,
  Logs,
  ModelSettings,
  RegisterProjects,
} from '../protocol';
import type { Client } from '../rpc';
import { hubError, notFound } from '../errors';
import { processEnv } from '../env';
import { projectName } from '../bus/bus';
import type { HubContext } from './context';

export function registerProjectRequests(client: Client, hub: HubContext): void {
  const { log, cis, bus, projects, chats } = hub;
  client.onClose(() => projects.drop(client));

  client.handle(RegisterProjects, ({ window, folders }) => {
    client.label = window;
    return { projects: projects.register(client, window, folders) };
  }, log);
  client.handle(ListProjects, () => ({ projects: projects.list() }), log);

  client.handle(EnsureDefaultCi, async ({ project, command, env, policy, model, keep }) => {
    hub.assertAccepting();
    const name = projects.defaultCiOf(project);
    const existing = cis.get(name);
    if (existing) {
      if (keep !== undefined && existing.record.kept !== keep) {
        existing.record.kept = keep;
        cis.persist();
      }
      if (existing.state === 'exited' || existing.state === 'failed' || existing.state === 'stopped') await existing.restart();
      return hub.info(existing);
    }
    if (model) {
      const ci = cis.createModel({ name, project, defaultFor: project, kept: keep, ...ModelSettings.parse(model) });
      ci.start();
      return hub.info(ci);
    }
    if (!command) throw hubError(HubErrorCode.InvalidParams, 'give a command or a model for the default CI');
    const ci = cis.create({
      name,
      command,
      cwd: project,
      env: env ?? processEnv(),
      project,
      restart: 'never',
      policy: policy ?? 'inbox',
      cols: DEFAULT_COLS,
      rows: DEFAULT_ROWS,
      host: 'hub',
      defaultFor: project,
      kept: keep,
    });
    ci.start();
    return hub.info(ci);
  }, log);

  client.handle(ChatHistory, ({ project, limit }) => ({ entries: chats.history(project, limit) }), log);
  client.handle(ChatAppend, ({ project, role, text, format }) => ({ entry: chats.add(project, { role, text, format }) }), log);
  client.handle(ChatSend, async ({ project, to, text, from }) => {
    hub.assertAccepting();
    const ci = cis.get(to);
    if (ci?.kind === 'model') return { entry: await chats.sendToModel(project, ci, text, from) };
    if (ci) return { entry: await chats.sendToProcess(project, ci, text, from) };
    if (!bus.isExternal(to)) throw notFound(to);
    const entry = chats.add(project, { role: 'user', from, to, ci: to, text, format: 'markdown' });
    const { id } = bus.send({ from, to, content: text, project: projectName(project) });
    chats.awaitAnswer(id, project);
    return { entry };
  }, log);
  client.handle(ChatStop, ({ ci: name }) => {
    const ci = cis.get(name);
    if (!ci) throw notFound(name);
    if (ci.kind === 'model') ci.cancel();
    else ci.type('\x03');
    return null;
  }, log);
  client.handle(Logs, () => ({ lines: log.lines() }), log);
}
