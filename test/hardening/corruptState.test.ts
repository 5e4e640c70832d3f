/**
 * Hardening 2: damaged state files at start. Each test makes real state with a real hub (CIs, queued
 * messages, captures, chats, a model conversation), stops it, damages one file the way a crash, a full
 * disk or a careless edit would, and starts the hub again. The hub must start, say what it found in
 * hub.log (warn lines), and keep every intact part. What each case did is printed as diagnostics (the hub
 * log lines included), for docs/hardening-findings.md.
 */
import { test, type TestContext } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Ask, ChatAppend, ChatHistory, GetConfig, HubConfig, List, Peek, Receive, Ack, Send, Spawn } from '../../server/protocol';
import type { HubClient } from '../../client/hubClient';
import { castOutput, ciInfo, cihub, findCi, hubLog, makeHome, ok, restartHub, sessionsOf, startHub, waitFor, type Home } from '../helpers';
import { problemLines } from '../fixtures/hardening';
import { startLlmFixture } from '../fixtures/llm';

/** A hub home with state made by `setup`, the hub stopped again. */
async function stateMadeBy(setup: (client: HubClient, home: Home) => Promise<void>): Promise<Home> {
  const home = makeHome();
  const client = await startHub(home);
  try {
    await setup(client, home);
  } finally {
    client.close();
  }
  await ok(['stop'], home.env);
  return home;
}

/** Starts the hub on damaged state; fails unless it starts. Returns a client and the new warn lines. */
async function startOnDamage(t: TestContext, home: Home): Promise<{ client: HubClient; warnings: string[] }> {
  const from = hubLog(home).length;
  const run = await cihub(['hub'], { env: home.env });
  const tail = hubLog(home).slice(from).trim().split('\n').slice(-5).join('\n');
  assert.equal(run.code, 0, `the hub did not start on damaged state:\n${run.stderr}\n${tail}`);
  const client = await startHub(home); // already running: connects
  const warnings = problemLines(home, from).map((l) => l.replace(/^\S+ /, ''));
  for (const w of warnings) t.diagnostic(`hub.log: ${printable(w.slice(0, 300))}`);
  if (warnings.length === 0) t.diagnostic('hub.log: (no warn or error lines)');
  return { client, warnings };
}

/** Control characters escaped, so a diagnostic cannot break the test reporter's output. */
function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

async function withHome(home: Home, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } finally {
    await home.cleanup();
  }
}

const registryFile = (home: Home) => path.join(home.paths.stateDir, 'registry.json');

async function twoSleepers(client: HubClient): Promise<void> {
  await client.call(Spawn, { kind: 'process', name: 'alpha', command: ['sleep', '600'] });
  await client.call(Spawn, { kind: 'process', name: 'beta', command: ['sleep', '600'] });
}

// ---------------------------------------------------------------------------------------------------
// registry.json

test('registry.json truncated mid-JSON: the hub starts, says so, keeps the damaged file aside', async (t) => {
  const home = await stateMadeBy(twoSleepers);
  await withHome(home, async () => {
    const text = fs.readFileSync(registryFile(home), 'utf8');
    fs.writeFileSync(registryFile(home), text.slice(0, Math.floor(text.length * 0.6)));
    const { client, warnings } = await startOnDamage(t, home);
    try {
      assert.ok(warnings.some((w) => /registry\.json.*not valid JSON/.test(w)), 'no warning about registry.json');
      const copies = fs.readdirSync(home.paths.stateDir).filter((f) => f.startsWith('registry.json.corrupt-'));
      assert.equal(copies.length, 1, 'the damaged registry was not kept aside');
      assert.equal(fs.readFileSync(path.join(home.paths.stateDir, copies[0]), 'utf8'), text.slice(0, Math.floor(text.length * 0.6)));
      const names = (await client.call(List, {})).cis.map((c) => c.name);
      t.diagnostic(`CIs after the restart: ${JSON.stringify(names)} (the truncated file named alpha and beta)`);
      assert.equal((await cihub(['list'], { env: home.env })).code, 0);
    } finally {
      client.close();
    }
  });
});

test('registry.json replaced by garbage bytes: the hub starts, says so, keeps the file aside', async (t) => {
  const home = await stateMadeBy(twoSleepers);
  await withHome(home, async () => {
    const garbage = Buffer.from([0x00, 0xff, 0x7b, 0x22, 0xfe, 0x0a, 0x13, 0x37]);
    fs.writeFileSync(registryFile(home), garbage);
    const { client, warnings } = await startOnDamage(t, home);
    try {
      assert.ok(warnings.some((w) => /registry\.json/.test(w)), 'no warning about registry.json');
      const copies = fs.readdirSync(home.paths.stateDir).filter((f) => f.startsWith('registry.json.corrupt-'));
      assert.equal(copies.length, 1);
      assert.deepEqual(fs.readFileSync(path.join(home.paths.stateDir, copies[0])), garbage);
      assert.equal((await cihub(['list'], { env: home.env })).code, 0);
    } finally {
      client.close();
    }
  });
});

test('registry.json with invalid entries among valid ones: the valid CIs are restored and running, each bad entry reported', async (t) => {
  const home = await stateMadeBy(twoSleepers);
  await withHome(home, async () => {
    const registry = JSON.parse(fs.readFileSync(registryFile(home), 'utf8')) as { version: number; cis: Record<string, unknown>[] };
    const [alpha, beta] = registry.cis;
    const bad: unknown[] = [
      { ...alpha, name: 5 },
      { ...alpha, name: 'gamma', command: 'sleep 600' },
      { ...alpha, name: 'delta', kind: 'robot' },
      { garbage: true },
      42,
      null,
    ];
    fs.writeFileSync(registryFile(home), JSON.stringify({ version: 1, cis: [alpha, ...bad.slice(0, 3), beta, ...bad.slice(3)] }));
    const { client, warnings } = await startOnDamage(t, home);
    try {
      for (const name of ['alpha', 'beta']) {
        const ci = await waitFor(async () => {
          const c = await findCi(client, name);
          return c?.state === 'running' ? c : undefined;
        }, 10_000, `${name} running again`);
        assert.ok(ci.pid, `${name} has no pid`);
      }
      const names = (await client.call(List, {})).cis.map((c) => c.name).sort();
      assert.deepEqual(names, ['alpha', 'beta']);
      const skipped = warnings.filter((w) => /invalid registry entry/.test(w));
      assert.equal(skipped.length, bad.length, `expected one warning per invalid entry (${bad.length}), got ${skipped.length}`);
      const after = JSON.parse(fs.readFileSync(registryFile(home), 'utf8')) as { cis: unknown[] };
      const aside = fs.readdirSync(home.paths.stateDir).filter((f) => f.startsWith('registry.json.'));
      t.diagnostic(`registry.json now has ${after.cis.length} entries; files kept aside: ${JSON.stringify(aside)}`);
    } finally {
      client.close();
    }
  });
});

test('registry.json of an unknown layout (a newer version, cis not a list): the hub starts and does not destroy it', async (t) => {
  for (const variant of ['version 2', 'cis is an object'] as const) {
    const home = await stateMadeBy(twoSleepers);
    await withHome(home, async () => {
      const registry = JSON.parse(fs.readFileSync(registryFile(home), 'utf8')) as { version: number; cis: unknown[] };
      const changed = variant === 'version 2' ? { ...registry, version: 2 } : { version: 1, cis: { alpha: registry.cis[0] } };
      const original = JSON.stringify(changed);
      fs.writeFileSync(registryFile(home), original);
      t.diagnostic(`variant: ${variant}`);
      const { client, warnings } = await startOnDamage(t, home);
      try {
        assert.ok(warnings.some((w) => /registry\.json/.test(w)), `${variant}: no warning`);
        const kept = fs
          .readdirSync(home.paths.stateDir)
          .filter((f) => f.startsWith('registry.json'))
          .some((f) => fs.readFileSync(path.join(home.paths.stateDir, f), 'utf8') === original);
        assert.ok(kept, `${variant}: the registry was overwritten and no copy of it was kept (every CI in it is lost)`);
      } finally {
        client.close();
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------------
// queues/<ci>.jsonl

test('a queue with garbage lines and a truncated last line: intact messages still receivable; later messages survive a restart', async (t) => {
  const home = await stateMadeBy(async (client) => {
    await client.call(Spawn, { kind: 'process', name: 'inbox', command: ['sleep', '600'] });
    for (let i = 1; i <= 5; i++) await client.call(Send, { message: { id: `m${i}`, to: 'inbox', content: `message ${i}` } });
    const first = await client.call(Receive, { name: 'inbox', max: 1, waitMs: 0 });
    await client.call(Ack, { name: 'inbox', ids: first.messages.map((m) => m.id) });
  });
  await withHome(home, async () => {
    const file = path.join(home.paths.stateDir, 'queues', 'inbox.jsonl');
    const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
    const damaged = [
      lines[0],
      'garbage',
      lines[1],
      '{"add":{"id":5}}',
      '[]',
      lines[2],
      '\u0000\u0000\u0000',
      '{"unknown":true}',
      ...lines.slice(3),
      // A record the hub was killed in the middle of writing (no newline).
      '{"add":{"id":"m6","type":"request","from":"anonymous","to":"inbox","content":"mess',
    ].join('\n');
    fs.writeFileSync(file, damaged);
    const { client, warnings } = await startOnDamage(t, home);
    let c = client;
    try {
      assert.ok(warnings.some((w) => /inbox\.jsonl.*damaged/.test(w)), 'no warning about the damaged queue');
      const ids = async () => (await c.call(Peek, { name: 'inbox' })).messages.map((m) => m.id).sort();
      assert.deepEqual(await ids(), ['m2', 'm3', 'm4', 'm5'], 'intact messages after the restart');
      // A message acknowledged now must survive the next restart too.
      const sent = await c.call(Send, { message: { id: 'm7', to: 'inbox', content: 'after the damage' } });
      assert.equal(sent.id, 'm7');
      const logAt = hubLog(home).length;
      c = await restartHub(home, c);
      for (const w of problemLines(home, logAt)) t.diagnostic(`hub.log at the next start: ${printable(w.slice(0, 300))}`);
      const later = await ids();
      t.diagnostic(`queue after another restart: ${JSON.stringify(later)}`);
      t.diagnostic(`queue file tail: ${JSON.stringify(fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).slice(-2).map((l) => l.slice(0, 120)))}`);
      assert.deepEqual(later, ['m2', 'm3', 'm4', 'm5', 'm7'], 'an acknowledged message was lost: it was appended to the truncated last line');
      const got = await c.call(Receive, { name: 'inbox', max: 10, waitMs: 0 });
      assert.deepEqual(got.messages.map((m) => m.content), ['message 2', 'message 3', 'message 4', 'message 5', 'after the damage']);
    } finally {
      c.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// captures

test('a capture truncated mid-line: the hub repairs it to its last whole event and says so; it exports', async (t) => {
  const home = await stateMadeBy(async (client, h) => {
    await client.call(Spawn, { kind: 'process', name: 'printer', command: ['sh', '-c', 'for i in 1 2 3 4 5; do echo "line $i"; sleep 0.2; done; sleep 600'] });
    await waitFor(() => {
      const [cast] = sessionsOf(h, 'printer');
      return cast && castOutput(cast).includes('line 5');
    }, 10_000, 'the output captured');
  });
  await withHome(home, async () => {
    const [cast] = sessionsOf(home, 'printer');
    const text = fs.readFileSync(cast, 'utf8');
    const lines = text.split('\n').filter(Boolean);
    // Cut the file in the middle of the event that printed "line 5" (or the last one).
    const victim = lines.findIndex((l) => l.includes('line 5'));
    assert.ok(victim > 0 && !lines[victim - 1].includes('line 5') && lines.slice(0, victim).some((l) => l.includes('line 4')), 'line 4 and line 5 in separate events');
    const cutAt = text.indexOf(lines[victim]) + Math.floor(lines[victim].length / 2);
    fs.writeFileSync(cast, text.slice(0, cutAt));
    const wholeBefore = lines.slice(0, victim);
    const { client, warnings } = await startOnDamage(t, home);
    try {
      assert.ok(warnings.some((w) => /printer: capture .* ended mid-write; dropped \d+ bytes/.test(w)), 'no warning about the capture');
      const repaired = fs.readFileSync(cast, 'utf8');
      assert.equal(repaired, `${wholeBefore.join('\n')}\n`, 'the capture is not its whole events up to the cut');
      for (const line of repaired.split('\n').filter(Boolean)) JSON.parse(line);
      const exported = await ok(['export', 'printer', '--format', 'md', '--session', path.basename(cast, '.cast')], home.env);
      assert.match(exported, /line 4/);
      // The CI runs again, in a new session.
      await waitFor(() => sessionsOf(home, 'printer').length === 2, 10_000, 'a new capture session');
    } finally {
      client.close();
    }
  });
});

test('a capture cut inside its header line: the hub starts; exporting that session fails with a clear message or yields an empty transcript', async (t) => {
  const home = await stateMadeBy(async (client, h) => {
    await client.call(Spawn, { kind: 'process', name: 'printer', command: ['sh', '-c', 'echo hello; sleep 600'] });
    await waitFor(() => {
      const [cast] = sessionsOf(h, 'printer');
      return cast && castOutput(cast).includes('hello');
    }, 10_000, 'the output captured');
  });
  await withHome(home, async () => {
    const [cast] = sessionsOf(home, 'printer');
    fs.writeFileSync(cast, fs.readFileSync(cast, 'utf8').slice(0, 20));
    const { client } = await startOnDamage(t, home);
    try {
      t.diagnostic(`the cast now has ${fs.statSync(cast).size} bytes`);
      for (const format of ['md', 'jsonl', 'cast']) {
        const r = await cihub(['export', 'printer', '--format', format, '--session', path.basename(cast, '.cast')], { env: home.env });
        t.diagnostic(`export --format ${format}: exit ${r.code}; ${(r.stderr || r.stdout).trim().split('\n').slice(0, 3).join(' | ').slice(0, 300)}`);
        assert.ok(r.code === 0 || /\w/.test(r.stderr), `export --format ${format} failed without a message`);
      }
      assert.equal((await cihub(['list'], { env: home.env })).code, 0);
    } finally {
      client.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// config.json, forwards.json

test('config.json that is not JSON: the hub starts with the defaults and says so', async (t) => {
  const home = await stateMadeBy(async (client) => {
    await client.call(Spawn, { kind: 'process', name: 'alpha', command: ['sleep', '600'] });
  });
  await withHome(home, async () => {
    fs.writeFileSync(path.join(home.paths.stateDir, 'config.json'), '{"contextPrefix": "alw');
    const { client, warnings } = await startOnDamage(t, home);
    try {
      assert.ok(warnings.some((w) => /config\.json/.test(w)), 'no warning about config.json');
      assert.deepEqual(await client.call(GetConfig, {}), HubConfig.parse({}));
    } finally {
      client.close();
    }
  });
});

test('config.json with one invalid value among valid ones: the invalid one is reported and defaulted, the others kept', async (t) => {
  const home = await stateMadeBy(async (client) => {
    await client.call(Spawn, { kind: 'process', name: 'alpha', command: ['sleep', '600'] });
  });
  await withHome(home, async () => {
    const file = path.join(home.paths.stateDir, 'config.json');
    fs.writeFileSync(file, JSON.stringify({ ports: { enabled: false, base: 5 }, contextPrefix: 'always', injectQuietMs: 250, injectHumanIdleMs: 777, defaultCiGraceMs: 1234 }));
    const { client, warnings } = await startOnDamage(t, home);
    try {
      assert.ok(warnings.some((w) => /config\.json/.test(w) && /base|1024/.test(w)), 'the invalid value is not named in the warning');
      const config = await client.call(GetConfig, {});
      t.diagnostic(`config after the restart: ${JSON.stringify(config)}`);
      const expected = { ...HubConfig.parse({}), ports: { enabled: false, base: 42100 }, contextPrefix: 'always', injectQuietMs: 250, injectHumanIdleMs: 777, defaultCiGraceMs: 1234 };
      assert.deepEqual(config, expected, 'intact settings were replaced by the defaults');
    } finally {
      client.close();
    }
  });
});

test('forwards.json damaged: the hub starts and says so; with some invalid entries the valid ones are kept and the rest reported', async (t) => {
  const home = await stateMadeBy(async (client) => {
    await twoSleepers(client);
    await client.call(Spawn, { kind: 'process', name: 'gamma', command: ['sleep', '600'] });
  });
  await withHome(home, async () => {
    const file = path.join(home.paths.stateDir, 'forwards.json');
    fs.writeFileSync(file, '{"alpha": "be');
    const first = await startOnDamage(t, home);
    try {
      assert.ok(first.warnings.some((w) => /forwards\.json/.test(w)), 'no warning about forwards.json');
    } finally {
      first.client.close();
    }
    await ok(['stop'], home.env);
    fs.writeFileSync(file, JSON.stringify({ alpha: 'beta', gamma: 5, 'BAD NAME': 'beta', beta: '../x' }));
    const second = await startOnDamage(t, home);
    try {
      const alpha = await ciInfo(second.client, 'alpha');
      assert.equal(alpha.forwardedTo, 'beta', 'the valid forward was not kept');
      await second.client.call(Send, { message: { to: 'alpha', content: 'for alpha' } });
      const atBeta = (await second.client.call(Peek, { name: 'beta' })).messages.map((m) => m.content);
      assert.deepEqual(atBeta, ['for alpha']);
      assert.ok(second.warnings.some((w) => /forwards\.json/.test(w)), 'the 3 invalid forwards were dropped without a word');
    } finally {
      second.client.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// chats/*.jsonl

test('a chat history with garbage lines and a truncated last line: intact entries shown, the damage reported, new entries survive', async (t) => {
  const projectRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cihp-'));
  const project = path.join(projectRoot, 'app');
  fs.mkdirSync(project);
  const home = await stateMadeBy(async (client) => {
    for (let i = 1; i <= 3; i++) await client.call(ChatAppend, { project, role: 'system', text: `entry ${i}`, format: 'plain' });
  });
  await withHome(home, async () => {
    const dir = path.join(home.paths.stateDir, 'chats');
    const [name] = fs.readdirSync(dir);
    const file = path.join(dir, name);
    const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
    fs.writeFileSync(file, [lines[0], 'garbage{', lines[1], '{"id":5}', lines[2], '{"id":"cut","t":1,"role":"system","text":"half an ent'].join('\n'));
    const { client, warnings } = await startOnDamage(t, home);
    let c = client;
    try {
      const texts = async () => (await c.call(ChatHistory, { project, limit: 100 })).entries.map((e) => e.text);
      assert.deepEqual(await texts(), ['entry 1', 'entry 2', 'entry 3']);
      await c.call(ChatAppend, { project, role: 'system', text: 'entry 4', format: 'plain' });
      c = await restartHub(home, c);
      const later = await texts();
      t.diagnostic(`chat after another restart: ${JSON.stringify(later)}`);
      const problems = { reported: warnings.concat(problemLines(home)).some((w) => /chat/i.test(w) && /damaged|skipped|invalid/i.test(w)), later };
      assert.deepEqual(problems, { reported: true, later: ['entry 1', 'entry 2', 'entry 3', 'entry 4'] }, 'chat damage: silently skipped, and/or a new entry lost');
    } finally {
      c.close();
      fs.rmSync(projectRoot, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// conversations/*.jsonl

test('a model conversation with garbage lines and a truncated last line: intact turns kept, the damage reported, new turns survive', { timeout: 90_000 }, async (t) => {
  const fixture = await startLlmFixture('ollama', ['m1'], { kind: 'ok', tokens: ['an ', 'answer'] });
  try {
    const home = await stateMadeBy(async (client) => {
      await client.call(Spawn, { kind: 'model', name: 'helper', provider: 'ollama', model: 'm1', baseUrl: fixture.baseUrl });
      for (const q of ['question 1', 'question 2']) await client.call(Ask, { message: { to: 'helper', from: 'tester', content: q }, timeoutMs: 20_000 });
    });
    await withHome(home, async () => {
      const file = path.join(home.paths.stateDir, 'conversations', 'helper.jsonl');
      const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
      assert.equal(lines.length, 4);
      // Garbage between the turns, and the last turn cut in half (so 3 whole turns remain).
      fs.writeFileSync(file, [lines[0], 'not json', lines[1], '{"role":"robot","content":"x","t":1}', lines[2], lines[3].slice(0, 15)].join('\n'));
      const { client, warnings } = await startOnDamage(t, home);
      let c = client;
      try {
        const turns = async () => (await findCi(c, 'helper'))?.model?.turns;
        assert.equal(await turns(), 3, 'intact turns after the restart');
        await c.call(Ask, { message: { to: 'helper', from: 'tester', content: 'question 3' }, timeoutMs: 20_000 });
        assert.equal(await turns(), 5);
        c = await restartHub(home, c);
        const later = await waitFor(() => turns(), 10_000, 'the model CI back');
        t.diagnostic(`turns after another restart: ${later} (expected 5)`);
        const result = { reported: warnings.concat(problemLines(home)).some((w) => /conversation|helper\.jsonl/i.test(w)), turns: later };
        assert.deepEqual(result, { reported: true, turns: 5 }, 'conversation damage: silently skipped, and/or a new turn lost');
      } finally {
        c.close();
      }
    });
  } finally {
    await fixture.close();
  }
});
