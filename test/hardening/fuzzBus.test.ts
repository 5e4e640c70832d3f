/**
 * Hardening 1a: bus sockets under hostile input. Seeded and bounded: FUZZ_SEED=<n> reproduces a run
 * (the seed is printed). Every line written to `bus/<ci>.sock` must get exactly one reply line — `ok`
 * with an id, or an error with a known code and a message — whose outcome matches an oracle built from
 * the documented contract (README "The message bus": too_large, invalid_utf8, invalid_json,
 * invalid_message, unknown_recipient, in that order); the connection must stay usable, the hub must keep
 * answering Status, and the state written by the valid traffic must load again after a restart.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as os from 'node:os';
import * as fs from 'node:fs';
import { BUS_LINE_LIMIT_BYTES, BusErrorCode, MessageInput, Peek, Spawn, Status } from '../../server/protocol';
import { hubLog, ok, restartHub, within, withHub, type Home } from '../helpers';
import {
  RawBus,
  assertResponsive,
  deepJson,
  problemLines,
  randomChunks,
  randomJson,
  nastyString,
  testRng,
  wrongTypeFor,
  type Rng,
} from '../fixtures/hardening';

const BATCHES = Number(process.env.FUZZ_BUS_BATCHES ?? 30);
const LINES_PER_BATCH = 40;
const STATUS_DEADLINE_MS = 3000;
const PROJECT_NAME = 'fuzzproj';

/** What the hub must answer to a line: a code, `ok`, or nothing (an empty line is not a message). */
type Expect = 'ok' | BusErrorCode | null;

interface Line {
  bytes: Buffer;
  why: string;
}

interface Oracle {
  expect: Expect;
  /** For `ok`: who receives it (mailboxes), unless it may expire. */
  recipients?: string[];
  id?: string;
}

const KNOWN = new Set(['target', 'peer']);

/** The documented outcome of a line written to `bus/target.sock`. */
function oracle(bytes: Buffer): Oracle {
  if (bytes.length > BUS_LINE_LIMIT_BYTES) return { expect: 'too_large' };
  const line = bytes[bytes.length - 1] === 0x0d ? bytes.subarray(0, -1) : bytes;
  if (line.length === 0) return { expect: null };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(line);
  } catch {
    return { expect: 'invalid_utf8' };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { expect: 'invalid_json' };
  }
  const parsed = MessageInput.safeParse(value);
  if (!parsed.success) return { expect: 'invalid_message' };
  const m = parsed.data;
  const to = m.to ?? 'target';
  const from = m.from ?? 'anonymous';
  let recipients: string[];
  if (to === '*') recipients = [...KNOWN].filter((n) => n !== from);
  else if (to.startsWith('@')) {
    if (to.slice(1) !== PROJECT_NAME) return { expect: 'unknown_recipient' };
    recipients = ['peer'].filter((n) => n !== from);
  } else if (KNOWN.has(to)) recipients = [to];
  else return { expect: 'unknown_recipient' };
  return { expect: 'ok', recipients: m.ttl === undefined ? recipients : [], id: m.id };
}

function validMessage(rng: Rng): Record<string, unknown> {
  const m: Record<string, unknown> = { content: rng.bool(0.2) ? nastyString(rng) : `hello ${rng.int(0, 1e9)}` };
  if (rng.bool(0.5)) m.to = rng.pick(['target', 'peer', '*', `@${PROJECT_NAME}`]);
  if (rng.bool(0.3)) m.from = rng.pick(['ops', 'peer', 'target', 'a person', 'port:127.0.0.1:5555']);
  if (rng.bool(0.3)) m.type = rng.pick(['request', 'response', 'note_1', 'x-y']);
  if (rng.bool(0.2)) m.priority = rng.pick(['high', 'normal']);
  if (rng.bool(0.2)) m.id = `fz-${rng.int(0, 1e9)}`;
  if (rng.bool(0.1)) m.in_reply_to = `r-${rng.int(0, 1e6)}`;
  if (rng.bool(0.1)) m.project = 'someproject';
  if (rng.bool(0.1)) m.timestamp = rng.int(0, 2e12);
  return m;
}

const FIELDS = ['id', 'type', 'from', 'to', 'content', 'timestamp', 'in_reply_to', 'project', 'priority', 'ttl'] as const;

const INVALID_UTF8 = [[0xff], [0xfe], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x80], [0xf4, 0x90, 0x80, 0x80]];

function insertAt(base: Buffer, at: number, piece: Buffer): Buffer {
  return Buffer.concat([base.subarray(0, at), piece, base.subarray(at)]);
}

/** One hostile (or sometimes valid) line, never containing a newline. */
function randomLine(rng: Rng): Line {
  const valid = Buffer.from(JSON.stringify(validMessage(rng)));
  switch (rng.int(0, 15)) {
    case 0: {
      const b = rng.bytes(rng.int(1, 2000));
      for (let i = 0; i < b.length; i++) if (b[i] === 0x0a) b[i] = 0x20;
      return { bytes: b, why: 'random bytes' };
    }
    case 1:
      return { bytes: valid.subarray(0, rng.int(0, valid.length - 1)), why: 'truncated JSON' };
    case 2: {
      const m = validMessage(rng);
      const field = rng.pick(FIELDS);
      m[field] = wrongTypeFor(rng, typeof m[field] === 'number' || field === 'timestamp' || field === 'ttl' ? 1 : 'x');
      return { bytes: Buffer.from(JSON.stringify(m)), why: `wrong type for ${field}` };
    }
    case 3:
      return { bytes: insertAt(valid, rng.int(0, valid.length), Buffer.from(rng.pick(INVALID_UTF8))), why: 'invalid UTF-8' };
    case 4: {
      const ctl = Buffer.from([rng.pick([0x00, 0x01, 0x07, 0x08, 0x0b, 0x0c, 0x1b, 0x7f, 0x0d])]);
      return { bytes: insertAt(valid, rng.int(0, valid.length), ctl), why: 'raw control byte' };
    }
    case 5: {
      const m = validMessage(rng);
      const field = rng.pick(['from', 'content', 'to', 'id', 'type', 'project', 'in_reply_to']);
      m[field] = rng.pick(['a\u0000b', '\u0000', 'x\u001b[2J', 'tab\there', 'nl\nin', 'del\u007f', '\u2028']);
      return { bytes: Buffer.from(JSON.stringify(m)), why: `escaped control chars in ${field}` };
    }
    case 6: {
      const m = validMessage(rng);
      m.to = rng.pick(['../x', '*', '@', '@nope', '@' + 'p'.repeat(70), 'a'.repeat(64), 'a'.repeat(63), 'x'.repeat(20_000), '', ' target', 'target ', 'TARGET', 'tar/get', '..', '.', '@*', '**', 'target\u0000']);
      return { bytes: Buffer.from(JSON.stringify(m)), why: `to=${JSON.stringify(String(m.to).slice(0, 30))}` };
    }
    case 7: {
      const m = validMessage(rng);
      const field = rng.pick(['from', 'id', 'project', 'in_reply_to', 'type']);
      m[field] = rng.pick(['f'.repeat(128), 'f'.repeat(129), 'x'.repeat(100_000)]);
      return { bytes: Buffer.from(JSON.stringify(m)), why: `long ${field}` };
    }
    case 8: {
      const depth = rng.pick([100, 5000, 100_000]);
      const where = rng.int(0, 2);
      const deep = deepJson(depth, rng.pick(['array', 'object'] as const));
      const text = where === 0 ? deep : where === 1 ? `{"content":${deep}}` : `{"content":"deep","extra":${deep}}`;
      return { bytes: Buffer.from(text), why: `nested depth ${depth}` };
    }
    case 9:
      return { bytes: Buffer.from(JSON.stringify(randomJson(rng))), why: 'random JSON value' };
    case 10: {
      if (rng.bool(0.15)) {
        // Over the limit, or just under it (which must be accepted).
        const over = rng.bool();
        const pad = BUS_LINE_LIMIT_BYTES - '{"content":""}'.length + (over ? rng.int(1, 5000) : -rng.int(0, 10));
        return { bytes: Buffer.from(`{"content":"${'x'.repeat(pad)}"}`), why: over ? 'over the line limit' : 'just under the line limit' };
      }
      return { bytes: Buffer.from(''), why: 'empty line' };
    }
    case 11:
      return { bytes: Buffer.from(rng.pick(['\r', ' ', '\t', 'null', '[]', '{}', '""', '0', 'true', '{"content":null}', '{"content":"x"}\r', '\ufeff{"content":"bom"}', '{"content":"x","content":5}', '{"__proto__":{"content":"x"}}', '{"constructor":{"prototype":{"polluted":1}},"content":"x"}'])), why: 'small oddity' };
    case 12: {
      const m = validMessage(rng);
      m.ttl = rng.pick([0, -1, 1e-9, 31_536_000, 31_536_001, 'x', null]);
      return { bytes: Buffer.from(JSON.stringify(m)), why: 'ttl edge' };
    }
    case 13: {
      const m = validMessage(rng);
      m.priority = rng.pick(['HIGH', 'urgent', 1, null, 'low']);
      return { bytes: Buffer.from(JSON.stringify(m)), why: 'priority edge' };
    }
    default:
      return { bytes: valid, why: 'valid message' };
  }
}

/** Every field with every wrong type, in order (a systematic sweep before the random batches). */
function fieldSweep(): Line[] {
  const wrong: unknown[] = [null, true, 0, -1, 1.5, '', 'x', [], ['x'], {}, { a: 1 }];
  const out: Line[] = [];
  for (const field of FIELDS) {
    for (const value of wrong) {
      out.push({ bytes: Buffer.from(JSON.stringify({ content: 'sweep', [field]: value })), why: `sweep ${field}=${JSON.stringify(value)}` });
    }
  }
  return out;
}

interface Reply {
  ok: boolean;
  id?: string;
  error?: { code: string; message: string };
}

function parseReply(raw: string, context: string): Reply {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    assert.fail(`reply is not JSON: ${raw.slice(0, 200)} (${context})`);
  }
  assert.ok(value && typeof value === 'object', `reply is not an object (${context})`);
  const r = value as Reply;
  if (r.ok === true) {
    assert.equal(typeof r.id, 'string', `ok reply without an id (${context})`);
    assert.ok((r.id ?? '').length > 0, `ok reply with an empty id (${context})`);
  } else {
    assert.equal(r.ok, false, `reply has no boolean ok (${context}): ${raw.slice(0, 200)}`);
    assert.ok(BusErrorCode.safeParse(r.error?.code).success, `unknown error code ${r.error?.code} (${context})`);
    assert.equal(typeof r.error?.message, 'string', `error without a message (${context})`);
    assert.ok((r.error?.message ?? '').trim().length > 0, `error with an empty message (${context})`);
  }
  return r;
}

test('fuzz bus socket lines: one reply per line, matching the contract; connection, hub and state survive', { timeout: 120_000 }, async (t) => {
  const rng = testRng('bus lines', (l) => t.diagnostic(l));
  const started = Date.now();
  const projectDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fzp-'));
  const project = path.join(projectDir, PROJECT_NAME);
  fs.mkdirSync(project);
  let home: Home | undefined;
  try {
    await withHub(async (h, client) => {
      home = h;
      await client.call(Spawn, { kind: 'process', name: 'target', command: ['sleep', '600'] });
      await client.call(Spawn, { kind: 'process', name: 'peer', command: ['sleep', '600'], project });
      const garbage = await RawBus.open(path.join(h.paths.busDir, 'target.sock'));
      const bystander = await RawBus.open(path.join(h.paths.busDir, 'peer.sock'));
      /** ids the hub acknowledged, by mailbox: they must be in the queues, before and after a restart. */
      const delivered = new Map<string, Set<string>>([
        ['target', new Set()],
        ['peer', new Set()],
      ]);
      const counts = new Map<string, number>();
      let sentLines = 0;
      let bystanderSent = 0;
      const batches: Line[][] = [fieldSweep()];
      for (let b = 0; b < BATCHES; b++) batches.push(Array.from({ length: LINES_PER_BATCH }, () => randomLine(rng)));
      for (const [b, lines] of batches.entries()) {
        const sentinelId = `sentinel-${b}`;
        const all = [...lines, { bytes: Buffer.from(JSON.stringify({ id: sentinelId, content: 'sentinel' })), why: 'sentinel' }];
        const oracles = all.map((l) => oracle(l.bytes));
        const expected = all.map((l, i) => ({ line: l, oracle: oracles[i] })).filter((x) => x.oracle.expect !== null);
        const before = garbage.replies.length;
        const data = Buffer.concat(all.flatMap((l) => [l.bytes, Buffer.from('\n')]));
        for (const chunk of randomChunks(rng, data, 12)) {
          await garbage.write(chunk);
          if (rng.bool(0.3)) await new Promise((r) => setImmediate(r));
        }
        sentLines += all.length;
        // The sentinel's reply is the last one of the batch: when it is in, every earlier one is too.
        await garbage.waitReplies(before + expected.length, 20_000);
        const got = garbage.replies.slice(before);
        assert.equal(got.length, expected.length, `batch ${b}: ${got.length} replies for ${expected.length} lines`);
        for (const [i, { line, oracle: o }] of expected.entries()) {
          const context = `batch ${b} line ${i} (${line.why}): ${line.bytes.subarray(0, 120).toString('utf8')}`;
          const reply = parseReply(got[i], context);
          const code = reply.ok ? 'ok' : reply.error?.code;
          counts.set(code ?? '?', (counts.get(code ?? '?') ?? 0) + 1);
          assert.equal(code, o.expect, `${context}\n  reply: ${got[i].slice(0, 300)}`);
          if (reply.ok && o.id !== undefined) assert.equal(reply.id, o.id, `explicit id not kept (${context})`);
          if (reply.ok) for (const r of o.recipients ?? []) delivered.get(r)?.add(reply.id ?? '');
        }
        const last = JSON.parse(got[got.length - 1]) as Reply;
        assert.deepEqual(last, { ok: true, id: sentinelId }, `batch ${b}: the connection is not usable after the garbage`);
        delivered.get('target')?.add(sentinelId);
        // Another connection is not disturbed.
        const bid = `bystander-${b}`;
        await bystander.write(`{"id":"${bid}","content":"still here"}\n`);
        bystanderSent++;
        await bystander.waitReplies(bystanderSent, 5000);
        assert.deepEqual(JSON.parse(bystander.replies[bystanderSent - 1]), { ok: true, id: bid });
        delivered.get('peer')?.add(bid);
        await assertResponsive(h, STATUS_DEADLINE_MS, `after batch ${b}`);
      }
      t.diagnostic(`${sentLines} lines in ${batches.length} batches; replies by code: ${JSON.stringify(Object.fromEntries(counts))}`);
      garbage.close();
      bystander.close();

      const inQueue = async (name: string) => new Set((await client.call(Peek, { name })).messages.map((m) => m.id));
      for (const [name, ids] of delivered) {
        const queued = await inQueue(name);
        const missing = [...ids].filter((id) => !queued.has(id));
        assert.deepEqual(missing, [], `${name}: acknowledged messages missing before the restart`);
      }

      // The state on disk still loads: stop, start again, list, and the acknowledged messages are there.
      const logBefore = hubLog(h).length;
      const again = await restartHub(h, client);
      try {
        const list = await ok(['list'], h.env);
        assert.match(list, /target/);
        assert.match(list, /peer/);
        for (const [name, ids] of delivered) {
          const queued = new Set((await again.call(Peek, { name })).messages.map((m) => m.id));
          const missing = [...ids].filter((id) => !queued.has(id));
          assert.deepEqual(missing, [], `${name}: acknowledged messages missing after the restart`);
        }
        const problems = problemLines(h, logBefore).filter((l) => /damaged|corrupt|invalid|skipped|not valid/i.test(l));
        assert.deepEqual(problems, [], 'valid traffic left damaged state behind');
      } finally {
        again.close();
      }
    });
  } finally {
    fs.rmSync(projectDir, { recursive: true, force: true });
    t.diagnostic(`took ${((Date.now() - started) / 1000).toFixed(1)} s${home ? '' : ' (no hub)'}`);
  }
});

test('senders that vanish mid-line or mid-batch leave the hub responsive and the socket usable', { timeout: 60_000 }, async (t) => {
  const rng = testRng('bus disconnects', (l) => t.diagnostic(l));
  await withHub(async (h, client) => {
    await client.call(Spawn, { kind: 'process', name: 'target', command: ['sleep', '600'] });
    const sock = path.join(h.paths.busDir, 'target.sock');
    for (let i = 0; i < 60; i++) {
      const bus = await RawBus.open(sock);
      const valid = Buffer.from(`${JSON.stringify({ id: `vanish-${i}`, content: 'x' })}\n`);
      const junk = rng.bytes(rng.int(1, 3000));
      // Half a line, a line and a half, or garbage; then gone, at once or right after the write.
      const data = rng.pick([valid.subarray(0, rng.int(1, valid.length - 1)), Buffer.concat([valid, valid.subarray(0, 5)]), junk]);
      if (rng.bool()) {
        bus.socket.write(data);
        bus.close();
      } else {
        await bus.write(data).catch(() => undefined);
        bus.socket.end();
      }
    }
    await assertResponsive(h, STATUS_DEADLINE_MS, 'after 60 vanished senders');
    const bus = await RawBus.open(sock);
    await bus.write('{"id":"after-vanishing","content":"still works"}\n');
    await bus.waitReplies(1, 5000);
    assert.deepEqual(JSON.parse(bus.replies[0]), { ok: true, id: 'after-vanishing' });
    bus.close();
  });
});

test('a sender that never reads its replies cannot make the hub buffer without bound', { timeout: 90_000 }, async (t) => {
  await withHub(async (h, client) => {
    await client.call(Spawn, { kind: 'process', name: 'target', command: ['sleep', '600'] });
    const before = (await client.call(Status, {})).hub.rssBytes;
    const bus = await RawBus.open(path.join(h.paths.busDir, 'target.sock'));
    bus.socket.pause(); // never reads: as `socat -u` or a fire-and-forget script would
    // 1 M bad lines of 2 bytes: each earns a reply of ~90 bytes.
    const chunk = Buffer.from('x\n'.repeat(512 * 1024));
    let written = 0;
    for (let i = 0; i < 2; i++) {
      // A hub that keeps reading takes a chunk within moments; one that applies backpressure never does.
      const accepted = await within(new Promise<boolean>((r) => bus.socket.write(chunk, () => r(true))), 5000, 'the hub to take a chunk').catch(() => false);
      if (!accepted) break;
      written += chunk.length;
    }
    // The hub's peak while it works through what it has read, sampled over two seconds.
    let after = 0;
    for (const until = Date.now() + 2000; Date.now() < until; ) {
      after = Math.max(after, (await client.call(Status, {})).hub.rssBytes);
      await new Promise((r) => setTimeout(r, 100));
    }
    const latency = await assertResponsive(h, 10_000, 'while a sender does not read');
    const grown = (after - before) / 1024 / 1024;
    t.diagnostic(`wrote ${(written / 1024 / 1024).toFixed(1)} MiB of bad lines without reading: hub RSS ${(before / 1048576).toFixed(0)} → ${(after / 1048576).toFixed(0)} MiB; Status answered in ${latency} ms`);
    bus.close();
    assert.ok(grown < 64, `the hub grew by ${grown.toFixed(0)} MiB buffering replies nobody reads`);
  });
});
