/**
 * Disk: captures and mailboxes are bounded by the retention settings, and a full disk is reported (to
 * the sender, in the log and as an alert to every window), not silently dropped.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Event, Peek, Spawn, Status, Watch, type HubEvent } from '../server/protocol';
import { ciInfo, cihub, connect, hasCommand, hubLog, inPty, makeHome, ok, readCast, sessionsOf, startHub, waitFor, withHub, type Home } from './helpers';

const MIB = 1024 * 1024;

/** A second connection that collects the hub's events. */
async function watch(home: Home): Promise<{ events: HubEvent[]; close(): void }> {
  const watcher = await connect(home);
  const events: HubEvent[] = [];
  watcher.on(Event, (e) => events.push(e));
  await watcher.call(Watch, {});
  return { events, close: () => watcher.close() };
}

test('a flood of output stays within retention.captureMaxMB: the session continues in new files, none loses a byte, the oldest removed', async () => {
  await withHub(async (home, client) => {
    await ok(['config', 'retention.captureMaxMB', '16'], home.env);
    // 39 MB of numbered lines, then a marker the newest file must end with.
    await client.call(Spawn, {
      kind: 'process',
      name: 'flood',
      command: ['sh', '-c', 'seq 1 5000000; echo END-OF-FLOOD-$((40 + 2)); exec sleep 600'],
    });
    await waitFor(() => {
      const file = sessionsOf(home, 'flood').at(-1);
      return file && fs.readFileSync(file, 'utf8').includes('END-OF-FLOOD-42');
    }, 120_000, 'the end of the flood in the newest capture file');
    await waitFor(() => hubLog(home).includes('retention: removed'), 10_000, 'retention to remove old files');
    const files = sessionsOf(home, 'flood');
    const total = files.reduce((n, f) => n + fs.statSync(f).size, 0);
    assert.ok(files.length >= 2, `the session continued in new files (${files.length})`);
    // The limit, plus at most the quarter the live file may grow after the last pass.
    assert.ok(total <= 16 * MIB * 1.25, `captures take ${(total / MIB).toFixed(1)} MiB`);
    // What the kept files hold, in order, is one unbroken run of lines up to the end: no byte lost at a
    // file boundary. (A continuation begins with the screen, at t=0: a picture, not part of the run.)
    let text = '';
    for (const file of files) {
      const cast = readCast(file); // every line is whole JSON
      assert.equal(cast.header.version, 2);
      cast.events.forEach(([t, code, data], i) => {
        if (code === 'o' && !(i === 0 && t === 0)) text += data;
      });
    }
    const lines = text.split('\r\n');
    lines.shift(); // the first kept line may be partial
    const end = lines.indexOf('END-OF-FLOOD-42');
    assert.ok(end > 0);
    const numbers = lines.slice(0, end).map(Number);
    assert.equal(numbers[numbers.length - 1], 5_000_000);
    const gap = numbers.findIndex((n, i) => i > 0 && n !== numbers[i - 1] + 1);
    assert.equal(gap, -1, `the kept capture skips from ${numbers[gap - 1]} to ${numbers[gap]}`);
    if (hasCommand('asciinema')) {
      // The newest file plays on its own.
      assert.match(await inPty(`asciinema cat ${files[files.length - 1]} | tail -c 300; echo "exit $?"`), /END-OF-FLOOD-42[\s\S]*exit 0/);
    }
    assert.match(hubLog(home), /retention: removed \d+ capture session\(s\) of flood/);
    const status = await client.call(Status, {});
    assert.ok(status.hub.captureBytes !== undefined && status.hub.captureBytes <= 16 * MIB * 1.25);
  });
});

test('capture sessions older than retention.captureMaxAgeDays are removed at start, the recent ones kept', async () => {
  const home = makeHome();
  const dir = path.join(home.paths.stateDir, 'captures', 'gone');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const header = '{"version":2,"width":80,"height":24}\n[0.1,"o","hi"]\n';
  const old = new Date(Date.now() - 40 * 86_400_000).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const recent = new Date(Date.now() - 2 * 86_400_000).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  fs.writeFileSync(path.join(dir, `${old}-1.cast`), header, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, `${recent}-1.cast`), header, { mode: 0o600 });
  await withHub(async () => {
    await waitFor(() => !fs.existsSync(path.join(dir, `${old}-1.cast`)), 10_000, 'the 40-day-old session to go');
    assert.ok(fs.existsSync(path.join(dir, `${recent}-1.cast`)), 'the 2-day-old session stays');
    assert.match(hubLog(home), /retention: removed 1 capture session\(s\) of gone/);
  }, home);
});

test('a full mailbox refuses a direct send (mailbox_full, on the bus socket and through the CLI); a broadcast skips it', async () => {
  await withHub(async (home, client) => {
    await ok(['config', 'retention.queueMaxMessages', '10'], home.env);
    await client.call(Spawn, { kind: 'process', name: 'slow', command: ['sleep', '600'] });
    await client.call(Spawn, { kind: 'process', name: 'other', command: ['sleep', '600'] });
    for (let i = 0; i < 10; i++) await ok(['send', 'slow', `m${i}`], home.env);
    const refused = await cihub(['send', 'slow', 'one too many'], { env: home.env });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /slow's mailbox holds 10 messages, the retention.queueMaxMessages limit/);
    // The same over the bus socket, as an agent would see it.
    const line = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(path.join(home.paths.busDir, 'other.sock'));
      let got = '';
      socket.on('data', (d: Buffer) => {
        got += d.toString();
        if (got.includes('\n')) {
          socket.destroy();
          resolve(got.trim());
        }
      });
      socket.on('error', reject);
      socket.write('{"to":"slow","content":"from other"}\n');
    });
    assert.equal(JSON.parse(line).error.code, 'mailbox_full');
    const broadcast = JSON.parse(await ok(['send', '*', 'to all', '--json'], home.env));
    assert.deepEqual(broadcast.recipients, ['other']);
    const { messages } = await client.call(Peek, { name: 'slow' });
    assert.deepEqual(messages.map((m) => m.content), Array.from({ length: 10 }, (_, i) => `m${i}`));
  });
});

test('a message without its own ttl expires after retention.queueMaxAgeDays; 0 keeps it', async () => {
  await withHub(async (home, client) => {
    await client.call(Spawn, { kind: 'process', name: 'box', command: ['sleep', '600'] });
    const before = Date.now();
    await ok(['send', 'box', 'default age'], home.env);
    await ok(['config', 'retention.queueMaxAgeDays', '0'], home.env);
    await ok(['send', 'box', 'kept forever'], home.env);
    const { messages } = await client.call(Peek, { name: 'box' });
    const byContent = new Map(messages.map((m) => [m.content, m]));
    const expires = byContent.get('default age')?.expires_at ?? 0;
    assert.ok(Math.abs(expires - (before + 14 * 86_400_000)) < 60_000, `expires_at ${new Date(expires).toISOString()}`);
    assert.equal(byContent.get('kept forever')?.expires_at, undefined);
  });
});

/** Mounts a small tmpfs as the state dir; undefined (with the reason) where the machine does not allow it. */
function mountSmallState(home: Home, size: string): string | undefined {
  if (process.getuid?.() !== 0) return 'mounting a small file system needs root';
  fs.mkdirSync(home.paths.stateDir, { recursive: true, mode: 0o700 });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', home.paths.stateDir], { encoding: 'utf8' });
  return r.status === 0 ? undefined : `mount failed: ${r.stderr.trim()}`;
}

test('a full disk is reported: an alert in every window, a capture that stops says so, a send is refused, not dropped', async (t) => {
  const home = makeHome();
  const why = mountSmallState(home, '6m');
  if (why) {
    t.skip(why);
    fs.rmSync(home.dir, { recursive: true, force: true });
    return;
  }
  const client = await startHub(home);
  const watcher = await watch(home);
  try {
    // Below diskLowMB (512 MiB by default) from the start: the hub said so.
    assert.match(hubLog(home), /has \d+ MiB free \(below diskLowMB 512\)/);
    const status = await client.call(Status, {});
    assert.ok(status.hub.diskFreeBytes !== undefined && status.hub.diskFreeBytes < 6 * MIB);
    await client.call(Spawn, { kind: 'process', name: 'quiet', command: ['sleep', '600'] });
    // Fill the disk through a capture.
    await client.call(Spawn, { kind: 'process', name: 'filler', command: ['sh', '-c', 'yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 12000000; exec sleep 600'] });
    await waitFor(
      () => watcher.events.some((e) => e.type === 'alert' && /filler: its capture .* failed: .*ENOSPC.*the disk is full/.test(e.message)),
      60_000,
      'an alert that the capture stopped',
    );
    const refused = await cihub(['send', 'quiet', 'while full'], { env: home.env });
    assert.notEqual(refused.code, 0, 'a send that cannot be written is refused');
    assert.match(refused.stderr, /could not write the queue .*ENOSPC/);
    // Space again: sends work, and nothing refused was half-accepted.
    for (const f of sessionsOf(home, 'filler')) fs.rmSync(f);
    await ok(['send', 'quiet', 'after space'], home.env);
    const { messages } = await client.call(Peek, { name: 'quiet' });
    assert.deepEqual(messages.map((m) => m.content), ['after space']);
    assert.equal((await ciInfo(client, 'quiet')).state, 'running', 'other CIs are unaffected');
  } finally {
    watcher.close();
    client.close();
    await ok(['stop'], home.env).catch(() => undefined);
    spawnSync('umount', ['-l', home.paths.stateDir]);
    await home.cleanup();
  }
});
