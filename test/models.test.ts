/**
 * Model CIs through the real hub and CLI, against local servers speaking each provider's wire format:
 * answers and responses, the REPL terminal, chat streaming and Stop, history across restarts and its
 * trimming, every failure mode, health in `cihub status`, and API keys that never reach disk.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CIHUB, castOutput, ciInfo, cihub, closedPort, ok, restartHub, sessionsOf, waitFor, walkFiles, withHub, type Home } from './helpers';
import { startLlmFixture, type Flavor, type LlmFixture } from './fixtures/llm';
import { ChatSend, ChatStop, Event, Receive, RegisterProjects, Send, Spawn, Watch, type ChatEntry } from '../server/protocol';
import type { HubClient } from '../client/hubClient';
import { Pty, type PtyExit } from '../server/pty';
import { processEnv } from '../server/env';

/** Runs `fn` with the LLM fixture `started` and a hub of its own; closes both afterwards. */
async function withModelHub(started: Promise<LlmFixture>, fn: (fixture: LlmFixture, home: Home, client: HubClient) => Promise<void>): Promise<void> {
  const fixture = await started;
  try {
    await withHub((home, client) => fn(fixture, home, client));
  } finally {
    await fixture.close();
  }
}

for (const flavor of ['ollama', 'openai', 'anthropic'] as Flavor[]) {
  test(`${flavor} model CI: cihub send --wait answers; a CI sender gets the answer as a response in its inbox`, async () => {
    await withModelHub(startLlmFixture(flavor, ['m1', 'm2'], { kind: 'ok', tokens: ['The ', 'answer ', 'is ', '42.'] }), async (fixture, home, client) => {
      const spawned = await ok(['spawn', 'helper', '--provider', flavor, '--model', 'm1', '--base-url', fixture.baseUrl], home.env);
      assert.match(spawned, new RegExp(`spawned helper: ${flavor} m1 at ${fixture.baseUrl.replace(/[/.]/g, '\\$&')}`));
      assert.equal(await ok(['send', 'helper', '--wait', 'what is the answer?'], home.env), 'The answer is 42.\n');
      await client.call(Spawn, { kind: 'process', name: 'asker', command: ['sleep', '300'] });
      await client.call(Send, { message: { from: 'asker', to: 'helper', content: 'and again?' } });
      const reply = await waitFor(async () => (await client.call(Receive, { name: 'asker', max: 5, waitMs: 0 })).messages[0], 15_000, 'the response');
      assert.equal(reply.type, 'response');
      assert.equal(reply.from, 'helper');
      assert.equal(reply.content, 'The answer is 42.');
      // The model saw who asked.
      const last = JSON.stringify(fixture.requests.filter((r) => r.method === 'POST').at(-1)?.body);
      assert.match(last, /\[from asker\] and again\?/);
      const info = await ciInfo(client, 'helper');
      assert.equal(info.kind, 'model');
      assert.equal(info.model?.provider, flavor);
      assert.equal(typeof info.model?.lastLatencyMs, 'number');
      assert.equal(info.model?.turns, 4);
    });
  });
}

test('failure modes each say what to do, the partial answer of a cut stream is kept, and the CI stays usable', async () => {
  await withModelHub(startLlmFixture('openai', ['gpt-4.1', 'gpt-4o']), async (fixture, home) => {
    const port = await closedPort();
    await ok(['spawn', 'down', '--provider', 'ollama', '--model', 'llama3.2', '--base-url', `http://127.0.0.1:${port}`], home.env);
    const down = await cihub(['send', 'down', '--wait', 'hello?'], { env: home.env });
    assert.equal(down.code, 1);
    assert.equal(down.stderr, `cihub: down: Ollama is not running at http://127.0.0.1:${port}: start it with \`ollama serve\`, or pick another provider\n`);

    await ok(['spawn', 'gpt', '--provider', 'openai', '--model', 'gpt-5-nope', '--base-url', fixture.baseUrl], home.env);
    const unknown = await cihub(['send', 'gpt', '--wait', 'hi'], { env: home.env });
    assert.match(unknown.stderr, /has no model "gpt-5-nope"; it has: gpt-4.1, gpt-4o/);

    await ok(['spawn', 'ok', '--provider', 'openai', '--model', 'gpt-4.1', '--base-url', fixture.baseUrl, '--timeout', '0.5'], home.env);
    fixture.scenario = { kind: 'status', status: 500, message: 'overloaded' };
    assert.match((await cihub(['send', 'ok', '--wait', 'x'], { env: home.env })).stderr, /failed \(500: overloaded\); try again/);
    fixture.scenario = { kind: 'hang' };
    assert.match((await cihub(['send', 'ok', '--wait', 'x'], { env: home.env })).stderr, /no answer from .* for 0.5 s \(timed out\)/);
    fixture.scenario = { kind: 'cut', tokens: ['half ', 'an ', 'ans'] };
    const cut = await ok(['send', 'ok', '--wait', 'x'], home.env);
    assert.match(cut, /^half an ans\n\n\[answer cut off: the answer from .* was cut off/);
    fixture.scenario = { kind: 'rateLimit', retryAfter: 1, times: 1, then: { kind: 'ok', tokens: ['after ', 'waiting'] } };
    const started = Date.now();
    assert.equal(await ok(['send', 'ok', '--wait', 'x'], home.env), 'after waiting\n');
    assert.ok(Date.now() - started >= 950);
    // Still usable, and `cihub status` shows its health.
    fixture.scenario = { kind: 'ok', tokens: ['fine'] };
    assert.equal(await ok(['send', 'ok', '--wait', 'x'], home.env), 'fine\n');
    const status = await ok(['status'], home.env);
    assert.match(status, /model CIs:\nNAME\s+PROVIDER\s+MODEL\s+BASE URL\s+LATENCY\s+LAST ERROR/);
    assert.match(status, new RegExp(`ok\\s+openai\\s+gpt-4.1\\s+${fixture.baseUrl.replace(/[/.]/g, '\\$&')}\\s+\\d+ ms\\s+-`));
    assert.match(status, /down\s+ollama\s+llama3.2\s+\S+\s+-\s+\d+s ago: Ollama is not running/);
    // The conversation keeps the partial answer, marked.
    const conversation = fs.readFileSync(path.join(home.paths.stateDir, 'conversations', 'ok.jsonl'), 'utf8');
    assert.match(conversation, /"content":"half an ans","t":\d+,"partial":true/);
  });
});

test('history persists across a hub restart and is trimmed to the context budget; the system prompt names the project', async () => {
  await withModelHub(startLlmFixture('anthropic', ['claude-sonnet-4-5'], { kind: 'ok', tokens: ['noted'] }), async (fixture, home, client) => {
    const project = path.join(home.dir, 'billing');
    fs.mkdirSync(project);
    await ok(['spawn', 'mem', '--provider', 'anthropic', '--model', 'claude-sonnet-4-5', '--base-url', fixture.baseUrl, '--project', project, '--context-tokens', '400'], home.env);
    await ok(['send', 'mem', '--wait', 'first fact: the sky is green'], home.env);
    // Restarted; the rest goes through the CLI.
    (await restartHub(home, client)).close();
    await ok(['send', 'mem', '--wait', 'second fact'], home.env);
    const body = (n: number) => fixture.requests.filter((r) => r.method === 'POST')[n]?.body;
    const second = JSON.stringify(body(1));
    assert.match(second, /first fact: the sky is green/, 'the history survived the restart');
    assert.match(second, /of the project \\"billing\\"/);
    // Long messages: the oldest turns fall out of the 400-token budget, the newest question stays.
    await ok(['send', 'mem', '--wait', `third: ${'x'.repeat(800)}`], home.env);
    await ok(['send', 'mem', '--wait', `fourth: ${'y'.repeat(800)}`], home.env);
    const fourth = body(3);
    const text = JSON.stringify(fourth);
    assert.match(text, /fourth: y/);
    assert.doesNotMatch(text, /first fact/);
    assert.match(text, /You are mem/);
    assert.ok(fourth && typeof fourth === 'object' && 'messages' in fourth && Array.isArray(fourth.messages));
    assert.equal(fourth.messages[0].role, 'user');
  });
});

test('the REPL terminal: type, see the answer stream; Ctrl-C stops it promptly; captured like a PTY', async () => {
  await withModelHub(startLlmFixture('ollama', ['llama3.2'], { kind: 'ok', tokens: ['streamed ', 'reply'] }), async (fixture, home) => {
    await ok(['spawn', 'helper', '--provider', 'ollama', '--model', 'llama3.2', '--base-url', fixture.baseUrl], home.env);
    let screen = '';
    let exit: PtyExit | undefined;
    const term = Pty.spawn(
      { file: process.execPath, args: [CIHUB, 'attach', 'helper'], cwd: home.dir, env: processEnv(home.env), cols: 100, rows: 30 },
      (d) => (screen += d.toString()),
      (e) => (exit = e),
    );
    await waitFor(() => screen.includes('you ›'), 10_000, 'the prompt');
    term.write('hello there\r');
    await waitFor(() => screen.includes('streamed reply'), 10_000, 'the answer');
    fixture.scenario = { kind: 'ok', tokens: Array.from({ length: 300 }, (_, i) => `t${i} `), delayMs: 30 };
    term.write('a long one\r');
    await waitFor(() => screen.includes('t3 '), 10_000, 'the long answer to start');
    const at = Date.now();
    term.write('\x03');
    await waitFor(() => screen.includes('[stopped]'), 5000, 'stopped');
    // Not a speed target: the rest of the answer would take ~9 s, so this tells a stop from a run to the end.
    assert.ok(Date.now() - at < 1500, 'promptly');
    assert.ok(!screen.includes('t299'));
    fixture.scenario = { kind: 'ok', tokens: ['still here'] };
    term.write('ok?\r');
    await waitFor(() => screen.includes('still here'), 10_000, 'usable after Ctrl-C');
    term.write('\x1d');
    await waitFor(() => exit !== undefined, 5000, 'detach');
    const cast = castOutput(sessionsOf(home, 'helper')[0]);
    assert.match(cast, /you ›.*hello there[\s\S]*streamed reply[\s\S]*\[stopped\][\s\S]*still here/);
    const md = await ok(['export', 'helper', '--format', 'md'], home.env);
    assert.match(md, /\*\*delivered\*\* you → helper: hello there/);
    assert.match(md, /\*\*response\*\* helper → you: streamed reply/);
  });
});

test('the chat: a model reply streams token by token; Stop cuts it, the partial reply kept and marked', async () => {
  await withModelHub(startLlmFixture('openai', ['gpt-4.1'], { kind: 'ok', tokens: ['one ', 'two ', 'three'], delayMs: 50 }), async (fixture, home, client) => {
    const project = path.join(home.dir, 'app');
    fs.mkdirSync(project);
    await client.call(RegisterProjects, { window: 'w', folders: [{ path: project, name: 'app' }] });
    await client.call(Watch, {});
    const updates: ChatEntry[] = [];
    client.on(Event, (e) => {
      if (e.type === 'chat' && e.entry.role === 'ci') updates.push(e.entry);
    });
    await client.call(Spawn, { kind: 'model', name: 'gpt', provider: 'openai', model: 'gpt-4.1', baseUrl: fixture.baseUrl, project });
    await client.call(ChatSend, { project, to: 'gpt', text: 'count' });
    const done = await waitFor(() => updates.find((u) => !u.streaming && u.text === 'one two three'), 10_000, 'the whole reply');
    const streamed = updates.filter((u) => u.id === done.id && u.streaming).map((u) => u.text);
    assert.ok(streamed.length >= 2 && streamed.includes('one '), `streamed: ${JSON.stringify(streamed)}`);
    fixture.scenario = { kind: 'ok', tokens: Array.from({ length: 100 }, () => 'la '), delayMs: 30 };
    await client.call(ChatSend, { project, to: 'gpt', text: 'sing' });
    await waitFor(() => updates.some((u) => u.streaming && u.text.startsWith('la la')), 10_000, 'singing');
    await client.call(ChatStop, { ci: 'gpt' });
    const partial = await waitFor(() => updates.find((u) => u.partial), 5000, 'the partial reply');
    assert.match(partial.text, /^(la )+\n\n\*\(cut off: stopped\)\*$/);
  });
});

test('API keys: used, never written to the state dir, captures, timeline or logs', async () => {
  const secret = `sk-test-${Math.random().toString(36).slice(2)}-do-not-write`;
  await withModelHub(startLlmFixture('openai', ['gpt-4.1'], { kind: 'ok', tokens: ['authorized'] }), async (fixture, home) => {
    fixture.apiKey = secret;
    const env = { ...home.env, OPENAI_API_KEY: secret };
    await ok(['spawn', 'keyed', '--provider', 'openai', '--model', 'gpt-4.1', '--base-url', fixture.baseUrl], env);
    assert.equal(await ok(['send', 'keyed', '--wait', 'hi'], home.env), 'authorized\n');
    // A process CI started with the key in its environment: the registry keeps only the name.
    await ok(['spawn', 'shell', '--', 'sh', '-c', 'echo started; sleep 300'], env);
    // A wrong key: a 401 that says what to do (and does not echo the key).
    await ok(['spawn', 'wrong', '--provider', 'openai', '--model', 'gpt-4.1', '--base-url', fixture.baseUrl], { ...home.env, OPENAI_API_KEY: 'sk-wrong-key-123456' });
    const wrong = await cihub(['send', 'wrong', '--wait', 'hi'], { env: home.env });
    assert.match(wrong.stderr, /rejected the API key \(401/);
    await ok(['export', 'keyed', '--format', 'jsonl'], home.env);
    await ok(['export', 'keyed', '--format', 'md'], home.env);
    await ok(['stop'], home.env);
    const leaks = walkFiles(home.dir).filter((file) => fs.readFileSync(file).includes(secret));
    assert.deepEqual(leaks, []);
    const registry = fs.readFileSync(path.join(home.paths.stateDir, 'registry.json'), 'utf8');
    assert.match(registry, /"secretEnvNames": \[[^\]]*"OPENAI_API_KEY"/);
  });
});


