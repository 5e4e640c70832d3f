/**
 * What VS Code windows use the hub for: the project registry across windows, each project's default CI
 * and its lifetime, and project chats (a message typed into a process CI, its reply rendered as text).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FIXTURES, ciInfo, connect, findCi, makeHome, ok, restartHub, startHub, waitFor, type Home } from './helpers';
import {
  ChatHistory,
  ChatSend,
  EnsureDefaultCi,
  Event,
  List,
  ListProjects,
  RegisterProjects,
  SetConfig,
  Watch,
  Spawn,
  type ChatEntry,
} from '../server/protocol';

function folders(home: Home, ...names: string[]) {
  return names.map((name) => {
    const p = path.join(home.dir, name);
    fs.mkdirSync(p, { recursive: true });
    return { path: p, name: path.basename(p) };
  });
}

test('the project registry is the union of every window, and forgets a window when it disconnects', async () => {
  const home = makeHome();
  const first = await startHub(home);
  const second = await connect(home);
  const third = await connect(home);
  try {
    const [app, lib, web] = folders(home, 'app', 'lib', 'web');
    const events: string[][] = [];
    await first.call(Watch, {});
    first.on(Event, (e) => {
      if (e.type === 'projects') events.push(e.projects.map((p) => `${p.name}:${p.windows}`));
    });
    await first.call(RegisterProjects, { window: 'w1', folders: [app, lib] });
    await second.call(RegisterProjects, { window: 'w2', folders: [web] });
    const { projects } = await third.call(RegisterProjects, { window: 'w3', folders: [app] });
    assert.deepEqual(projects.map((p) => [p.name, p.windows, p.defaultCi]), [
      ['app', 2, 'project-app-ai'],
      ['lib', 1, 'project-lib-ai'],
      ['web', 1, 'project-web-ai'],
    ]);
    second.close();
    await waitFor(async () => (await first.call(ListProjects, {})).projects.length === 2, 10_000, 'web to go');
    // A window changes its folders: the registration is replaced, not added to.
    await third.call(RegisterProjects, { window: 'w3', folders: [] });
    assert.deepEqual((await first.call(ListProjects, {})).projects.map((p) => [p.name, p.windows]), [['app', 1], ['lib', 1]]);
    await waitFor(() => events.some((e) => e.join() === 'app:1,lib:1'), 10_000, 'a projects event');
    // Bad registrations are refused without changing anything.
    await assert.rejects(first.call(RegisterProjects, { window: 'w1', folders: [{ path: 'relative/dir', name: 'x' }] }), /must be an absolute path/);
    assert.equal((await first.call(ListProjects, {})).projects.length, 2);
  } finally {
    first.close();
    third.close();
    await home.cleanup();
  }
});

test('default CIs: created on demand, named per project, kept through a reload, removed after the grace period unless kept', async () => {
  const home = makeHome();
  let window = await startHub(home);
  try {
    await window.call(SetConfig, { defaultCiGraceMs: 1500 });
    const [app, other] = folders(home, 'app', 'other/app');
    await window.call(RegisterProjects, { window: 'w1', folders: [app, other] });
    const ci = await window.call(EnsureDefaultCi, { project: app.path, command: ['sleep', '300'] });
    assert.equal(ci.name, 'project-app-ai');
    assert.equal(ci.project, app.path);
    assert.equal(ci.cwd, app.path);
    // A second folder also named "app" gets a name of its own.
    const twin = await window.call(EnsureDefaultCi, { project: other.path, command: ['sleep', '300'], keep: true });
    assert.match(twin.name, /^project-app-[0-9a-f]{4}-ai$/);
    // Asking again answers with the same CI (same pid).
    assert.equal((await window.call(EnsureDefaultCi, { project: app.path, command: ['sleep', '300'] })).pid, ci.pid);

    // A reload: the window's connection drops and comes back within the grace period.
    window.close();
    window = await connect(home);
    await window.call(RegisterProjects, { window: 'w1-reloaded', folders: [app, other] });
    await new Promise((r) => setTimeout(r, 2000));
    const names = (await window.call(List, {})).cis.map((c) => c.name).sort();
    assert.deepEqual(names, [twin.name, 'project-app-ai'].sort());
    assert.equal((await ciInfo(window, 'project-app-ai')).pid, ci.pid, 'not restarted');

    // The window closes for good: the default CI goes after the grace period; the kept one stays.
    window.close();
    window = await connect(home);
    await waitFor(async () => !(await findCi(window, 'project-app-ai')), 10_000, 'the default CI to be removed');
    assert.ok(await findCi(window, twin.name), 'kept');
  } finally {
    window.close();
    await home.cleanup();
  }
});

test("a project's chat: a message is typed into its CI, the reply streams back as text; history survives a hub restart", async () => {
  const home = makeHome();
  let client = await startHub(home);
  try {
    const [app] = folders(home, 'app');
    await client.call(RegisterProjects, { window: 'w1', folders: [app] });
    await client.call(Watch, {});
    const seen = new Map<string, ChatEntry>();
    const updates: ChatEntry[] = [];
    client.on(Event, (e) => {
      if (e.type !== 'chat' || e.project !== app.path) return;
      seen.set(e.entry.id, e.entry);
      updates.push(e.entry);
    });
    const ci = await client.call(EnsureDefaultCi, { project: app.path, command: [path.join(FIXTURES, 'line-agent.sh')] });
    await waitFor(async () => (await findCi(client, ci.name))?.bytesCaptured, 10_000, 'the agent to start');
    const { entry } = await client.call(ChatSend, { project: app.path, to: ci.name, text: 'hello from the chat' });
    assert.equal(entry.role, 'user');
    assert.equal(entry.to, ci.name);
    const reply = await waitFor(
      () => [...seen.values()].find((e) => e.role === 'ci' && !e.streaming && e.text.includes('RECEIVED<hello from the chat>')),
      15_000,
      'the final reply',
    );
    assert.equal(reply.format, 'terminal');
    assert.ok(!reply.text.includes('\x1b'), 'rendered text, no escape codes');
    assert.ok(updates.some((u) => u.id === reply.id && u.streaming), 'it streamed before it was final');
    // Bus traffic to the project's CI shows in its chat; held messages carry their ids.
    await client.call(Spawn, { kind: 'process', name: 'gate', project: app.path, policy: 'hold', command: ['sleep', '300'] });
    await ok(['send', 'gate', '--from', 'ops', 'may I?'], home.env);
    const held = await waitFor(() => [...seen.values()].find((e) => e.role === 'bus' && e.text === 'may I?'), 10_000, 'the bus entry');
    assert.equal(held.from, 'ops');
    assert.equal(held.to, 'gate');
    assert.equal(held.held?.length, 1);

    // A bad message is refused with a readable error.
    await assert.rejects(client.call(ChatSend, { project: app.path, to: 'nobody', text: 'x' }), /no CI named "nobody"/);

    client = await restartHub(home, client);
    const { entries } = await client.call(ChatHistory, { project: app.path });
    assert.deepEqual(
      entries.filter((e) => e.role !== 'bus').map((e) => [e.role, e.role === 'ci' ? e.text.includes('RECEIVED<hello from the chat>') : e.text]),
      [
        ['user', 'hello from the chat'],
        ['ci', true],
      ],
    );
    assert.ok(entries.some((e) => e.role === 'bus' && e.text === 'may I?'));
  } finally {
    client.close();
    await home.cleanup();
  }
});
