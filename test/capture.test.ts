/**
 * Capture: asciicast v2 files that the real `asciinema` reads, byte-exact to the last byte before exit,
 * with input, timing and resizes; a file cut by a crash is repaired, not lost.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { castOutput, cihub, inPty, ok, readCast, sessionsOf, waitFor, withHub } from './helpers';
import { Attach, AttachResize, Detach, Input, List, Output, Spawn } from '../server/protocol';
import { repairCast } from '../server/capture';

const SEQ = Array.from({ length: 20000 }, (_, i) => String(i + 1)).join('\r\n') + '\r\n';

test('40 CIs running `seq 1 20000` at once: every capture holds every byte, through the hub', async () => {
  await withHub(async (home, client) => {
    const names = Array.from({ length: 40 }, (_, i) => `seq${i}`);
    await Promise.all(names.map((name) => client.call(Spawn, { kind: 'process', name, command: ['seq', '1', '20000'] })));
    await waitFor(async () => (await client.call(List, {})).cis.every((c) => c.state === 'exited'), 30_000, 'all to exit');
    const { cis } = await client.call(List, {});
    let lost = 0;
    for (const ci of cis) {
      assert.equal(ci.exitCode, 0);
      const [file] = sessionsOf(home, ci.name);
      if (castOutput(file) !== SEQ) lost++;
      assert.equal(ci.bytesCaptured, Buffer.byteLength(SEQ));
    }
    assert.equal(lost, 0, `${lost} of ${cis.length} captures lost output`);
  });
});

test('the real asciinema reads a capture: `asciinema cat` and `asciinema play` show what the CI printed', async () => {
  await withHub(async (home, client) => {
    await ok(['spawn', 'colors', '--', 'sh', '-c', 'printf "\\033[31mred\\033[0m plain\\n"; printf "ünïcödé ✓ 漢字\\n"; seq 1 5'], home.env);
    await waitFor(async () => (await client.call(List, {})).cis[0]?.state === 'exited', 15_000, 'exit');
    const [file] = sessionsOf(home, 'colors');
    const expected = '\x1b[31mred\x1b[0m plain\r\nünïcödé ✓ 漢字\r\n1\r\n2\r\n3\r\n4\r\n5\r\n';
    assert.equal(castOutput(file), expected);
    assert.equal(await inPty(`asciinema cat ${file} && echo; echo "exit $?"`), `${expected}\nexit 0\n`);
    const played = await inPty(`asciinema play -s 50 ${file}; echo "exit $?"`);
    assert.match(played, /exit 0\n$/);
    assert.match(played, /red\x1b\[0m plain/);
    assert.match(played, /ünïcödé ✓ 漢字/);
    assert.match(played, /4\r\n5/);
  });
});

test('input, timing and resizes are captured; export gives the cast, JSONL and Markdown', async () => {
  await withHub(async (home, client) => {
    await ok(['spawn', 'echoer', '--', 'sh', '-c', 'read a; echo "first:$a"; read b; stty size; echo "second:$b"; sleep 30'], home.env);
    const attachId = randomUUID();
    let seen = '';
    client.on(Output, ({ attachId: id, data }) => {
      if (id === attachId) seen += data;
    });
    await client.call(Attach, { name: 'echoer', attachId, cols: 100, rows: 30 });
    await client.notify(Input, { attachId, data: 'one\r' });
    await waitFor(() => seen.includes('first:one'), 15_000, 'first answer');
    await client.notify(AttachResize, { attachId, cols: 91, rows: 27 });
    await waitFor(async () => (await client.call(List, {})).cis[0].cols === 91, 15_000, 'resize');
    await client.notify(Input, { attachId, data: 'two\r' });
    await waitFor(() => seen.includes('second:two'), 15_000, 'second answer');
    await client.notify(Detach, { attachId });
    const [file] = sessionsOf(home, 'echoer');
    await waitFor(() => castOutput(file).includes('second:two'), 15_000, 'capture flushed');
    const { header, events } = readCast(file);
    assert.equal(header.version, 2);
    assert.equal(header.width, 120);
    assert.equal(typeof header.timestamp, 'number');
    const inputs = events.filter((e) => e[1] === 'i').map((e) => e[2]);
    assert.deepEqual(inputs, ['one\r', 'two\r']);
    const resizes = events.filter((e) => e[1] === 'r').map((e) => e[2]);
    assert.deepEqual(resizes, ['100x30', '91x27']);
    assert.match(castOutput(file), /27 91/);
    // Times never go backwards.
    for (let i = 1; i < events.length; i++) assert.ok(events[i][0] >= events[i - 1][0]);

    const cast = await ok(['export', 'echoer', '--format', 'cast'], home.env);
    assert.equal(cast, fs.readFileSync(file, 'utf8').slice(0, cast.length));
    const jsonl = (await ok(['export', 'echoer', '--format', 'jsonl'], home.env)).trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(jsonl[0].type, 'session');
    assert.equal(jsonl[0].ci, 'echoer');
    assert.deepEqual(jsonl.filter((l) => l.type === 'input').map((l) => l.data), ['one\r', 'two\r']);
    const screen = jsonl.find((l) => l.type === 'screen');
    assert.match(screen.text, /first:one\n[\s\S]*second:two/);
    const md = await ok(['export', 'echoer', '--format', 'md'], home.env);
    assert.match(md, /^# echoer — session \d{8}T\d{6}Z-1\n/);
    assert.match(md, /```text\n[\s\S]*first:one[\s\S]*second:two\n```/);
    const out = path.join(home.dir, 'saved.cast');
    await ok(['export', 'echoer', '-o', out], home.env);
    assert.ok(fs.statSync(out).size > 0);
    const missing = await cihub(['export', 'echoer', '--session', 'nope'], { env: home.env });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^cihub: echoer has no session "nope"; it has: \d{8}T\d{6}Z-1\n$/);
  });
});

test('a capture cut mid-line by a crash is repaired to its last whole event', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cast-'));
  try {
    const file = path.join(dir, 'x.cast');
    const whole = '{"version":2,"width":80,"height":24}\n[0.1,"o","hello"]\n[0.2,"o","world"]\n';
    fs.writeFileSync(file, `${whole}[0.3,"o","cut of`);
    assert.equal(repairCast(file), '[0.3,"o","cut of'.length);
    assert.equal(fs.readFileSync(file, 'utf8'), whole);
    assert.equal(repairCast(file), 0);
    assert.equal(await inPty(`asciinema cat ${file}`), 'helloworld');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
