/**
 * The hub as users drive it through `cihub`: a real hub process per test, in its own CIHUB_HOME.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import {
  FIXTURES,
  ROOT,
  alive,
  ciInfo,
  cihub,
  connect,
  hubLog,
  hubPid,
  makeHome,
  ok,
  sessionMembers,
  sessionsOf,
  startHub,
  waitFor,
  withHub,
  zombieChildren,
  capturedOutput,
  castOutput,
} from './helpers';
import { RawBus } from './fixtures/hardening';
import { Event, List, Receive, Send, Spawn, Status, Watch, type CiInfo, type HubEvent } from '../server/protocol';
import { EVENT_BACKLOG_BYTES } from '../server/rpc';
import { connectSocket, HubClient } from '../client/hubClient';


const mode = (p: string) => fs.statSync(p).mode & 0o777;

test('single instance: a second `cihub hub` reports the running one and exits 0; dirs 0700, socket 0600', async () => {
  await withHub(async (home) => {
    const second = await cihub(['hub'], { env: home.env });
    assert.equal(second.code, 0);
    assert.match(second.stdout, /already running \(pid \d+/);
    assert.equal(mode(home.paths.runtimeDir), 0o700);
    assert.equal(mode(home.paths.stateDir), 0o700);
    assert.equal(mode(home.paths.socket), 0o600);
    assert.equal(fs.statSync(home.paths.socket).isSocket(), true);
    assert.equal(mode(home.paths.lock), 0o600);
  });
});

test('two hubs started at the same moment: exactly one runs', async () => {
  const home = makeHome();
  try {
    const server = path.join(ROOT, 'dist', 'server.js');
    const starts = [0, 1, 2].map(
      () =>
        new Promise<{ code: number | null; stderr: string }>((resolve) => {
          const child = spawn(process.execPath, [server], { env: home.env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
          let stderr = '';
          child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          // The winner keeps running: resolve once it answers; losers exit 0 saying one runs.
          child.on('exit', (code) => resolve({ code, stderr }));
          void waitFor(() => fs.existsSync(home.paths.socket), 10_000, 'socket').then(() =>
            setTimeout(() => resolve({ code: null, stderr }), 500),
          );
        }),
    );
    const results = await Promise.all(starts);
    const running = results.filter((r) => r.code === null);
    assert.equal(running.length, 1, JSON.stringify(results));
    for (const r of results.filter((x) => x.code !== null)) {
      assert.equal(r.code, 0);
      assert.match(r.stderr, /already running/);
    }
  } finally {
    await home.cleanup();
  }
});

test('the CLI without a hub says how to start one and changes nothing', async () => {
  const home = makeHome();
  try {
    for (const args of [['list'], ['status'], ['kill', 'x'], ['spawn', 'x', '--', 'true'], ['attach', 'x']]) {
      const r = await cihub(args, { env: home.env });
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, /^cihub: no hub is running .*start one with `cihub hub`\n$/);
    }
    assert.equal(fs.existsSync(home.paths.socket), false);
    assert.equal(fs.existsSync(path.join(home.paths.stateDir, 'registry.json')), false);
  } finally {
    await home.cleanup();
  }
});

test('spawn, list, status, kill, restart, rm through the CLI', async () => {
  await withHub(async (home, client) => {
    const out = await ok(['spawn', 'reviewer', '--cwd', FIXTURES, '--', 'sh', '-c', 'echo hi from $CIHUB_CI; sleep 60'], home.env);
    assert.match(out, /^spawned reviewer \(pid \d+\)/);
    await waitFor(async () => ((await ciInfo(client, 'reviewer')).bytesCaptured ?? 0) > 0, 15_000, 'output');

    const list = await ok(['list'], home.env);
    assert.match(list, /^NAME\s+KIND\s+STATE\s+PID\s+PROJECT\s+UPTIME\s+CAPTURED/);
    assert.match(list, /\nreviewer\s+process\s+running\s+\d+\s+-\s+\d+s\s+\d+ B/);
    const listed: CiInfo[] = JSON.parse(await ok(['list', '--json'], home.env));
    assert.equal(listed[0].name, 'reviewer');
    assert.equal(listed[0].cwd, FIXTURES);

    const status = JSON.parse(await ok(['status', '--json'], home.env));
    assert.equal(typeof status.hub.pid, 'number');
    assert.equal(status.hub.socket, home.paths.socket);
    assert.equal(status.hub.version, JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
    const st = status.cis[0];
    assert.equal(st.state, 'running');
    assert.ok(st.stats.processes >= 1 && st.stats.rssBytes > 0, JSON.stringify(st.stats));
    assert.equal(typeof st.lastOutputAt, 'number');
    assert.equal(st.attached, 0);
    const human = await ok(['status'], home.env);
    assert.match(human, /hub: pid \d+, version [\d.]+, up \d+s/);
    assert.match(human, /reviewer\s+running\s+\d+\s+.*s\s+[\d.]+ [KM]iB \(\d+p\)/);

    const pid = (await ciInfo(client, 'reviewer')).pid;
    assert.match(await ok(['kill', 'reviewer'], home.env), /^stopped reviewer/);
    assert.equal((await ciInfo(client, 'reviewer')).state, 'stopped');
    assert.ok(pid && !alive(pid));

    assert.match(await ok(['restart', 'reviewer'], home.env), /^restarted reviewer \(pid \d+\)/);
    assert.equal((await ciInfo(client, 'reviewer')).state, 'running');
    await waitFor(() => sessionsOf(home, 'reviewer').length === 2, 15_000, 'a second capture session');

    assert.match(await ok(['rm', 'reviewer'], home.env), /^removed reviewer/);
    assert.deepEqual((await client.call(List, {})).cis, []);
  });
});

test('a missing command or cwd leaves the CI failed with a readable reason, printed by the CLI', async () => {
  await withHub(async (home, client) => {
    const missing = await cihub(['spawn', 'nocmd', '--', 'no-such-agent-xyz'], { env: home.env });
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, "cihub: nocmd failed: command not found: no-such-agent-xyz (not on the CI's PATH; give a full path or fix PATH)\n");
    const info = await ciInfo(client, 'nocmd');
    assert.equal(info.state, 'failed');

    const nocwd = await cihub(['spawn', 'nocwd', '--cwd', '/no/such/dir', '--', 'sh'], { env: home.env });
    assert.equal(nocwd.code, 1);
    assert.match(nocwd.stderr, /^cihub: nocwd failed: working directory \/no\/such\/dir does not exist\n$/);

    const notExec = await cihub(['spawn', 'noexec', '--', path.join(FIXTURES, '..', 'helpers.ts')], { env: home.env });
    assert.equal(notExec.code, 1);
    assert.match(notExec.stderr, /is not executable/);
  });
});

test('bad input gets a one-line error and changes nothing', async () => {
  await withHub(async (home, client) => {
    await ok(['spawn', 'taken', '--', 'sleep', '60'], home.env);
    const cases: [string[], RegExp][] = [
      [['spawn', '', '--', 'true'], /^cihub: a CI name cannot be empty\n$/],
      [['spawn', '../x', '--', 'true'], /^cihub: CI name "\.\.\/x" contains a path separator/],
      [['spawn', 'a/b', '--', 'true'], /^cihub: CI name "a\/b" contains a path separator/],
      [['spawn', 'x'.repeat(64), '--', 'true'], /^cihub: CI name "x+…" is 64 characters; the limit is 63\n$/],
      [['spawn', 'Reviewer', '--', 'true'], /^cihub: CI name "Reviewer" has uppercase letters; use lowercase \("reviewer"\)\n$/],
      [['spawn', '-x', '--', 'true'], /^cihub: /],
      [['spawn', 'taken', '--', 'true'], /^cihub: a CI named "taken" exists already; pick another name or `cihub rm taken` first\n$/],
      [['kill', 'ghost'], /^cihub: no CI named "ghost" \(see `cihub list`\)\n$/],
      [['restart', 'ghost'], /^cihub: no CI named "ghost"/],
      [['attach', 'ghost'], /^cihub: no CI named "ghost"/],
      [['spawn', 'x', '--restart', 'sometimes', '--', 'true'], /^cihub: --restart must be never, on-failure or always \(got "sometimes"\)\n$/],
      [['spawn', 'x'], /^cihub: give the command to run after --/],
      [['frobnicate'], /^cihub: unknown command "frobnicate"/],
    ];
    for (const [args, expected] of cases) {
      const r = await cihub(args, { env: home.env });
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr, expected, args.join(' '));
      assert.ok(r.stderr.split('\n')[0].length > 0);
    }
    const { cis } = await client.call(List, {});
    assert.deepEqual(cis.map((c) => c.name), ['taken']);

    // The RPC layer validates too (the CLI's checks are a convenience).
    await assert.rejects(client.call(Spawn, { kind: 'process', name: 'UP', command: ['true'] }), /name: CI name "UP" has uppercase/);
    await assert.rejects(client.call(Spawn, { kind: 'process', name: 'ok', command: [], cwd: 'relative' }), /command: give a command.*cwd: must be an absolute path/);
  });
});

test('malformed JSON-RPC gets a parse error; the hub keeps serving', async () => {
  await withHub(async (home, client) => {
    const raw = await new Promise<string>((resolve) => {
      const s = net.connect(home.paths.socket);
      let got = '';
      s.on('data', (d) => {
        got += d.toString();
        if (got.includes('}}')) {
          s.destroy();
          resolve(got);
        }
      });
      const body = '{"jsonrpc":"2.0","id":1,"method":';
      s.write(`Content-Length: ${body.length}\r\n\r\n${body}`);
    });
    assert.match(raw, /"id":null,"error":\{"code":-32700,"message":"parse error/);
    const framing = await new Promise<string>((resolve) => {
      const s = net.connect(home.paths.socket);
      let got = '';
      s.on('data', (d) => (got += d.toString()));
      s.on('close', () => resolve(got));
      s.write('{"type":"request","to":"x"}\n\r\n\r\n');
    });
    assert.match(framing, /invalid JSON-RPC framing.*use the bus sockets/);
    const status = await client.call(Status, {});
    assert.equal(status.hub.pid, hubPid(home.paths.lock));
  });
});

test('watching clients that vanish while events flow leave the hub responsive and its log small', async () => {
  await withHub(async (home, client) => {
    await client.call(Spawn, { kind: 'process', name: 'sink', command: ['sleep', '600'] });
    for (let round = 0; round < 10; round++) {
      const socket = await connectSocket(home.paths.socket);
      assert.ok(socket);
      const watcher = HubClient.fromSocket(socket);
      await watcher.call(Watch, {});
      // Events for the watcher are in flight when its connection is reset.
      const sends = Array.from({ length: 100 }, (_, i) => client.call(Send, { message: { to: 'sink', content: `m${round}-${i}` } }));
      socket.destroy();
      await Promise.all(sends);
    }
    const started = Date.now();
    const status = await client.call(Status, {});
    assert.ok(Date.now() - started < 2000, `Status answered in ${Date.now() - started} ms`);
    assert.equal(status.hub.pid, hubPid(home.paths.lock));
    const logBytes = fs.statSync(path.join(home.paths.stateDir, 'hub.log')).size;
    assert.ok(logBytes < 100_000, `hub.log is ${logBytes} bytes`);
  });
});

test('a watching window that stops reading: events past the bound are dropped, one resync counts them, then events flow again', async () => {
  await withHub(async (home, client) => {
    await client.call(Spawn, { kind: 'process', name: 'sink', command: ['sleep', '600'] });
    const socket = await connectSocket(home.paths.socket);
    assert.ok(socket);
    const watcher = HubClient.fromSocket(socket);
    const bus = await RawBus.open(path.join(home.paths.busDir, 'sink.sock'));
    try {
      const events: HubEvent[] = [];
      watcher.on(Event, (event) => void events.push(event));
      await watcher.call(Watch, {});
      socket.pause(); // a window whose extension host is busy

      // Each message is one event of ~4 KB: together over twice the bound (and within the mailbox's limit).
      const content = 'x'.repeat(4000);
      const total = Math.ceil((2 * EVENT_BACKLOG_BYTES) / content.length);
      for (let sent = 0; sent < total; ) {
        let lines = '';
        for (let k = 0; k < 200 && sent < total; k++) lines += `${JSON.stringify({ id: `m${sent++}`, from: 'flood', content })}\n`;
        await bus.write(lines);
        await bus.waitReplies(sent - 2000, 30_000);
      }
      await bus.waitReplies(total, 30_000);
      // The hub stays responsive to others meanwhile.
      assert.equal((await client.call(Status, {})).hub.pid, hubPid(home.paths.lock));

      socket.resume();
      const resync = await waitFor(() => events.find((e): e is Extract<HubEvent, { type: 'resync' }> => e.type === 'resync'), 30_000, 'the resync event');
      const before = events.slice(0, events.indexOf(resync)).filter((e) => e.type === 'message');
      // What came before the resync is the start of the flood, in order, with nothing skipped.
      assert.ok(before.length > 0 && before.length < total, `${before.length} of ${total} message events before the resync`);
      before.forEach((e, i) => assert.equal(e.type === 'message' && e.message.id, `m${i}`));
      // Every event was either sent or counted as dropped.
      assert.ok(before.length + resync.dropped >= total, `${before.length} sent + ${resync.dropped} dropped < ${total}`);

      // Caught up: the next message's event arrives again.
      await client.call(Send, { message: { id: 'after', to: 'sink', content: 'after the resync' } });
      await waitFor(() => events.some((e) => e.type === 'message' && e.message.id === 'after'), 10_000, 'an event after the resync');
      assert.equal(events.filter((e) => e.type === 'resync').length, 1, 'one resync for the whole spell behind');
    } finally {
      bus.close();
      watcher.close();
    }
  });
});

test('a CI gets CIHUB_CI, CIHUB_SOCKET and a working `cihub` on PATH, and none of VS Code\'s own variables', async () => {
  const vscodeEnv = { ELECTRON_RUN_AS_NODE: '1', VSCODE_PID: '123', VSCODE_GIT_ASKPASS_NODE: '/x' };
  await withHub(async (home) => {
    await ok(['spawn', 'inner', '--', 'sh', '-c', 'echo "ci=$CIHUB_CI sock=$CIHUB_SOCKET electron=[$ELECTRON_RUN_AS_NODE] pid=[$VSCODE_PID] git=[$VSCODE_GIT_ASKPASS_NODE]"; cihub list; sleep 30'], { ...home.env, ...vscodeEnv });
    const text = await capturedOutput(home, 'inner', 'CAPTURED'); // `cihub list` run inside the CI
    assert.match(text, new RegExp(`ci=inner sock=${home.paths.socket} electron=\\[\\] pid=\\[\\] git=\\[/x\\]`));
    assert.match(text, /inner\s+process\s+running/);
  });
});

test('the hub starts with its malloc settings and --expose-gc; CIs get the user\'s environment, not those', async () => {
  // The user's own MALLOC_ARENA_MAX wins; MALLOC_MMAP_THRESHOLD_ is the hub's (server/env.ts).
  const home = makeHome();
  Object.assign(home.env, { MALLOC_ARENA_MAX: '4' });
  delete home.env.MALLOC_MMAP_THRESHOLD_;
  await withHub(async (home, client) => {
    const hub = hubPid(home.paths.lock);
    assert.ok(hub);
    const environ = fs.readFileSync(`/proc/${hub}/environ`, 'utf8').split('\0');
    assert.ok(environ.includes('MALLOC_MMAP_THRESHOLD_=131072'), 'the hub runs with the fixed mmap threshold');
    assert.ok(environ.includes('MALLOC_ARENA_MAX=4'), 'the user\'s own value is kept');
    assert.ok(fs.readFileSync(`/proc/${hub}/cmdline`, 'utf8').split('\0').includes('--expose-gc'));
    // No env in the request: the CI inherits the hub's own environment.
    await client.call(Spawn, { kind: 'process', name: 'env', command: ['sh', '-c', 'echo "arena=[$MALLOC_ARENA_MAX] mmap=[$MALLOC_MMAP_THRESHOLD_] added=[$CIHUB_MALLOC_ADDED]"; sleep 30'] });
    const text = await capturedOutput(home, 'env', 'added=');
    assert.match(text, /arena=\[4\] mmap=\[\] added=\[\]/);
  }, home);
});

test('cihub stop: SIGHUP, SIGTERM, then SIGKILL; no process, socket or zombie left behind', async () => {
  const home = makeHome();
  const client = await startHub(home);
  try {
    await ok(['spawn', 'stubborn', '--', path.join(FIXTURES, 'stubborn.sh')], home.env);
    await ok(['spawn', 'forker', '--', path.join(FIXTURES, 'forker.sh')], home.env);
    await ok(['spawn', 'plain', '--', 'sleep', '300'], home.env);
    await ok(['spawn', 'brief', '--', 'true'], home.env);
    await waitFor(async () => (await ciInfo(client, 'brief')).state === 'exited', 15_000, 'brief to exit');
    const stubborn = await waitFor(async () => (await ciInfo(client, 'stubborn')).pid, 15_000, 'pid');
    const forker = await waitFor(async () => (await ciInfo(client, 'forker')).pid, 15_000, 'pid');
    await waitFor(() => sessionMembers(forker).length >= 3, 15_000, 'forker children');
    const hub = hubPid(home.paths.lock);
    assert.ok(hub);
    // CIs that exited were reaped: the hub has no zombie children.
    assert.deepEqual(zombieChildren(hub), []);
    client.close();
    const started = Date.now();
    const r = await cihub(['stop'], { env: home.env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^hub stopped \(pid \d+\)\n$/);
    // stubborn ignores SIGHUP and SIGTERM: it takes the full SIGKILL path, bounded.
    assert.ok(Date.now() - started < 10_000);
    assert.equal(alive(hub), false);
    assert.deepEqual(sessionMembers(stubborn), []);
    assert.deepEqual(sessionMembers(forker), []);
    assert.deepEqual(fs.readdirSync(home.paths.runtimeDir), []);
    const log = hubLog(home);
    assert.match(log, /stubborn: pid \d+ was killed by SIGKILL/);
    assert.match(log, /plain: pid \d+ was killed by SIGHUP/);
  } finally {
    client.close();
    await home.cleanup();
  }
});

test('restart policies: on-failure restarts with growing backoff, never does not', async () => {
  await withHub(async (home, client) => {
    const counter = path.join(home.dir, 'runs');
    await ok(['spawn', 'flaky', '--restart', 'on-failure', '--', path.join(FIXTURES, 'crasher.sh'), counter], home.env);
    await waitFor(async () => ((await ciInfo(client, 'flaky')).restarts ?? 0) >= 2, 10_000, 'two restarts');
    const info = await ciInfo(client, 'flaky');
    assert.ok(['backoff', 'running', 'starting'].includes(info.state), info.state);
    assert.equal(info.exitCode ?? 3, 3);
    // Each run is its own capture session.
    assert.ok(sessionsOf(home, 'flaky').length >= 3);
    assert.match(castOutput(sessionsOf(home, 'flaky')[1]), /run 2/);

    await ok(['spawn', 'once', '--', 'sh', '-c', 'exit 4'], home.env);
    const once = await waitFor(async () => {
      const c = await ciInfo(client, 'once');
      return c.state === 'exited' ? c : undefined;
    }, 15_000, 'exit');
    assert.equal(once.exitCode, 4);
    assert.equal(once.reason, 'exited with code 4');
    assert.equal(once.restarts, 0);
    const listed = await ok(['list'], home.env);
    assert.match(listed, /once\s+process\s+exited \(exited with code 4\)/);
  });
});

test('kill -9 of the hub: the next hub restores the registry, stops survivors and starts CIs in new sessions', async () => {
  const home = makeHome();
  let client = await startHub(home);
  try {
    await ok(['spawn', 'survivor', '--', path.join(FIXTURES, 'stubborn.sh')], home.env);
    await ok(['spawn', 'shell', '--restart', 'always', '--', 'sh', '-c', 'echo up; sleep 300'], home.env);
    await ok(['spawn', 'done', '--', 'true'], home.env);
    await ok(['spawn', 'parked', '--', 'sleep', '300'], home.env);
    await ok(['kill', 'parked'], home.env);
    const oldSurvivor = await waitFor(async () => (await ciInfo(client, 'survivor')).pid, 15_000, 'pid');
    await waitFor(async () => (await ciInfo(client, 'done')).state === 'exited', 15_000, 'done to exit');
    await capturedOutput(home, 'survivor', 'ready');
    const hub = hubPid(home.paths.lock);
    assert.ok(hub);
    client.close();
    process.kill(hub, 'SIGKILL');
    await waitFor(() => !alive(hub), 15_000, 'hub to die');
    // stubborn.sh ignores the SIGHUP of its terminal going away: it outlives the hub.
    assert.ok(alive(oldSurvivor));

    // Any cihub command brings a crashed hub back.
    const r = await cihub(['list'], { env: home.env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /the hub stopped unexpectedly; starting it again/);
    client = await connect(home);
    const survivor = await waitFor(async () => {
      const c = await ciInfo(client, 'survivor');
      return c.state === 'running' && c.pid !== oldSurvivor ? c : undefined;
    }, 10_000, 'survivor restarted');
    assert.ok(survivor.pid);
    await waitFor(() => !alive(oldSurvivor), 15_000, 'the old process to be stopped');
    await waitFor(async () => (await ciInfo(client, 'shell')).state === 'running', 15_000, 'shell running');
    assert.equal((await ciInfo(client, 'done')).state, 'exited');
    assert.equal((await ciInfo(client, 'parked')).state, 'stopped');
    assert.equal(sessionsOf(home, 'survivor').length, 2);
    assert.equal(sessionsOf(home, 'shell').length, 2);
    assert.match(hubLog(home), new RegExp(`survivor: stopped pid ${oldSurvivor} left running by the previous hub`));
  } finally {
    client.close();
    await home.cleanup();
  }
});

test('a request in flight when the hub dies fails with a message, not silence', async () => {
  await withHub(async (home, client) => {
    await ok(['spawn', 'quiet', '--', 'sleep', '300'], home.env);
    const waiting = client.call(Receive, { name: 'quiet', waitMs: 60_000 });
    const hub = hubPid(home.paths.lock);
    assert.ok(hub);
    process.kill(hub, 'SIGKILL');
    await assert.rejects(waiting, /the connection to the hub closed before it answered bus\/receive/);
  });
});
