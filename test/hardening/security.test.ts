/**
 * Hardening 3: local and private by default (DESIGN.md "Qualities"): 0700 dirs and 0600 files and sockets
 * even under a permissive umask; a runtime dir that others can read or that another user owns is refused;
 * no TCP listener unless ports are enabled, and then loopback only; another user cannot connect; secret
 * environment values never reach the disk. (The webview CSP needs VS Code: the e2e suite covers it.)
 *
 * Some tests need root (to create a second user and run a client as that user); they skip, saying why,
 * where that is not possible.
 */
import { test, type TestContext } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChatAppend, Send, SetConfig, Spawn } from '../../server/protocol';
import { CIHUB, cihub, connect, findCi, hubPid, makeHome, ok, waitFor, walkFiles, withHub, type Home } from '../helpers';
import { startLlmFixture } from '../fixtures/llm';

const OTHER_USER = 'cihubtest';

const mode = (p: string) => fs.lstatSync(p).mode & 0o777;
const octal = (m: number) => `0${m.toString(8)}`;

/** Runs `cihub hub` from a shell with the given umask. */
function hubUnderUmask(home: Home, umask: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', `umask ${umask}; exec "$0" "$1" hub`, process.execPath, CIHUB], { env: home.env });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

/** Every path under `dir` (dirs, files, sockets) with its mode. */
function everything(dir: string): { path: string; kind: string; mode: number }[] {
  const out: { path: string; kind: string; mode: number }[] = [];
  const visit = (p: string) => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return; // removed while we looked
    }
    const kind = st.isDirectory() ? 'dir' : st.isSocket() ? 'socket' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
    out.push({ path: p, kind, mode: st.mode & 0o777 });
    if (st.isDirectory()) for (const name of fs.readdirSync(p)) visit(path.join(p, name));
  };
  visit(dir);
  return out;
}

test('permissions under umask 000: runtime and state dirs 0700, sockets and state files 0600, nothing open to others', { timeout: 90_000 }, async (t) => {
  const home = makeHome();
  const fixture = await startLlmFixture('ollama', ['m1'], { kind: 'ok', tokens: ['ok'] });
  const projectRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cihs-'));
  const project = path.join(projectRoot, 'app');
  fs.mkdirSync(project);
  try {
    const started = await hubUnderUmask(home, '000');
    assert.equal(started.code, 0, started.out);
    const client = await connect(home);
    try {
      // Make every kind of state: registry, queue, timeline, capture, config, forwards, chat, conversation, export.
      await client.call(Spawn, { kind: 'process', name: 'worker', command: ['sh', '-c', 'echo hi; sleep 600'], project });
      await client.call(Spawn, { kind: 'process', name: 'other', command: ['sleep', '600'] });
      await client.call(Spawn, { kind: 'model', name: 'helper', provider: 'ollama', model: 'm1', baseUrl: fixture.baseUrl });
      await client.call(Send, { message: { to: 'worker', content: 'hello' } });
      await ok(['send', 'helper', '--wait', 'question'], home.env);
      await client.call(SetConfig, { contextPrefix: 'always' });
      await ok(['forward', 'other', '--to', 'larry'], home.env);
      await client.call(ChatAppend, { project, role: 'system', text: 'note', format: 'plain' });
      await waitFor(() => fs.existsSync(path.join(home.paths.busDir, 'worker.sock')), 5000, 'the bus socket');
      await ok(['export', 'worker', '--format', 'md'], home.env);
    } finally {
      client.close();
    }
    const { runtimeDir, stateDir, socket, busDir } = home.paths;
    const required: [string, number][] = [
      [runtimeDir, 0o700],
      [stateDir, 0o700],
      [socket, 0o600],
      [path.join(busDir, 'worker.sock'), 0o600],
      [path.join(busDir, 'helper.sock'), 0o600],
      [path.join(stateDir, 'registry.json'), 0o600],
      [path.join(stateDir, 'config.json'), 0o600],
      [path.join(stateDir, 'forwards.json'), 0o600],
      [path.join(stateDir, 'queues', 'worker.jsonl'), 0o600],
      [path.join(stateDir, 'hub.log'), 0o600],
    ];
    const wrong = required.filter(([p, m]) => !fs.existsSync(p) || mode(p) !== m).map(([p, m]) => `${p}: ${fs.existsSync(p) ? octal(mode(p)) : 'missing'} (want ${octal(m)})`);
    assert.deepEqual(wrong, [], 'required modes');
    // Nothing anywhere under CIHUB_HOME is readable, writable or searchable by group or others.
    const open = everything(home.dir).filter((e) => e.kind !== 'symlink' && e.mode & 0o077).map((e) => `${e.kind} ${octal(e.mode)} ${path.relative(home.dir, e.path)}`);
    t.diagnostic(`${everything(home.dir).length} paths checked under CIHUB_HOME`);
    assert.deepEqual(open, [], 'paths open to group or others');
  } finally {
    await fixture.close();
    await home.cleanup();
    fs.rmSync(projectRoot, { recursive: true, force: true });
  }
});

test('a CI runs with the umask of whoever started the hub, not the hub\'s private 077 (files it makes in a project stay shareable)', { timeout: 60_000 }, async (t) => {
  const home = makeHome();
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cihu-'));
  try {
    const started = await hubUnderUmask(home, '022');
    assert.equal(started.code, 0, started.out);
    // The CI is spawned from a CLI running under umask 022 too.
    const child = spawnSync('sh', ['-c', `umask 022; exec "$0" "$1" spawn masker -- sh -c 'umask > ${out}/umask; touch ${out}/made; sleep 600'`, process.execPath, CIHUB], { env: home.env, encoding: 'utf8' });
    assert.equal(child.status, 0, child.stderr);
    await waitFor(() => fs.existsSync(path.join(out, 'made')), 10_000, 'the CI to run');
    const umask = fs.readFileSync(path.join(out, 'umask'), 'utf8').trim();
    t.diagnostic(`the CI's umask: ${umask}; a file it created: ${octal(mode(path.join(out, 'made')))}`);
    assert.equal(umask, '0022', 'the CI inherited the hub\'s umask 077: every file an agent creates in the project is private (0600)');
  } finally {
    await home.cleanup();
    fs.rmSync(out, { recursive: true, force: true });
  }
});

/** Tries `cihub hub` on a prepared runtime dir: it must be refused, saying why, and leave the dir empty. */
async function expectRefused(t: TestContext, home: Home, why: RegExp, what: string): Promise<void> {
  const before = fs.existsSync(home.paths.runtimeDir) && fs.lstatSync(home.paths.runtimeDir).isDirectory() ? fs.readdirSync(home.paths.runtimeDir) : [];
  const r = await cihub(['hub'], { env: home.env });
  t.diagnostic(`${what}: exit ${r.code}; ${r.stderr.trim().split('\n')[0]?.slice(0, 300)}`);
  assert.notEqual(r.code, 0, `${what}: the hub started`);
  assert.match(r.stderr, why, `${what}: the message does not say why`);
  if (fs.existsSync(home.paths.runtimeDir) && fs.lstatSync(home.paths.runtimeDir).isDirectory()) {
    assert.deepEqual(fs.readdirSync(home.paths.runtimeDir), before, `${what}: something was created inside the refused dir`);
  }
  assert.equal(fs.existsSync(home.paths.socket), false, `${what}: hub.sock exists`);
  const pid = hubPid(home.paths.lock);
  assert.equal(pid, undefined, `${what}: a hub lock was taken`);
  // And no hub is left running that answers anywhere.
  assert.equal((await cihub(['status'], { env: home.env })).code, 1);
}

function ensureOtherUser(): { ok: true; created: boolean } | { ok: false; reason: string } {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'not root: cannot create a second user or run a client as one' };
  if (spawnSync('id', [OTHER_USER]).status === 0) return { ok: true, created: false };
  const r = spawnSync('useradd', ['-M', '-r', '-s', '/usr/sbin/nologin', OTHER_USER], { encoding: 'utf8' });
  if (r.status !== 0) return { ok: false, reason: `useradd failed: ${(r.stderr || r.error?.message || '').trim()}` };
  return { ok: true, created: true };
}

function removeOtherUser(created: boolean): void {
  if (created) spawnSync('userdel', [OTHER_USER]);
}

function uidOf(user: string): number {
  return Number(spawnSync('id', ['-u', user], { encoding: 'utf8' }).stdout.trim());
}

test('a runtime dir open to others, owned by another user, or a symlink is refused with a clear message; nothing is created in it', { timeout: 60_000 }, async (t) => {
  // Open to others.
  for (const m of [0o755, 0o750, 0o707, 0o701]) {
    const home = makeHome();
    try {
      fs.mkdirSync(home.paths.runtimeDir);
      fs.chmodSync(home.paths.runtimeDir, m);
      await expectRefused(t, home, /open to other users.*chmod 700/, `runtime dir ${octal(m)}`);
      assert.equal(mode(home.paths.runtimeDir), m, 'the hub changed the mode of a dir it refused');
    } finally {
      await home.cleanup();
    }
  }
  // A state dir open to others is refused the same way.
  {
    const home = makeHome();
    try {
      fs.mkdirSync(home.paths.stateDir);
      fs.chmodSync(home.paths.stateDir, 0o755);
      await expectRefused(t, home, /open to other users/, 'state dir 0755');
    } finally {
      await home.cleanup();
    }
  }
  // A symlink in place of the runtime dir (to a private dir of ours).
  {
    const home = makeHome();
    const target = fs.mkdtempSync(path.join(os.tmpdir(), 'cihl-'));
    try {
      fs.symlinkSync(target, home.paths.runtimeDir);
      await expectRefused(t, home, /not a directory|symlink/, 'runtime dir is a symlink');
      assert.deepEqual(fs.readdirSync(target), [], 'something was created through the symlink');
    } finally {
      await home.cleanup();
      fs.rmSync(target, { recursive: true, force: true });
    }
  }
  // Owned by another user (0700, as a squatter in /tmp would make it).
  const user = ensureOtherUser();
  if (!user.ok) {
    t.diagnostic(`skipped the other-owner case: ${user.reason}`);
    return;
  }
  const home = makeHome();
  try {
    fs.mkdirSync(home.paths.runtimeDir, { mode: 0o700 });
    fs.chownSync(home.paths.runtimeDir, uidOf(OTHER_USER), uidOf(OTHER_USER));
    await expectRefused(t, home, /belongs to uid \d+, not to you/, 'runtime dir owned by another user');
  } finally {
    await home.cleanup();
    removeOtherUser(user.created);
  }
});

/** The local addresses of the TCP sockets in LISTEN state that `pid` holds: `ip:port` (hex decoded). */
function listeners(pid: number): { family: 4 | 6; address: string; port: number }[] {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed while we looked
    }
  }
  const out: { family: 4 | 6; address: string; port: number }[] = [];
  for (const [file, family] of [['/proc/net/tcp', 4], ['/proc/net/tcp6', 6]] as const) {
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A' || !inodes.has(f[9])) continue;
      const [hexAddr, hexPort] = f[1].split(':');
      let address: string;
      if (family === 4) {
        const n = Buffer.from(hexAddr, 'hex');
        address = [n[3], n[2], n[1], n[0]].join('.');
      } else {
        // Four little-endian 32-bit words.
        const words = hexAddr.match(/.{8}/g) ?? [];
        const bytes = Buffer.concat(words.map((w) => Buffer.from(w, 'hex').reverse()));
        address = (bytes.toString('hex').match(/.{4}/g) ?? []).join(':');
      }
      out.push({ family, address, port: parseInt(hexPort, 16) });
    }
  }
  return out;
}

function freePortBase(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(Math.min(Math.max(port, 1024), 64_990)));
    });
    server.on('error', reject);
  });
}

test('no TCP listener unless ports are enabled; with ports, only 127.0.0.1', { timeout: 60_000 }, async (t) => {
  const projectRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cihn-'));
  const project = path.join(projectRoot, 'app');
  fs.mkdirSync(project);
  try {
    await withHub(async (home, client) => {
      const pid = hubPid(home.paths.lock);
      assert.ok(pid);
      await client.call(Spawn, { kind: 'process', name: 'worker', command: ['sleep', '600'], project });
      await client.call(Spawn, { kind: 'process', name: 'loner', command: ['sleep', '600'] });
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(listeners(pid), [], 'the hub listens on TCP with ports disabled');
      // Enable ports on a base that is free now.
      const base = await freePortBase();
      await ok(['config', 'ports.base', String(base)], home.env);
      await ok(['config', 'ports.enabled', 'true'], home.env);
      const worker = await waitFor(async () => {
        const c = await findCi(client, 'worker');
        return c?.port ? c : undefined;
      }, 5000, 'a port for the project CI');
      const open = await waitFor(() => {
        const l = listeners(pid);
        return l.length ? l : undefined;
      }, 5000, 'the port listener');
      t.diagnostic(`listeners with ports enabled: ${JSON.stringify(open)}`);
      assert.deepEqual(open, [{ family: 4, address: '127.0.0.1', port: worker.port }], 'only the project CI, only on loopback');
      await ok(['config', 'ports.enabled', 'false'], home.env);
      await waitFor(() => listeners(pid).length === 0, 5000, 'the listener to close once ports are disabled');
    });
  } finally {
    fs.rmSync(projectRoot, { recursive: true, force: true });
  }
});

/** Runs a Node client as another user; returns what connect() said: CONNECTED or an error code. */
function connectAs(user: string, socketPath: string): string {
  const script = "const s=require('net').connect(process.argv[1]);s.on('connect',()=>{console.log('CONNECTED');process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(0)})";
  const r = spawnSync('runuser', ['-u', user, '--', process.execPath, '-e', script, socketPath], { encoding: 'utf8', cwd: '/', timeout: 10_000 });
  return (r.stdout || r.stderr || String(r.error)).trim();
}

function readAs(user: string, file: string): string {
  const script = "try{require('fs').readFileSync(process.argv[1]);console.log('READ')}catch(e){console.log(e.code)}";
  const r = spawnSync('runuser', ['-u', user, '--', process.execPath, '-e', script, file], { encoding: 'utf8', cwd: '/', timeout: 10_000 });
  return (r.stdout || r.stderr || String(r.error)).trim();
}

test('another user cannot connect to hub.sock or a bus socket, nor read the state', { timeout: 60_000 }, async (t) => {
  const user = ensureOtherUser();
  if (!user.ok) {
    t.skip(user.reason);
    return;
  }
  try {
    await withHub(async (home, client) => {
      await client.call(Spawn, { kind: 'process', name: 'target', command: ['sleep', '600'] });
      const bus = path.join(home.paths.busDir, 'target.sock');
      await waitFor(() => fs.existsSync(bus), 5000, 'the bus socket');
      // Root can (a control: the client script works).
      assert.equal(spawnSync(process.execPath, ['-e', "require('net').connect(process.argv[1]).on('connect',()=>{console.log('CONNECTED');process.exit(0)})", home.paths.socket], { encoding: 'utf8' }).stdout.trim(), 'CONNECTED');
      // As the dirs are: the 0700 dirs stop the other user already.
      const asIs = { hub: connectAs(OTHER_USER, home.paths.socket), bus: connectAs(OTHER_USER, bus), registry: readAs(OTHER_USER, path.join(home.paths.stateDir, 'registry.json')) };
      t.diagnostic(`as ${OTHER_USER}, dirs as the hub made them: ${JSON.stringify(asIs)}`);
      assert.deepEqual(asIs, { hub: 'EACCES', bus: 'EACCES', registry: 'EACCES' });
      // With the dirs made searchable (a mistake, or a CIHUB_HOME in a shared place), the sockets' and files'
      // own 0600 modes still stop them.
      const dirs = [home.dir, home.paths.runtimeDir, home.paths.busDir, home.paths.stateDir];
      const saved = dirs.map((d) => mode(d));
      try {
        for (const d of dirs) fs.chmodSync(d, 0o711);
        const layered = { hub: connectAs(OTHER_USER, home.paths.socket), bus: connectAs(OTHER_USER, bus), registry: readAs(OTHER_USER, path.join(home.paths.stateDir, 'registry.json')) };
        t.diagnostic(`as ${OTHER_USER}, dirs 0711: ${JSON.stringify(layered)}`);
        assert.deepEqual(layered, { hub: 'EACCES', bus: 'EACCES', registry: 'EACCES' });
      } finally {
        dirs.forEach((d, i) => fs.chmodSync(d, saved[i]));
      }
    });
  } finally {
    removeOtherUser(user.created);
  }
});

test('a secret-looking env var of a process CI never reaches a file; after a restart the CI gets it from the hub\'s environment', { timeout: 90_000 }, async () => {
  const home = makeHome();
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cihk-'));
  const secrets: Record<string, string> = {
    GITHUB_TOKEN: `ghp_${randomBytes(18).toString('hex')}`,
    MY_SERVICE_API_KEY: `sk-${randomBytes(16).toString('hex')}`,
    DB_PASSWORD: `pw-${randomBytes(12).toString('hex')}`,
    AWS_SECRET_ACCESS_KEY: randomBytes(20).toString('base64'),
  };
  const plain = `visible-${randomBytes(6).toString('hex')}`;
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  const seen = () => {
    try {
      return fs.readFileSync(path.join(out, 'seen'), 'utf8').trim().split(/\s+/)[0];
    } catch {
      return undefined;
    }
  };
  const leaks = (values: string[]) =>
    walkFiles(home.dir).flatMap((f) => {
      let data: Buffer;
      try {
        data = fs.readFileSync(f);
      } catch {
        return [];
      }
      return values.filter((v) => data.includes(v) || data.includes(Buffer.from(JSON.stringify(v).slice(1, -1)))).map((v) => `${path.relative(home.dir, f)} contains ${v.slice(0, 6)}…`);
    });
  try {
    const cliEnv = { ...home.env, ...secrets, PLAIN_SETTING: plain };
    await ok(['hub'], home.env);
    // The CI records a hash of what it got (outside CIHUB_HOME), never the value.
    const r = await cihub(['spawn', 'keeper', '--', 'sh', '-c', `printf %s "$GITHUB_TOKEN" | sha256sum > ${out}/seen.tmp && mv ${out}/seen.tmp ${out}/seen; sleep 600`], { env: cliEnv });
    assert.equal(r.code, 0, r.stderr);
    await waitFor(() => seen() === sha(secrets.GITHUB_TOKEN), 10_000, 'the CI to see GITHUB_TOKEN');
    // Some activity that writes state: a message, a status, an export.
    await ok(['send', 'keeper', 'hello'], home.env);
    await ok(['export', 'keeper', '--format', 'jsonl'], home.env);
    const registry = JSON.parse(fs.readFileSync(path.join(home.paths.stateDir, 'registry.json'), 'utf8')) as { cis: { name: string; env: Record<string, string>; secretEnvNames: string[] }[] };
    const entry = registry.cis.find((c) => c.name === 'keeper');
    assert.ok(entry);
    for (const name of Object.keys(secrets)) {
      assert.ok(entry.secretEnvNames.includes(name), `${name} is not listed in secretEnvNames`);
      assert.equal(name in entry.env, false, `${name} is in the persisted env`);
    }
    assert.equal(entry.env.PLAIN_SETTING, plain, 'a plain variable is persisted (control)');
    assert.deepEqual(leaks(Object.values(secrets)), [], 'secret values on disk');

    // Restart with a different token in the hub's own environment: the restored CI gets that one.
    await ok(['stop'], home.env);
    const token2 = `ghp_${randomBytes(18).toString('hex')}`;
    fs.rmSync(path.join(out, 'seen'), { force: true });
    await ok(['hub'], { ...home.env, GITHUB_TOKEN: token2 });
    await waitFor(() => seen(), 10_000, 'the restored CI to run');
    assert.equal(seen(), sha(token2), 'the restored CI did not get GITHUB_TOKEN from the hub\'s environment');
    assert.deepEqual(leaks([...Object.values(secrets), token2]), [], 'secret values on disk after the restart');

    // Restart without it: the CI runs, without the variable.
    await ok(['stop'], home.env);
    fs.rmSync(path.join(out, 'seen'), { force: true });
    await ok(['hub'], home.env);
    await waitFor(() => seen(), 10_000, 'the restored CI to run');
    assert.equal(seen(), sha(''), 'the CI got a value the hub does not have');
    const list = await ok(['list', '--json'], home.env);
    assert.equal(list.includes(secrets.GITHUB_TOKEN) || list.includes(token2), false, 'cihub list shows a secret');
  } finally {
    await home.cleanup();
    fs.rmSync(out, { recursive: true, force: true });
  }
});

