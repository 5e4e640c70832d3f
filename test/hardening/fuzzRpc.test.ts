/**
 * Hardening 1b: JSON-RPC on hub.sock under hostile input. Seeded and bounded (FUZZ_SEED=<n>).
 *
 *  - every request method declared in server/protocol.ts gets params of wrong shapes (missing, null,
 *    arrays, wrong types, huge strings, deep nesting, near-valid ones with one field broken), over the raw
 *    framing and through vscode-jsonrpc: each must be answered with InvalidParams and a message;
 *  - framing garbage (bad headers, Content-Length mismatches, huge lengths, partial and invalid bodies)
 *    must close at most that connection while the hub keeps answering others.
 *
 * Only params that the method's own schema rejects are sent (the schemas are the contract, and a valid
 * `cihub/stopHub` or `cihub/spawn` would have effects), so every case has a known right answer.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { z } from 'zod';
import { ResponseError } from 'vscode-jsonrpc/node';
import * as P from '../../server/protocol';
import { hubLog, waitFor, within, withHub, type Home } from '../helpers';
import { MAX_MESSAGE_BYTES } from '../../server/transport';
import {
  RawRpc,
  assertResponsive,
  deepJson,
  deepValue,
  nastyString,
  problemLines,
  randomJson,
  testRng,
  wrongTypeFor,
  type Rng,
} from '../fixtures/hardening';

const CASES_PER_METHOD = Number(process.env.FUZZ_RPC_CASES ?? 40);
const REPLY_DEADLINE_MS = 10_000;
const STATUS_DEADLINE_MS = 3000;

interface Def {
  method: string;
  params: z.ZodType;
}

function isDef(v: unknown): v is Def {
  return typeof v === 'object' && v !== null && 'method' in v && typeof v.method === 'string' && 'params' in v && typeof v.params === 'object';
}

const DEFS: unknown[] = Object.values(P);
/** Every request (method, params, result) and every notification the protocol declares. */
const REQUESTS: Def[] = DEFS.filter(isDef).filter((v) => 'result' in v && v.result !== undefined);
const NOTIFICATIONS: Def[] = DEFS.filter(isDef).filter((v) => !('result' in v));

/** Valid params per method, to break one field at a time. Methods added later fall back to random shapes. */
const TEMPLATES: Record<string, unknown> = {
  'cihub/spawn': { kind: 'process', name: 'fz', command: ['sleep', '1'], cwd: '/tmp', env: { A: 'b' }, restart: 'never', policy: 'inbox', cols: 80, rows: 24 },
  'cihub/kill': { name: 'target' },
  'cihub/restart': { name: 'target' },
  'cihub/remove': { name: 'target' },
  'cihub/resize': { name: 'target', cols: 80, rows: 24 },
  'cihub/attach': { name: 'target', attachId: 'a1', cols: 80, rows: 24, readOnly: true },
  'cihub/wrap': { name: 'wrapped', command: ['x'], cwd: '/', pid: 1, cols: 80, rows: 24 },
  'cihub/export': { name: 'target', format: 'cast', session: 's' },
  'bus/send': { message: { content: 'x', to: 'target', from: 'ops', type: 'request', priority: 'normal', ttl: 5 } },
  'bus/ask': { message: { content: 'x', to: 'target' }, timeoutMs: 1 },
  'bus/receive': { name: 'target', max: 1, waitMs: 0 },
  'bus/ack': { name: 'target', ids: ['a'] },
  'bus/peek': { name: 'target' },
  'bus/approve': { name: 'target', ids: ['a'] },
  'bus/refuse': { name: 'target', ids: ['a'], reason: 'no' },
  'bus/setPolicy': { name: 'target', policy: 'inbox' },
  'bus/forward': { name: 'target', to: 'elsewhere' },
  'bus/unforward': { name: 'target' },
  'hub/setConfig': { ports: { enabled: false, base: 42100 }, contextPrefix: 'never', injectQuietMs: 10, injectHumanIdleMs: 10, defaultCiGraceMs: 10 },
  'projects/register': { window: 'w', folders: [{ path: '/tmp/p', name: 'p' }] },
  'projects/ensureDefaultCi': { project: '/tmp/p', command: ['sleep', '1'], env: { A: 'b' }, policy: 'inbox', keep: false },
  'chat/history': { project: '/tmp/p', limit: 5 },
  'chat/send': { project: '/tmp/p', to: 'target', text: 'hi', from: 'you' },
  'chat/append': { project: '/tmp/p', role: 'system', text: 'x', format: 'plain' },
  'chat/stop': { ci: 'target' },
  'model/setKey': { provider: 'openai', key: 'sk-123456' },
  'model/list': { provider: 'ollama', baseUrl: 'http://127.0.0.1:1/' },
};

/** What a handler registered with vscode-jsonrpc receives for the raw `params` (see handleRequest). */
const TOKEN = { isCancellationRequested: false, onCancellationRequested: () => undefined };
function effective(params: unknown, present: boolean): unknown {
  if (!present || params === undefined) return TOKEN;
  if (Array.isArray(params)) return params.length ? params[0] : TOKEN;
  return params;
}

/** Replaces the value at a random path of `value` (objects and arrays), or deletes/adds a key. */
function mutate(rng: Rng, value: unknown): unknown {
  const copy: unknown = structuredClone(value);
  const holders: { holder: Record<string, unknown> | unknown[]; key: string | number }[] = [];
  const visit = (v: unknown) => {
    if (Array.isArray(v)) v.forEach((item, i) => (holders.push({ holder: v, key: i }), visit(item)));
    else if (v && typeof v === 'object') for (const [k, item] of Object.entries(v)) (holders.push({ holder: v as Record<string, unknown>, key: k }), visit(item));
  };
  visit(copy);
  if (holders.length === 0) return randomJson(rng);
  const { holder, key } = rng.pick(holders);
  const current = (holder as Record<string | number, unknown>)[key];
  const replacement = (() => {
    switch (rng.int(0, 6)) {
      case 0:
        return wrongTypeFor(rng, current);
      case 1:
        return nastyString(rng);
      case 2:
        return 'h'.repeat(rng.pick([70_000, 1_000_000]));
      case 3:
        return deepValue(rng.pick([100, 2000]), rng.pick(['array', 'object'] as const));
      case 4:
        return typeof current === 'number' ? rng.pick([-1, 0, 1.5, 1e12, -1e12, 2 ** 31]) : randomJson(rng);
      case 5:
        return undefined; // delete
      default:
        return randomJson(rng);
    }
  })();
  if (replacement === undefined && !Array.isArray(holder)) delete (holder as Record<string, unknown>)[key as string];
  else (holder as Record<string | number, unknown>)[key] = replacement;
  return copy;
}

interface BadParams {
  params?: unknown;
  /** The params as JSON text, when JSON.stringify cannot make it (deep nesting). */
  json?: string;
  present: boolean;
  why: string;
}

/** Raw `params` of a wrong shape for `def`, with whether a `params` member is present at all. */
function badParams(rng: Rng, def: Def): BadParams | undefined {
  for (let tries = 0; tries < 50; tries++) {
    let candidate: BadParams;
    const template = TEMPLATES[def.method];
    switch (rng.int(0, 9)) {
      case 0:
        candidate = { present: false, why: 'no params' };
        break;
      case 1:
        candidate = { params: null, present: true, why: 'null' };
        break;
      case 2:
        candidate = { params: rng.pick([[], [null], [5], ['x'], [[1]], [true, {}]]), present: true, why: 'array' };
        break;
      case 3:
        candidate = { params: rng.pick([0, -1, 1.5, true, false, 'x', '', 'h'.repeat(2_000_000)]), present: true, why: 'primitive' };
        break;
      case 4: {
        const depth = rng.pick([1000, 20_000, 200_000]);
        const kind = rng.pick(['array', 'object'] as const);
        // zod looks at the outer level only; JSON.stringify would overflow the stack, so send text.
        candidate = { params: kind === 'array' ? [[0]] : { a: { a: 0 } }, json: deepJson(depth, kind), present: true, why: `deep nesting ${depth}` };
        break;
      }
      case 5:
      case 6:
      case 7:
        candidate = template !== undefined ? { params: mutate(rng, template), present: true, why: 'near-valid' } : { params: randomJson(rng), present: true, why: 'random' };
        break;
      default:
        candidate = { params: randomJson(rng), present: true, why: 'random' };
    }
    if (!def.params.safeParse(effective(candidate.params, candidate.present)).success) return candidate;
  }
  return undefined;
}

function describe(params: unknown): string {
  try {
    const s = JSON.stringify(params) ?? 'undefined';
    return s.length > 160 ? `${s.slice(0, 160)}… (${s.length} chars)` : s;
  } catch (error) {
    return `<${String(error)}>`;
  }
}

function checkInvalidParams(reply: P.HubErrorCode | number | undefined, message: string | undefined, context: string): void {
  assert.equal(reply, P.HubErrorCode.InvalidParams, `expected InvalidParams (${context}); got ${reply}: ${message}`);
  assert.equal(typeof message, 'string', `error without a message (${context})`);
  assert.ok((message ?? '').trim().length > 0, `empty error message (${context})`);
  assert.ok((message ?? '').length < 10_000, `error message of ${(message ?? '').length} characters (${context}): it echoes the input`);
}

test('fuzz every JSON-RPC request with params of wrong shapes: InvalidParams with a message, never a crash or hang', { timeout: 180_000 }, async (t) => {
  const rng = testRng('rpc params', (l) => t.diagnostic(l));
  const started = Date.now();
  assert.ok(REQUESTS.length >= 30, `found only ${REQUESTS.length} requests in protocol.ts`);
  await withHub(async (home, client) => {
    await client.call(P.Spawn, { kind: 'process', name: 'target', command: ['sleep', '600'] });
    const logStart = hubLog(home).length;
    const raw = await RawRpc.open(home.paths.socket);
    let id = 1;
    const perMethod = new Map<string, number>();
    for (const def of REQUESTS) {
      let sent = 0;
      for (let i = 0; i < CASES_PER_METHOD; i++) {
        const bad = badParams(rng, def);
        if (!bad) continue;
        const context = `${def.method} case ${i} (${bad.why}): params ${bad.json !== undefined ? `${bad.json.slice(0, 40)}…` : bad.present ? describe(bad.params) : '<absent>'}`;
        // Two thirds over the raw framing, one third through vscode-jsonrpc's own client.
        if (i % 3 !== 2 || !bad.present || bad.json !== undefined) {
          const reqId = id++;
          const reply = await (bad.json !== undefined
            ? raw.requestText(reqId, def.method, bad.json, REPLY_DEADLINE_MS)
            : raw.request(reqId, def.method, bad.present ? bad.params : undefined, REPLY_DEADLINE_MS)
          ).catch((error: Error) => {
            throw new Error(`${context}: ${error.message}`);
          });
          checkInvalidParams(reply.error?.code, reply.error?.message, context);
        } else {
          let caught: unknown;
          try {
            await within(client.connection.sendRequest(def.method, bad.params), REPLY_DEADLINE_MS, 'an answer');
          } catch (error) {
            caught = error;
          }
          assert.ok(caught instanceof ResponseError, `${context}: expected a ResponseError, got ${String(caught)}`);
          checkInvalidParams(caught.code, caught.message, `${context} via vscode-jsonrpc`);
        }
        sent++;
      }
      perMethod.set(def.method, sent);
      assert.ok(sent >= Math.min(5, CASES_PER_METHOD), `${def.method}: only ${sent} invalid cases could be made`);
      await assertResponsive(home, STATUS_DEADLINE_MS, `after fuzzing ${def.method}`);
    }
    // Unknown methods: MethodNotFound, with a message.
    for (const method of ['cihub/nope', '', 'rpc.discover', '$/unknown', 'CIHUB/STATUS', 'cihub/status/../stopHub', 'x'.repeat(100_000)]) {
      const reply = await raw.request(id++, method, {}, REPLY_DEADLINE_MS);
      assert.equal(reply.error?.code, -32601, `unknown method ${method.slice(0, 40)}: ${JSON.stringify(reply).slice(0, 200)}`);
      assert.ok((reply.error?.message ?? '').length > 0);
    }
    // Notifications with bad params: no reply (there is none), the connection and the hub stay up.
    for (const def of NOTIFICATIONS) {
      for (let i = 0; i < 10; i++) {
        const bad = badParams(rng, def);
        if (!bad) continue;
        const message: Record<string, unknown> = { jsonrpc: '2.0', method: def.method };
        if (bad.present) message.params = bad.params;
        await raw.send(message);
      }
    }
    const after = await raw.request(id++, P.Status.method, {}, REPLY_DEADLINE_MS);
    assert.ok(after.result, 'the fuzzing connection no longer answers');
    assert.equal(raw.garbage.length, 0, `the hub sent unparsable bodies: ${raw.garbage.slice(0, 2).join(' | ')}`);
    raw.close();
    const crashes = problemLines(home, logStart).filter((l) => /uncaught|unhandled|failed: (TypeError|RangeError)/.test(l));
    assert.deepEqual(crashes, [], 'the hub logged uncaught errors');
    t.diagnostic(`cases per method: ${JSON.stringify(Object.fromEntries(perMethod))}`);
    t.diagnostic(`took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });
});

/** A fresh raw connection that must be closed by the hub (a framing error) after one ParseError reply. */
async function expectFramingClose(home: Home, bytes: Buffer | string, what: string): Promise<void> {
  const raw = await RawRpc.open(home.paths.socket);
  await raw.write(bytes);
  const reply = await waitFor(() => raw.messages.find((m) => m.error), 5000, `a framing error reply (${what})`);
  assert.equal(reply.id, null, what);
  assert.equal(reply.error?.code, -32700, what);
  assert.match(reply.error?.message ?? '', /\w/, what);
  await raw.waitClosed(5000).catch(() => assert.fail(`the hub did not close the connection after a framing error (${what})`));
}

test('raw framing garbage: only that connection suffers; the hub keeps answering others', { timeout: 120_000 }, async (t) => {
  const rng = testRng('rpc framing', (l) => t.diagnostic(l));
  const started = Date.now();
  await withHub(async (home, bystander) => {
    const check = async (what: string) => {
      await assertResponsive(home, STATUS_DEADLINE_MS, what);
      await bystander.call(P.Status, {});
    };
    const status = (id: number | string) => JSON.stringify({ jsonrpc: '2.0', id, method: P.Status.method, params: {} });

    // Headers the stream cannot be framed after: an error reply, then that connection is closed.
    const framingCases: [string, Buffer | string][] = [
      ['Content-Length not a number', 'Content-Length: abc\r\n\r\n{}'],
      ['no Content-Length', 'Content-Type: application/json\r\n\r\n{}'],
      ['negative Content-Length', 'Content-Length: -5\r\n\r\n{}'],
      ['Content-Length over the limit', `Content-Length: ${MAX_MESSAGE_BYTES + 1}\r\n\r\n{}`],
      ['absurd Content-Length', 'Content-Length: 99999999999999999999999\r\n\r\n'],
      ['header without its blank line, 9 KiB', 'X'.repeat(9 * 1024)],
      ['random bytes', Buffer.concat([rng.bytes(9000).map((b) => (b === 0x0d ? 0x20 : b))])],
      ['NDJSON sent to hub.sock (9 KiB of lines)', `${status(1)}\n`.repeat(200)],
      ['HTTP request', `GET / HTTP/1.1\r\nHost: x\r\n\r\n`],
    ];
    for (const [what, bytes] of framingCases) {
      await expectFramingClose(home, bytes, what);
      await check(`after ${what}`);
    }

    // Bodies that are not JSON, with a right Content-Length: a ParseError, and the connection stays usable.
    const raw = await RawRpc.open(home.paths.socket);
    let id = 100;
    const notJson: (string | Buffer)[] = ['{', 'nul', '', ' ', '{"jsonrpc":"2.0",', Buffer.from([0xff, 0xfe, 0xfd]), Buffer.from([0x7b, 0x00, 0x7d]), `${deepJson(200_000, 'array').slice(0, -1)}`];
    for (const body of notJson) {
      const before = raw.messages.length;
      await raw.write(raw.frame(body));
      await waitFor(() => raw.messages.length > before, 5000, `a ParseError for ${describe(body.toString())}`);
      const reply = raw.messages[before];
      assert.equal(reply.error?.code, -32700, `body ${describe(body.toString())}: ${JSON.stringify(reply).slice(0, 200)}`);
      const ok = await raw.request(id++, P.Status.method, {});
      assert.ok(ok.result, 'the connection is unusable after an invalid body');
    }
    // Valid JSON that is no message at all: nothing to answer (no id), the connection stays usable.
    for (const body of ['5', '"x"', 'null', '[]', '{}', '{"jsonrpc":"2.0"}', deepJson(100_000, 'object')]) {
      await raw.write(raw.frame(body));
      const ok = await raw.request(id++, P.Status.method, {});
      assert.ok(ok.result, `the connection is unusable after the body ${describe(body)}`);
    }
    await check('after bodies that are not messages');

    // Content-Length shorter than the body: the cut body is a ParseError; what follows cannot be framed.
    const short = await RawRpc.open(home.paths.socket);
    const body = status(7);
    await short.write(`Content-Length: 5\r\n\r\n${body}`);
    await waitFor(() => short.messages.find((m) => m.error?.code === -32700), 5000, 'a ParseError for the cut body');
    await short.write(short.frame(status(8)));
    await short.waitClosed(5000);
    await check('after a Content-Length shorter than its body');

    // Content-Length longer than the body: the hub waits for the rest; others are served meanwhile; the
    // request is answered once the rest arrives.
    const partial = await RawRpc.open(home.paths.socket);
    const full = Buffer.from(status(9));
    await partial.write(Buffer.concat([Buffer.from(`Content-Length: ${full.length}\r\n\r\n`), full.subarray(0, 10)]));
    await check('while a body is incomplete');
    for (const piece of [full.subarray(10, 20), full.subarray(20)]) {
      await new Promise((r) => setTimeout(r, 50));
      await partial.write(piece);
    }
    assert.ok((await partial.response(9)).result, 'a body completed in pieces is answered');
    // …and a client that goes away mid-body.
    await partial.write(`Content-Length: 1000\r\n\r\n{"jsonrpc":`);
    partial.close();
    await check('after a client left mid-body');

    // A request split at every byte, and many requests in one write.
    const split = await RawRpc.open(home.paths.socket);
    const framed = split.frame(status(10));
    for (let i = 0; i < framed.length; i++) await split.write(framed.subarray(i, i + 1));
    assert.ok((await split.response(10)).result);
    await split.write(Buffer.concat(Array.from({ length: 200 }, (_, i) => split.frame(status(1000 + i)))));
    await waitFor(() => split.messages.filter((m) => typeof m.id === 'number' && m.id >= 1000).length === 200, 10_000, '200 answers');
    split.close();

    // Two Content-Length headers, other headers, lowercase names, extra whitespace: the first length counts.
    const headers = await RawRpc.open(home.paths.socket);
    const b11 = status(11);
    await headers.write(`content-length:   ${Buffer.byteLength(b11)}  \r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\nX-Junk: \u00ff\r\n\r\n${b11}`);
    assert.ok((await headers.response(11)).result);
    headers.close();
    raw.close();
    short.close();
    await check('at the end');
    t.diagnostic(`took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });
});

test('JSON-RPC 2.0: a request object that is invalid (bad method, bad id) gets an Invalid Request error, not silence', { timeout: 60_000 }, async () => {
  await withHub(async (home) => {
    const raw = await RawRpc.open(home.paths.socket);
    const cases: [string, object, number | string | null][] = [
      ['method is a number', { jsonrpc: '2.0', id: 21, method: 5 }, 21],
      ['method is null', { jsonrpc: '2.0', id: 22, method: null }, 22],
      ['no method, only an id', { jsonrpc: '2.0', id: 23 }, 23],
      ['id is an object', { jsonrpc: '2.0', id: { a: 1 }, method: P.Status.method }, null],
    ];
    const silent: string[] = [];
    for (const [what, message, expectId] of cases) {
      const before = raw.messages.length;
      await raw.send(message);
      const reply = await waitFor(() => raw.messages.slice(before).find((m) => m.error), 1000, what).catch(() => undefined);
      if (!reply) {
        silent.push(what);
        continue;
      }
      assert.equal(reply.error?.code, -32600, what);
      assert.equal(reply.id, expectId, what);
    }
    const ok = await raw.request(30, P.Status.method, {});
    assert.ok(ok.result, 'the connection is unusable afterwards');
    raw.close();
    assert.deepEqual(silent, [], 'invalid request objects that got no answer at all (the client waits forever)');
  });
});

test('`$/cancelRequest` with bad params does not throw inside the hub or swallow the requests after it', { timeout: 60_000 }, async () => {
  await withHub(async (home) => {
    const logStart = hubLog(home).length;
    const raw = await RawRpc.open(home.paths.socket);
    const bad = [null, 5, 'x', [], {}, { id: { nested: 1 } }];
    let id = 40;
    const unanswered: string[] = [];
    for (const params of bad) {
      // The cancel and a Status request in one write, as a client that pipelines does.
      const reqId = id++;
      await raw.write(
        Buffer.concat([
          raw.frame(JSON.stringify({ jsonrpc: '2.0', method: '$/cancelRequest', params })),
          raw.frame(JSON.stringify({ jsonrpc: '2.0', id: reqId, method: P.Status.method, params: {} })),
        ]),
      );
      const reply = await raw.response(reqId, 1500).catch(() => undefined);
      if (!reply) unanswered.push(`params ${JSON.stringify(params)}: the Status request after it was never answered`);
    }
    raw.close();
    await assertResponsive(home, STATUS_DEADLINE_MS, 'after bad cancels');
    const uncaught = problemLines(home, logStart).filter((l) => /uncaught|TypeError/.test(l));
    assert.deepEqual({ unanswered, uncaught: uncaught.map((l) => l.slice(0, 200)) }, { unanswered: [], uncaught: [] });
  });
});

test('a large request body arriving in small chunks does not stall the hub for other clients', { timeout: 120_000 }, async (t) => {
  await withHub(async (home, bystander) => {
    const raw = await RawRpc.open(home.paths.socket);
    const padding = 'p'.repeat(48 * 1024 * 1024);
    const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method: P.Status.method, params: { padding } }));
    const framed = raw.frame(body);
    let worst = 0;
    let stop = false;
    const probe = (async () => {
      while (!stop) {
        const t0 = Date.now();
        await bystander.call(P.Status, {});
        worst = Math.max(worst, Date.now() - t0);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const t0 = Date.now();
    for (let at = 0; at < framed.length; at += 64 * 1024) await raw.write(framed.subarray(at, at + 64 * 1024));
    const reply = await raw.response(1, 60_000);
    const upload = Date.now() - t0;
    stop = true;
    await probe;
    raw.close();
    t.diagnostic(`48 MiB body in 64 KiB writes: answered after ${upload} ms; worst Status latency for another client meanwhile ${worst} ms`);
    assert.ok(reply.result, 'the large request was not answered');
    // Reading 48 MiB from a local socket and parsing it takes a few hundred ms when done in linear time.
    assert.ok(upload < 3000 && worst < 1000, `a 48 MiB body took ${upload} ms to be answered, and another client waited up to ${worst} ms for Status meanwhile`);
  });
});

test('invalid messages are not copied into hub.log in full', { timeout: 60_000 }, async () => {
  await withHub(async (home) => {
    const logFile = path.join(home.paths.stateDir, 'hub.log');
    const before = fs.statSync(logFile).size;
    const raw = await RawRpc.open(home.paths.socket);
    const pad = 'z'.repeat(1024 * 1024);
    for (let i = 0; i < 4; i++) await raw.send({ jsonrpc: '2.0', id: 50 + i, method: 5, pad });
    const ok = await raw.request(60, P.Status.method, {});
    assert.ok(ok.result);
    raw.close();
    await new Promise((r) => setTimeout(r, 200));
    const grown = fs.statSync(logFile).size - before;
    assert.ok(grown < 64 * 1024, `hub.log grew by ${grown} bytes for 4 invalid 1 MiB messages`);
  });
});
