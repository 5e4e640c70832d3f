/**
 * The message bus through real sockets and the real hub: framing and bad lines, durability across
 * `kill -9`, delivery policies into a real PTY, external CIs, forwarding, broadcast, ports, timeline.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  FIXTURES,
  alive,
  castOutput,
  ciInfo,
  cihub,
  connect,
  findCi,
  hubLog,
  hubPid,
  makeHome,
  ok,
  sessionsOf,
  startHub,
  waitFor,
  withHub,
  type Home,
} from './helpers';
import { Attach, Input, Receive, Ack, Send, SetConfig, Spawn, Status } from '../server/protocol';
import { INJECT_UNREAD_LIMIT_BYTES } from '../server/bus/bus';

/** A connection to a bus socket: write lines, read reply lines. */
async function busSocket(home: Home, ci: string) {
  const socket = net.connect(path.join(home.paths.busDir, `${ci}.sock`));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const replies: unknown[] = [];
  let buffer = '';
  socket.on('data', (d) => {
    buffer += d.toString();
    let nl;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      replies.push(JSON.parse(buffer.slice(0, nl)));
      buffer = buffer.slice(nl + 1);
    }
  });
  return {
    socket,
    replies,
    write: (data: string | Buffer) => new Promise<void>((r) => socket.write(data, () => r())),
    /** Waits for the n-th reply (1-based). */
    reply: (n: number) => waitFor(() => replies[n - 1], 10_000, `reply ${n}`),
    close: () => socket.destroy(),
  };
}

test('bus socket: one reply per line; split lines, many per write, bad lines, 1 MiB limit; the connection survives', async () => {
  await withHub(async (home, client) => {
    await client.call(Spawn, { kind: 'process', name: 'reviewer', command: ['sleep', '300'] });
    const st = fs.statSync(path.join(home.paths.busDir, 'reviewer.sock'));
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(fs.statSync(home.paths.busDir).mode & 0o777, 0o700);
    const bus = await busSocket(home, 'reviewer');
    // A line split across writes.
    await bus.write('{"type":"request","from":"ops","to":"revie');
    await bus.write('wer","content":"status?"}\n');
    assert.deepEqual(Object.keys((await bus.reply(1)) as object), ['ok', 'id']);
    // Many in one write; `to` defaults to the socket's CI; id and timestamp stamped; an explicit id kept.
    await bus.write('{"content":"a"}\n{"content":"b","id":"my-id-1"}\n{"content":"c","from":"ops"}\n');
    await bus.reply(4);
    assert.deepEqual(bus.replies[2], { ok: true, id: 'my-id-1' });
    // Bad lines: each gets an error, and the connection keeps working.
    const big = JSON.stringify({ content: 'x'.repeat(1024 * 1024 + 10) });
    await bus.write(`not json\n{"content":42}\n{"to":"nobody","content":"x"}\n{"to":"../etc","content":"x"}\n`);
    await bus.write(Buffer.concat([Buffer.from('{"content":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}\n')]));
    await bus.write(`${big}\n`);
    await bus.write('{"content":"after the bad ones"}\n');
    await bus.reply(11);
    const codes = bus.replies.slice(4, 10).map((r) => (r as { error?: { code: string } }).error?.code);
    assert.deepEqual(codes, ['invalid_json', 'invalid_message', 'unknown_recipient', 'invalid_message', 'invalid_utf8', 'too_large']);
    for (const r of bus.replies.slice(4, 10)) assert.match((r as { error: { message: string } }).error.message, /\w/);
    assert.equal((bus.replies[10] as { ok: boolean }).ok, true);
    bus.close();

    const { messages } = await client.call(Receive, { name: 'reviewer', max: 100, waitMs: 0 });
    assert.deepEqual(messages.map((m) => m.content), ['status?', 'a', 'b', 'c', 'after the bad ones']);
    const [first, a, b, c] = messages;
    assert.equal(first.from, 'ops');
    assert.equal(a.from, 'anonymous');
    assert.equal(c.from, 'ops');
    assert.equal(b.id, 'my-id-1');
    assert.equal(a.to, 'reviewer');
    assert.ok(a.timestamp > Date.now() - 60_000 && typeof a.id === 'string' && a.id.length > 8);
    await client.call(Ack, { name: 'reviewer', ids: messages.map((m) => m.id) });
    assert.equal((await ciInfo(client, 'reviewer')).queue?.delivered, 5);
  });
});

test('cihub send from inside a CI is from that CI; recv --wait takes its own messages; priority high first', async () => {
  await withHub(async (home, client) => {
    await client.call(Spawn, { kind: 'process', name: 'asker', command: ['sh', '-c', 'cihub send helper "question from inside"; sleep 300'], env: { ...process.env, ...home.env } as Record<string, string> });
    await client.call(Spawn, { kind: 'process', name: 'helper', command: ['sleep', '300'] });
    const got = await waitFor(async () => {
      const r = await cihub(['recv', 'helper', '--json'], { env: home.env });
      const list = JSON.parse(r.stdout);
      return list.length ? list : undefined;
    }, 15_000, 'the message from inside asker');
    assert.equal(got[0].from, 'asker');
    assert.equal(got[0].content, 'question from inside');
    await ok(['send', 'helper', 'normal one'], home.env);
    await ok(['send', 'helper', '--priority', 'high', 'urgent one'], home.env);
    const order = (await ok(['recv', 'helper'], home.env)).trim().split('\n');
    assert.match(order[0], /\[from anonymous\] \(high\) urgent one/);
    assert.match(order[1], /normal one/);
    // recv --wait returns when a message arrives; exits 1 when it times out. The message is sent once
    // recv is connected (it asks for its messages as soon as it is): this client and recv, no other.
    const clients = async () => (await client.call(Status, {})).hub.clients;
    await waitFor(async () => (await clients()) === 1, 10_000, 'the earlier cihub commands to disconnect');
    const waiting = cihub(['recv', 'helper', '--wait', '--timeout', '20'], { env: home.env });
    await waitFor(async () => (await clients()) === 2, 10_000, '`cihub recv --wait` to connect');
    await ok(['send', 'helper', 'late arrival'], home.env);
    const waited = await waiting;
    assert.equal(waited.code, 0);
    assert.match(waited.stdout, /late arrival/);
    const timedOut = await cihub(['recv', 'helper', '--wait', '--timeout', '0.3'], { env: home.env });
    assert.equal(timedOut.code, 1);
  });
});

test('kill -9 while senders send: every acknowledged message is delivered after a restart, none twice to an acking recv', async () => {
  const home = makeHome();
  let client = await startHub(home);
  try {
    await client.call(Spawn, { kind: 'process', name: 'sink', command: ['sleep', '300'] });
    // Three senders, each sending as fast as replies come back, recording acknowledged ids.
    const acked = new Set<string>();
    const senders = [0, 1, 2].map(async (n) => {
      const bus = await busSocket(home, 'sink');
      let i = 0;
      try {
        for (;;) {
          const id = `s${n}-${i++}`;
          await bus.write(`{"id":"${id}","from":"sender${n}","content":"message ${id}"}\n`);
          const reply = (await waitFor(() => bus.replies[i - 1], 5000, 'reply').catch(() => undefined)) as { ok?: boolean; id?: string } | undefined;
          if (!reply) break;
          if (reply.ok && reply.id) acked.add(reply.id);
        }
      } finally {
        bus.close();
      }
    });
    // Half of the acknowledged messages are taken (and acked) before the crash.
    await waitFor(() => acked.size > 600, 20_000, 'some acknowledged messages');
    const before = await client.call(Receive, { name: 'sink', max: 300, waitMs: 0 });
    await client.call(Ack, { name: 'sink', ids: before.messages.map((m) => m.id) });
    const consumed = new Set(before.messages.map((m) => m.id));
    // …and some are leased but not acked when the hub dies: they must come again.
    const leased = await client.call(Receive, { name: 'sink', max: 50, waitMs: 0 });
    const pid = hubPid(home.paths.lock);
    assert.ok(pid);
    await waitFor(() => acked.size > 1500, 20_000, 'more acknowledged messages');
    process.kill(pid, 'SIGKILL');
    await Promise.all(senders);
    client.close();
    await waitFor(() => !alive(pid), 5000, 'the hub to die');
    const r = await cihub(['list'], { env: home.env });
    assert.equal(r.code, 0, r.stderr);
    client = await connect(home);
    const after: string[] = [];
    for (;;) {
      const { messages } = await client.call(Receive, { name: 'sink', max: 1000, waitMs: 0 });
      if (messages.length === 0) break;
      after.push(...messages.map((m) => m.id));
      await client.call(Ack, { name: 'sink', ids: messages.map((m) => m.id) });
    }
    const delivered = new Set([...consumed, ...after]);
    const lost = [...acked].filter((id) => !delivered.has(id));
    assert.deepEqual(lost, [], `${lost.length} of ${acked.size} acknowledged messages lost`);
    const twice = after.filter((id) => consumed.has(id));
    assert.deepEqual(twice, [], 'messages acked before the crash came again');
    for (const m of leased.messages) assert.ok(after.includes(m.id), `leased-but-unacked ${m.id} must be redelivered`);
    assert.equal(new Set(after).size, after.length, 'no duplicates after the restart');
  } finally {
    client.close();
    await home.cleanup();
  }
});

test('inject: typed into a real PTY once, complete, after provenance; waits while a human types', async () => {
  await withHub(async (home, client) => {
    await client.call(SetConfig, { injectQuietMs: 300, injectHumanIdleMs: 1500 });
    await client.call(Spawn, { kind: 'process', name: 'agent', policy: 'inject', command: [path.join(FIXTURES, 'line-agent.sh')] });
    const [file] = await waitFor(() => (sessionsOf(home, 'agent').length ? sessionsOf(home, 'agent') : undefined), 10_000, 'session');
    await waitFor(() => castOutput(file).includes('line-agent ready'), 10_000, 'agent ready');
    await ok(['send', 'agent', '--from', 'ops', 'please review the diff in src/auth'], home.env);
    await waitFor(() => castOutput(file).includes('RECEIVED<'), 10_000, 'injection');
    await waitFor(() => (castOutput(file).match(/RECEIVED</g) ?? []).length >= 1 && castOutput(file).includes('auth>'), 10_000, 'complete line');
    const received = castOutput(file).match(/RECEIVED<[^>]*>/g) ?? [];
    assert.deepEqual(received, ['RECEIVED<[from ops] please review the diff in src/auth>']);
    // Newlines and escape sequences in content cannot smuggle keystrokes into a plain line reader.
    await ok(['send', 'agent', '--from', 'ops', 'two\nlines \u001b[201~ and an escape'], home.env);
    await waitFor(() => (castOutput(file).match(/RECEIVED</g) ?? []).length === 2, 10_000, 'second injection');
    assert.match(castOutput(file), /RECEIVED<\[from ops\] two lines \[201~ and an escape>/);

    // A human typing in an attached terminal: the message waits until they have been idle.
    const attachId = randomUUID();
    await client.call(Attach, { name: 'agent', attachId, cols: 80, rows: 24 });
    await client.notify(Input, { attachId, data: 'typing by hand' });
    const typedAt = Date.now();
    await ok(['send', 'agent', '--from', 'ops', 'third'], home.env);
    await waitFor(() => castOutput(file).includes('third'), 10_000, 'third injection');
    assert.ok(Date.now() - typedAt >= 1400, 'injected while the human was typing');
    assert.equal((await ciInfo(client, 'agent')).queue?.delivered, 3);
  });
});

test('inject: a CI that stops reading its input gets no more injected messages; they wait in its queue, not in the hub', async () => {
  await withHub(async (home, client) => {
    await client.call(SetConfig, { injectQuietMs: 0, injectHumanIdleMs: 0 });
    // Never reads its terminal. The kernel's PTY buffers take what they take (4 KiB line discipline + 64 KiB
    // flip buffers, more on a busy machine: 106 KB was seen), the hub then holds at most 16 KiB more;
    // without the limit 400 KB would pile up in the hub.
    await client.call(Spawn, { kind: 'process', name: 'deaf', policy: 'inject', command: ['sleep', '600'] });
    const content = 'x'.repeat(2000);
    for (let i = 0; i < 200; i++) await client.call(Send, { message: { to: 'deaf', content: `${i} ${content}` } });
    await waitFor(() => hubLog(home).includes('deaf is not reading its input'), 10_000, 'the hub to notice');
    // Once noticed, nothing more is typed: two more delivery rounds (1 s apart while it does not read) pass.
    const noticed = (await ciInfo(client, 'deaf')).queue;
    await new Promise((r) => setTimeout(r, 2500));
    const queue = (await ciInfo(client, 'deaf')).queue;
    assert.ok(noticed && queue, 'deaf has a queue');
    assert.equal(queue.delivered, noticed.delivered, 'messages were typed after the hub noticed');
    assert.equal(queue.depth + queue.delivered, 200, 'every message is queued or was typed');
    // The rest stayed queued (durable), rather than as unread terminal input in the hub's memory: typed were
    // at most what the kernel took (allowing 112 KiB), the hub's limit, and the message that crossed it.
    const messageBytes = Buffer.byteLength(`[from anonymous]\n199 ${content}`) + 16;
    const mostTyped = Math.ceil((112 * 1024 + INJECT_UNREAD_LIMIT_BYTES) / messageBytes) + 1;
    assert.ok(queue.delivered <= mostTyped, `${queue.delivered} messages typed into a CI that does not read (at most ${mostTyped})`);
  });
});

test('hold: messages wait for approval; approve injects, refuse drops; policy can change', async () => {
  await withHub(async (home, client) => {
    await client.call(SetConfig, { injectQuietMs: 100 });
    await client.call(Spawn, { kind: 'process', name: 'careful', policy: 'hold', command: [path.join(FIXTURES, 'line-agent.sh')] });
    await ok(['send', 'careful', '--from', 'ops', 'run the migration'], home.env);
    await ok(['send', 'careful', '--from', 'ops', 'drop the database'], home.env);
    const info = await ciInfo(client, 'careful');
    assert.equal(info.queue?.held, 2);
    const held = JSON.parse(await ok(['recv', 'careful', '--peek', '--json'], home.env));
    assert.deepEqual(held.map((m: { state: string }) => m.state), ['held', 'held']);
    const drop = held.find((m: { content: string }) => m.content.includes('drop'));
    assert.match(await ok(['refuse', 'careful', drop.id, '--reason', 'no'], home.env), /refused 1/);
    assert.match(await ok(['approve', 'careful'], home.env), /approved 1/);
    const file = sessionsOf(home, 'careful')[0];
    await waitFor(() => castOutput(file).includes('RECEIVED<[from ops] run the migration>'), 10_000, 'approved message injected');
    assert.ok(!castOutput(file).includes('drop the database'));
    assert.match(await ok(['policy', 'careful', 'inbox'], home.env), /kept in its inbox/);
    await ok(['send', 'careful', 'now in the inbox'], home.env);
    assert.match(await ok(['recv', 'careful'], home.env), /now in the inbox/);
    const md = await ok(['export', 'careful', '--format', 'md'], home.env);
    assert.match(md, /\*\*held\*\* ops → careful: run the migration/);
    assert.match(md, /\*\*refused\*\* ops → careful \(no\): drop the database/);
    assert.match(md, /\*\*injected\*\* ops → careful: run the migration/);
  });
});

test('broadcast to * and @project, context prefix across projects, forwarding to a human mailbox, ttl expiry', async () => {
  await withHub(async (home, client) => {
    const app = path.join(home.dir, 'app');
    const web = path.join(home.dir, 'web');
    fs.mkdirSync(app);
    fs.mkdirSync(web);
    for (const [name, project] of [['a1', app], ['a2', app], ['w1', web]] as const) {
      await client.call(Spawn, { kind: 'process', name, project, command: ['sleep', '300'] });
    }
    const all = JSON.parse(await ok(['send', '*', 'stand-up in 5', '--json'], home.env));
    assert.deepEqual(all.recipients.sort(), ['a1', 'a2', 'w1']);
    const proj = JSON.parse(await ok(['send', '@app', 'app only', '--json', '--from', 'w1'], home.env));
    assert.deepEqual(proj.recipients.sort(), ['a1', 'a2']);
    const a1 = JSON.parse(await ok(['recv', 'a1', '--json'], home.env));
    assert.deepEqual(a1.map((m: { content: string }) => m.content), ['stand-up in 5', '[Project: web] app only']);
    assert.equal(all.id, a1[0].id, 'every copy of a broadcast has the same id');
    const w1 = JSON.parse(await ok(['recv', 'w1', '--json'], home.env));
    assert.deepEqual(w1.map((m: { content: string }) => m.content), ['stand-up in 5']);
    const none = await cihub(['send', '@nothing', 'x'], { env: home.env });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no CI belongs to project "nothing"/);

    assert.match(await ok(['forward', 'a2', '--to', 'larry'], home.env), /messages for a2 now go to larry/);
    await ok(['send', 'a2', 'for a2, read by larry'], home.env);
    assert.match(await ok(['recv', 'larry'], home.env), /for a2, read by larry/);
    assert.equal((await ciInfo(client, 'a2')).forwardedTo, 'larry');
    await ok(['unforward', 'a2'], home.env);
    await ok(['send', 'a2', 'back to a2'], home.env);
    assert.match(await ok(['recv', 'a2'], home.env), /back to a2/);
    const loop = await cihub(['forward', 'larry', '--to', 'larry'], { env: home.env });
    assert.equal(loop.code, 1);

    await ok(['send', 'w1', 'short-lived', '--ttl', '0.5'], home.env);
    await waitFor(async () => (await ciInfo(client, 'w1')).queue?.depth === 0, 10_000, 'expiry');
    // The timeline is written in batches (server/textBatch.ts): the record lands moments later.
    const expired = /"outcome":"expired"[^\n]*"content":"short-lived"/;
    await waitFor(() => expired.test(fs.readFileSync(path.join(home.paths.stateDir, 'timeline', 'web.jsonl'), 'utf8')), 5_000, 'the expiry in the timeline');
  });
});

test('an external CI: a socket someone else put in bus/ is listed, gets messages, and its reply comes back', async () => {
  await withHub(async (home, client) => {
    const log = path.join(home.dir, 'external.log');
    const ext = spawn(process.execPath, [path.join(FIXTURES, 'external.js'), path.join(home.paths.busDir, 'oracle.sock'), log]);
    try {
      await waitFor(async () => (await findCi(client, 'oracle'))?.kind === 'external', 10_000, 'oracle listed');
      assert.match(await ok(['list'], home.env), /oracle\s+external\s+running/);
      await client.call(Spawn, { kind: 'process', name: 'asker', command: ['sleep', '300'] });
      await client.call(Send, { message: { from: 'asker', to: 'oracle', content: 'what time is it?' } });
      await waitFor(() => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('what time is it?'), 10_000, 'delivery');
      const reply = await waitFor(async () => {
        const { messages } = await client.call(Receive, { name: 'asker', max: 10, waitMs: 0 });
        return messages[0];
      }, 10_000, 'the response');
      assert.equal(reply.type, 'response');
      assert.equal(reply.from, 'oracle');
      assert.equal(reply.content, 'external got: what time is it?');
      assert.ok(reply.in_reply_to);
    } finally {
      ext.kill();
    }
  });
});

test('Tekton-compatible ports (opt-in): {"content"} in, the CI\'s reply out, loopback only', async () => {
  await withHub(async (home, client) => {
    assert.equal((await ok(['config'], home.env)).match(/^ports.enabled\s+false$/m) !== null, true);
    const project = path.join(home.dir, 'claude-code');
    fs.mkdirSync(project);
    await client.call(Spawn, {
      kind: 'process',
      name: 'project-claude-code-ai',
      project,
      command: [process.execPath, path.join(FIXTURES, 'answerer.js')],
      env: { ...process.env, ...home.env } as Record<string, string>,
    });
    const base = 42100 + Math.floor(Math.random() * 800);
    await ok(['config', 'ports.base', String(base)], home.env);
    await ok(['config', 'ports.enabled', 'true'], home.env);
    const info = await waitFor(async () => (await ciInfo(client, 'project-claude-code-ai')).port, 10_000, 'a port');
    assert.equal(info, base);
    const answer = await new Promise<string>((resolve, reject) => {
      const s = net.connect(base, '127.0.0.1');
      let got = '';
      s.on('data', (d) => {
        got += d.toString();
        if (got.includes('\n')) {
          s.destroy();
          resolve(got);
        }
      });
      s.on('error', reject);
      s.write(`${JSON.stringify({ content: '[Project: Claude-Code] hello' })}\n`);
    });
    const parsed = JSON.parse(answer);
    assert.equal(parsed.content, 'answer: [Project: Claude-Code] hello');
    assert.equal(parsed.from, 'project-claude-code-ai');
    // Bound to loopback only: no other address answers.
    const listening = fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').filter((l) => l.includes(`:${base.toString(16).toUpperCase().padStart(4, '0')} `) && / 0A /.test(l));
    assert.ok(listening.length >= 1);
    for (const line of listening) assert.match(line.trim().split(/\s+/)[1], /^0100007F:/);
    await ok(['config', 'ports.enabled', 'false'], home.env);
    await waitFor(async () => (await ciInfo(client, 'project-claude-code-ai')).port === undefined, 10_000, 'port released');
  });
});
