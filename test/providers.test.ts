/**
 * The three providers, through their official SDKs, against local servers that speak each provider's
 * real wire format: streaming, model lists, and every failure turned into a message that says what to do.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { keyOf, startLlmFixture, type Flavor } from './fixtures/llm';
import { closedPort, waitFor } from './helpers';
import { makeProvider } from '../server/model/providers';
import { runTurn, type TurnRequest } from '../server/model/turn';
import { ProviderFailure } from '../server/model/provider';

const FLAVORS: Flavor[] = ['ollama', 'openai', 'anthropic'];

function turn(f: { baseUrl: string; flavor: Flavor }, overrides: Partial<TurnRequest> = {}, key = 'sk-test') {
  const tokens: string[] = [];
  const notices: string[] = [];
  const run = runTurn({
    provider: makeProvider(f.flavor, f.baseUrl, key),
    model: 'm1',
    system: 'be brief',
    messages: [{ role: 'user', content: 'hi' }],
    idleTimeoutMs: 2000,
    signal: new AbortController().signal,
    onToken: (t) => tokens.push(t),
    onNotice: (n) => notices.push(n),
    ...overrides,
  });
  return { run, tokens, notices };
}

async function failure(promise: Promise<unknown>): Promise<ProviderFailure> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ProviderFailure, String(error));
    return error;
  }
  assert.fail('expected a failure');
}

for (const flavor of FLAVORS) {
  test(`${flavor}: streams tokens in order and lists models`, async () => {
    const f = await startLlmFixture(flavor, ['m1', 'm2'], { kind: 'ok', tokens: ['Hel', 'lo', ' wor', 'ld'], delayMs: 5 });
    try {
      const { run, tokens } = turn(f);
      const result = await run;
      assert.equal(result.text, 'Hello world');
      assert.deepEqual(tokens, ['Hel', 'lo', ' wor', 'ld']);
      assert.ok(result.firstTokenMs >= 0);
      const chat = f.requests.find((r) => r.method === 'POST');
      assert.ok(chat);
      const body = JSON.stringify(chat.body);
      assert.match(body, /"stream":true/);
      assert.match(body, /be brief/); // the system prompt reaches the provider
      if (flavor !== 'ollama') assert.equal(keyOf(chat.headers), 'sk-test');
      assert.deepEqual(await makeProvider(flavor, f.baseUrl, 'sk-test').listModels(AbortSignal.timeout(5000)), ['m1', 'm2']);
    } finally {
      await f.close();
    }
  });

  test(`${flavor}: unknown model, bad key, server error: each says what to do`, async () => {
    const f = await startLlmFixture(flavor, ['m1', 'm2']);
    try {
      const unknown = await failure(turn(f, { model: 'nope' }).run);
      assert.equal(unknown.kind, 'unknown_model');
      assert.match(unknown.message, /has no model "nope"; it has: m1, m2/);
      if (flavor !== 'ollama') {
        f.apiKey = 'sk-right';
        const auth = await failure(turn(f, {}, 'sk-wrong').run);
        assert.equal(auth.kind, 'auth');
        assert.match(auth.message, new RegExp(`rejected the API key \\(401.*${flavor === 'openai' ? 'OPENAI_API_KEY' : 'ANTHROPIC_API_KEY'}.*Set API Key`));
        f.apiKey = undefined;
      }
      f.scenario = { kind: 'status', status: 500, message: 'the GPU caught fire' };
      const server = await failure(turn(f).run);
      assert.equal(server.kind, 'server');
      assert.match(server.message, /failed \(500: the GPU caught fire\); try again/);
    } finally {
      await f.close();
    }
  });

  test(`${flavor}: a 429 is retried after retry-after, a bounded number of times`, async () => {
    const f = await startLlmFixture(flavor, ['m1'], { kind: 'rateLimit', retryAfter: 1, times: 1, then: { kind: 'ok', tokens: ['ok'] } });
    try {
      const started = Date.now();
      const { run, notices } = turn(f);
      assert.equal((await run).text, 'ok');
      assert.ok(Date.now() - started >= 950, 'waited for retry-after');
      assert.match(notices[0], /rate limited .*retrying in 1 s \(1\/2\)/);
      f.scenario = { kind: 'rateLimit', retryAfter: 0, times: 5, then: { kind: 'ok', tokens: ['never'] } };
      const gaveUp = await failure(turn(f).run);
      assert.equal(gaveUp.kind, 'rate_limit');
      assert.equal(f.requests.filter((r) => r.method === 'POST').length, 2 + 3, 'one try and two retries');
      f.scenario = { kind: 'rateLimit', retryAfter: 3600, times: 1, then: { kind: 'ok', tokens: ['x'] } };
      const tooLong = await failure(turn(f).run);
      assert.match(tooLong.message, /retry after 3600 s/);
    } finally {
      await f.close();
    }
  });

  test(`${flavor}: a stream cut halfway keeps the partial answer; a silent server times out; cancel stops at once`, async () => {
    const f = await startLlmFixture(flavor, ['m1'], { kind: 'cut', tokens: ['part', 'ial'] });
    try {
      const cut = turn(f);
      const broken = await failure(cut.run);
      assert.equal(broken.kind, 'cut');
      assert.equal(broken.partial, 'partial');
      assert.match(broken.message, /was cut off .*the part received is kept/);
      f.scenario = { kind: 'hang' };
      const slow = await failure(turn(f, { idleTimeoutMs: 300 }).run);
      assert.equal(slow.kind, 'timeout');
      assert.match(slow.message, /no answer from .* for 0.3 s \(timed out\)/);
      f.scenario = { kind: 'ok', tokens: Array.from({ length: 200 }, () => 'x'), delayMs: 20 };
      const controller = new AbortController();
      const stopped = turn(f, { signal: controller.signal });
      await waitFor(() => stopped.tokens.length > 0, 5000, 'the first tokens');
      const at = Date.now();
      controller.abort();
      const cancelled = await failure(stopped.run);
      assert.equal(cancelled.kind, 'cancelled');
      // Not a speed target: the rest of the stream would take ~4 s, so this tells a stop from a run to the end.
      assert.ok(Date.now() - at < 500, 'promptly');
      assert.ok(cancelled.partial.length > 0 && cancelled.partial.length < 200);
    } finally {
      await f.close();
    }
  });
}

test('a provider that is not running: the message says how to start it', async () => {
  const port = await closedPort();
  const ollama = await failure(turn({ flavor: 'ollama', baseUrl: `http://127.0.0.1:${port}` }).run);
  assert.equal(ollama.kind, 'unreachable');
  assert.equal(ollama.message, `Ollama is not running at http://127.0.0.1:${port}: start it with \`ollama serve\`, or pick another provider`);
  for (const flavor of ['openai', 'anthropic'] as const) {
    const down = await failure(turn({ flavor, baseUrl: `http://127.0.0.1:${port}` }).run);
    assert.equal(down.kind, 'unreachable', flavor);
    assert.match(down.message, new RegExp(`cannot reach .* at http://127.0.0.1:${port}: check that it is running and the base URL is right`));
  }
});
