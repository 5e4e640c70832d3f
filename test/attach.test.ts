/**
 * Attaching to a CI's terminal: replay then live, several clients, resize ownership, a slow client that
 * never stalls the agent or anyone else, and `cihub wrap`.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { connectSocket, HubClient } from '../client/hubClient';
import { Attach, AttachEnded, AttachResize, Detach, Input, Output, Spawn, Wrap, WrapExit, WrapOutput } from '../server/protocol';
import { Pty, type PtyExit } from '../server/pty';
import { processEnv } from '../server/env';
import { CIHUB, capturedOutput, castOutput, ciInfo, findCi, makeHome, sessionsOf, waitFor, connect, ok, withHub } from './helpers';

type Kind = 'replay' | 'live' | 'resync';

/**
 * An attachment seen from a client: what it received, by kind. Chunks are kept as a list (joining a
 * 40 MB string on every poll would make the test itself the slow client).
 */
function watch(client: HubClient, attachId: string) {
  const chunks: Record<Kind, string[]> = { replay: [], live: [], resync: [] };
  const seen = {
    kinds: [] as Kind[],
    ended: undefined as string | undefined,
    all: (kind: Kind) => chunks[kind].join(''),
    /** The last ~64 KiB received as `kind`. */
    tail: (kind: Kind) => chunks[kind].slice(-4).join('').slice(-65536),
    get replay() {
      return this.all('replay');
    },
    get live() {
      return this.all('live');
    },
    get resync() {
      return this.all('resync');
    },
  };
  client.on(Output, (o) => {
    if (o.attachId !== attachId) return;
    chunks[o.kind].push(o.data);
    seen.kinds.push(o.kind);
  });
  client.on(AttachEnded, (e) => {
    if (e.attachId === attachId) seen.ended = e.reason;
  });
  return seen;
}


test('attach replays the current screen, then streams live; input reaches the agent', async () => {
  await withHub(async (home, client) => {
    await client.call(Spawn, {
      kind: 'process',
      name: 'agent',
      command: ['sh', '-c', 'for i in 1 2 3; do echo "line $i"; done; while read x; do echo "got:$x"; done'],
    });
    await capturedOutput(home, 'agent', 'line 3');
    const attachId = randomUUID();
    const seen = watch(client, attachId);
    const ci = await client.call(Attach, { name: 'agent', attachId, cols: 80, rows: 24 });
    assert.equal(ci.attached, 1);
    await waitFor(() => seen.replay.includes('line 3'), 15_000, 'replay');
    assert.match(seen.replay, /line 1[\s\S]*line 2[\s\S]*line 3/);
    assert.equal(seen.kinds[0], 'replay');
    await client.notify(Input, { attachId, data: 'hello\r' });
    await waitFor(() => seen.live.includes('got:hello'), 15_000, 'live echo');
    await client.notify(Detach, { attachId });
    await waitFor(async () => (await ciInfo(client, 'agent')).attached === 0, 15_000, 'detach');
    assert.equal((await ciInfo(client, 'agent')).state, 'running');
  });
});

test('several clients at once: input from any goes in, all see output; size follows the most recent attach', async () => {
  await withHub(async (home, a) => {
    const b = await connect(home);
    try {
      await a.call(Spawn, { kind: 'process', name: 'shared', command: ['sh', '-c', 'while read x; do echo "got:$x"; stty size; done'] });
      const idA = randomUUID();
      const idB = randomUUID();
      const seenA = watch(a, idA);
      const seenB = watch(b, idB);
      await a.call(Attach, { name: 'shared', attachId: idA, cols: 100, rows: 30 });
      assert.equal((await ciInfo(a, 'shared')).cols, 100);
      await b.call(Attach, { name: 'shared', attachId: idB, cols: 90, rows: 20 });
      const sized = await ciInfo(a, 'shared');
      assert.deepEqual([sized.cols, sized.rows, sized.attached], [90, 20, 2]);
      await b.notify(Input, { attachId: idB, data: 'from-b\r' });
      await waitFor(() => seenA.live.includes('got:from-b') && seenB.live.includes('got:from-b'), 15_000, 'both see b');
      await waitFor(() => seenA.live.includes('20 90'), 15_000, 'the agent sees 90x20');
      await a.notify(Input, { attachId: idA, data: 'from-a\r' });
      await waitFor(() => seenA.live.includes('got:from-a') && seenB.live.includes('got:from-a'), 15_000, 'both see a');
      // A resize from the older attachment does not take the size back…
      await a.notify(AttachResize, { attachId: idA, cols: 110, rows: 33 });
      await b.notify(AttachResize, { attachId: idB, cols: 95, rows: 21 });
      await waitFor(async () => (await ciInfo(a, 'shared')).cols === 95, 15_000, 'b resizes');
      // …until the most recent one leaves.
      await b.notify(Detach, { attachId: idB });
      await waitFor(async () => (await ciInfo(a, 'shared')).cols === 110, 15_000, 'size back to a');
    } finally {
      b.close();
    }
  });
});

test('a client that stops reading never stalls the agent, the capture or other clients; it is resynced', async () => {
  await withHub(async (home, other) => {
    const rawSlow = await connectSocket(home.paths.socket);
    assert.ok(rawSlow);
    const slow = HubClient.fromSocket(rawSlow);
    try {
      // 40 MB of output, a marker, then the agent answers lines: proof it still runs and reads.
      const line = 'abcdefghijklmnopqrstuvwxyz0123456789';
      await other.call(Spawn, {
        kind: 'process',
        name: 'flood',
        command: ['sh', '-c', `read go; yes ${line} | head -c 40000000; echo FLOOD-DONE; while read x; do echo "after:$x"; done`],
      });
      const idOther = randomUUID();
      const idSlow = randomUUID();
      const seenOther = watch(other, idOther);
      const seenSlow = watch(slow, idSlow);
      await slow.call(Attach, { name: 'flood', attachId: idSlow, cols: 80, rows: 24, readOnly: true });
      await other.call(Attach, { name: 'flood', attachId: idOther, cols: 80, rows: 24 });
      await waitFor(() => seenSlow.kinds.includes('replay'), 15_000, 'the slow client to be attached');
      rawSlow.pause();
      await other.notify(Input, { attachId: idOther, data: 'go\r' });
      // The agent runs to the end although one client reads nothing: its capture holds every byte.
      const [file] = sessionsOf(home, 'flood');
      const expected = (40_000_000 / (line.length + 1)) * (line.length + 2);
      await waitFor(() => {
        const out = castOutput(file);
        return out.includes('FLOOD-DONE') ? out : undefined;
      }, 60_000, 'the flood to reach the capture').then((out) => {
        const body = out.slice(out.indexOf('go\r\n') + 4, out.indexOf('FLOOD-DONE'));
        assert.ok(Math.abs(body.length - expected) <= line.length + 2, `capture holds ${body.length} of ~${expected}`);
      });
      // The other client reaches the end (live, or resynced if it fell behind) and is live afterwards.
      await waitFor(() => seenOther.tail('live').includes('FLOOD-DONE') || seenOther.tail('resync').includes('FLOOD-DONE'), 30_000, 'the other client to see the end');
      await other.notify(Input, { attachId: idOther, data: 'ping\r' });
      await waitFor(() => seenOther.tail('live').includes('after:ping'), 10_000, 'live output after the flood');
      // The paused client was cut off at a bound instead of buffering the flood for it.
      const received = seenSlow.all('live').length + seenSlow.all('replay').length;
      assert.ok(received < 8 * 1024 * 1024, `slow client got ${received} chars while paused`);
      rawSlow.resume();
      await waitFor(() => seenSlow.kinds.includes('resync'), 30_000, 'a resync for the slow client');
      await waitFor(() => /FLOOD-DONE|after:ping/.test(seenSlow.tail('resync') + seenSlow.tail('live')), 30_000, 'the slow client to catch up');
      assert.ok(seenSlow.all('resync').startsWith('\x1bc'));
    } finally {
      slow.close();
    }
  });
});

test('cihub wrap: runs here, transparently; listed, captured and attachable elsewhere; starts the hub', async () => {
  const home = makeHome();
  try {
    // The test plays the user's terminal: a PTY running `cihub wrap`. No hub runs yet.
    let screen = '';
    let exit: PtyExit | undefined;
    const term = Pty.spawn(
      {
        file: process.execPath,
        args: [CIHUB, 'wrap', '--name', 'wrapped', '--', 'sh', '-c', 'echo "wrapped-out $CIHUB_CI"; read x; echo "got:$x"; read y; echo "and:$y"; exit 5'],
        cwd: home.dir,
        env: { ...processEnv(home.env), TERM: 'xterm-256color' },
        cols: 100,
        rows: 30,
      },
      (d) => (screen += d.toString()),
      (e) => (exit = e),
    );
    await waitFor(() => screen.includes('wrapped-out wrapped'), 15_000, 'wrapped output on the local terminal');
    const client = await waitFor(() => connect(home).catch(() => undefined), 10_000, 'the hub wrap started');
    try {
      const ci = await waitFor(() => findCi(client, 'wrapped'), 15_000, 'listed');
      assert.equal(ci.host, 'client');
      assert.equal(ci.state, 'running');
      assert.equal(ci.cwd, home.dir);
      // Typed locally: goes through unchanged.
      term.write('local\r');
      await waitFor(() => screen.includes('got:local'), 15_000, 'local input');
      // Typed by a client attached elsewhere: reaches the wrapped command too.
      const attachId = randomUUID();
      const seen = watch(client, attachId);
      await client.call(Attach, { name: 'wrapped', attachId, cols: 80, rows: 24 });
      await waitFor(() => seen.replay.includes('got:local'), 15_000, 'replay of the wrapped screen');
      await client.notify(Input, { attachId, data: 'remote\r' });
      await waitFor(() => screen.includes('and:remote'), 15_000, 'remote input on the local terminal');
      await waitFor(() => exit !== undefined, 15_000, 'wrap to exit');
      assert.deepEqual(exit, { exitCode: 5 });
      const done = await waitFor(async () => {
        const c = await findCi(client, 'wrapped');
        return c?.state === 'exited' ? c : undefined;
      }, 15_000, 'exited in the hub');
      assert.equal(done.exitCode, 5);
      const cast = castOutput(sessionsOf(home, 'wrapped')[0]);
      assert.match(cast, /wrapped-out wrapped[\s\S]*got:local[\s\S]*and:remote/);
      const export_ = await ok(['export', 'wrapped', '--format', 'jsonl'], home.env);
      const inputs = export_.trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.type === 'input').map((l) => l.data);
      assert.deepEqual(inputs, ['local\r', 'remote\r']);
    } finally {
      client.close();
    }
  } finally {
    await home.cleanup();
  }
});

test('what a client sends just before hanging up is handled: a wrap reports its exit code and closes at once', () =>
  withHub(async (home, client) => {
    // A session leader standing in for the wrapped command (the hub reaps its session on exit).
    const stand = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
    try {
      for (const [i, exitCode] of [3, 4, 5, 6, 7].entries()) {
        const name = `hangup-${i}`;
        const wrapper = await connect(home);
        await wrapper.call(Wrap, { name, command: ['sleep', '60'], cwd: home.dir, pid: stand.pid ?? 0, cols: 80, rows: 24 });
        // Output, exit and hang-up reach the hub together, as when `cihub wrap` ends.
        void wrapper.notify(WrapOutput, { name, data: `last words ${i}\r\n` });
        await wrapper.notify(WrapExit, { name, exitCode });
        wrapper.close();
        const done = await waitFor(async () => {
          const c = await ciInfo(client, name);
          return c.state === 'exited' ? c : undefined;
        }, 10_000, `${name} to end`);
        assert.deepEqual({ exitCode: done.exitCode, signal: done.signal, reason: done.reason }, { exitCode, signal: undefined, reason: `exited with code ${exitCode}` });
        assert.match(castOutput(sessionsOf(home, name)[0]), new RegExp(`last words ${i}`));
      }
    } finally {
      stand.kill('SIGKILL');
    }
  }));

test('attach via the CLI: replay, typing, and the detach key', async () => {
  await withHub(async (home, client) => {
    await client.call(Spawn, { kind: 'process', name: 'repl', command: ['sh', '-c', 'echo ready-prompt; while read x; do echo "echo:$x"; done'] });
    await capturedOutput(home, 'repl', 'ready-prompt');
    let screen = '';
    let exit: PtyExit | undefined;
    const term = Pty.spawn(
      { file: process.execPath, args: [CIHUB, 'attach', 'repl'], cwd: home.dir, env: processEnv(home.env), cols: 90, rows: 25 },
      (d) => (screen += d.toString()),
      (e) => (exit = e),
    );
    await waitFor(() => screen.includes('ready-prompt'), 10_000, 'replayed screen');
    term.write('typed\r');
    await waitFor(() => screen.includes('echo:typed'), 15_000, 'typed line echoed by the agent');
    term.write('\x1d');
    await waitFor(() => exit !== undefined, 15_000, 'detach');
    assert.deepEqual(exit, { exitCode: 0 });
    assert.match(screen, /detached from repl \(it keeps running\)/);
    const ci = await ciInfo(client, 'repl');
    assert.equal(ci.state, 'running');
    assert.equal(ci.attached, 0);
    assert.equal(ci.cols, 90);
  });
});
