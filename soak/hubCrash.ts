/**
 * The hub killed -9 under load, `crashes` times: CIs printing, messages flowing to an inbox and into
 * terminals (inject), clients attached. Every time the next `cihub` command must bring it back, the CIs
 * must run again in new sessions, attached clients must attach again, and in the end every message the
 * hub acknowledged must be delivered and every old capture must play in `asciinema`.
 */
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { HubClient } from '../client/hubClient';
import { Attach, List, Output, Receive, Ack, Send, SetConfig, Spawn } from '../server/protocol';
import { FIXTURES, alive, castOutput, cihub, connect, hasCommand, hubPid, inPty, makeHome, readCast, sessionsOf, startHub, waitFor, type Home } from '../test/helpers';
import { Findings, ms } from './common';
import { percentile, sleep } from '../bench/common';

interface HubCrashOptions {
  /** Load in total, spread over the crashes. */
  seconds: number;
  crashes: number;
}

const PRINTERS = ['p1', 'p2', 'p3'];

interface Sent {
  id: string;
  to: string;
  token: string;
}

export async function hubCrash(options: HubCrashOptions, findings = new Findings('hub crash')): Promise<Findings> {
  const home = makeHome();
  let client = await startHub(home);
  const clients: HubClient[] = [];
  try {
    await client.call(SetConfig, { injectQuietMs: 100, injectHumanIdleMs: 0 });
    for (const name of PRINTERS) {
      await client.call(Spawn, { kind: 'process', name, restart: 'always', policy: 'inject', command: [path.join(FIXTURES, 'chatty.sh'), '0.3'] });
    }
    await client.call(Spawn, { kind: 'process', name: 'mailbox', policy: 'inbox', command: ['sleep', '3600'] });

    const acked: Sent[] = [];
    const backTimes: number[] = [];
    const runningTimes: number[] = [];
    let reattached = 0;
    let seq = 0;
    for (let round = 0; round < options.crashes; round++) {
      // Two clients watch terminals, as windows would.
      const watchers = await Promise.all([attachWatcher(home, 'p1'), attachWatcher(home, 'p2')]);
      clients.push(...watchers.map((w) => w.client));
      if (round > 0) reattached += watchers.filter((w) => w.replay).length;
      const sender = client;
      let sending = true;
      const flow = (async () => {
        while (sending) {
          const to = seq % 2 ? 'mailbox' : PRINTERS[seq % PRINTERS.length];
          const token = `crash-msg-${seq++}-end`;
          try {
            const { id } = await sender.call(Send, { message: { to, from: 'ops', content: token } });
            acked.push({ id, to, token });
          } catch {
            return; // the hub died with this one unanswered: not acknowledged, so not owed
          }
          await sleep(10);
        }
      })();
      await sleep((options.seconds / options.crashes) * 1000);

      const pid = hubPid(home.paths.lock);
      if (!pid) throw new Error('no hub pid');
      const before = await client.call(List, {});
      process.kill(pid, 'SIGKILL');
      const killedAt = performance.now();
      await waitFor(() => !alive(pid), 10_000, 'the hub to die');
      sending = false;
      await flow; // its request in flight fails once the connection closes
      for (const c of [client, ...watchers.map((w) => w.client)]) c.close();

      // The next `cihub` command starts it again.
      const listed = await cihub(['list'], { env: home.env });
      if (listed.code !== 0 || !/the hub stopped unexpectedly; starting it again/.test(listed.stderr)) {
        throw new Error(`cihub list after the crash: exit ${listed.code}: ${listed.stderr}`);
      }
      backTimes.push(performance.now() - killedAt);
      client = await connect(home);
      const c = client;
      await waitFor(async () => {
        const { cis } = await c.call(List, {});
        return PRINTERS.every((name) => {
          const now = cis.find((x) => x.name === name);
          const then = before.cis.find((x) => x.name === name);
          return now?.state === 'running' && now.session !== then?.session;
        });
      }, 20_000, 'every printer running again in a new session');
      runningTimes.push(performance.now() - killedAt);
    }

    // Every acknowledged message is delivered: the inbox holds each once; each injected one was typed in.
    const c = client;
    await waitFor(async () => {
      const { cis } = await c.call(List, {});
      return PRINTERS.every((name) => cis.find((x) => x.name === name)?.queue?.depth === 0);
    }, 60_000, 'the printers\' queues to empty');
    const received = new Map<string, number>();
    for (;;) {
      const { messages } = await client.call(Receive, { name: 'mailbox', max: 1000 });
      if (!messages.length) break;
      for (const m of messages) received.set(m.id, (received.get(m.id) ?? 0) + 1);
      await client.call(Ack, { name: 'mailbox', ids: messages.map((m) => m.id) });
    }
    const toMailbox = acked.filter((m) => m.to === 'mailbox');
    const lostMailbox = toMailbox.filter((m) => received.get(m.id) !== 1);
    const typed = new Map(PRINTERS.map((name) => [name, sessionsOf(home, name).map((f) => typedInto(f)).join('')]));
    const read = new Map(PRINTERS.map((name) => [name, sessionsOf(home, name).map((f) => castOutput(f)).join('')]));
    const injected = acked.filter((m) => m.to !== 'mailbox');
    const lostInjected = injected.filter((m) => !typed.get(m.to)?.includes(m.token));
    const unread = injected.filter((m) => !read.get(m.to)?.includes(`${m.token}>`));

    findings.add(`hub back after kill -9 (next cihub command), ${options.crashes} crashes: p50 / max`, `${ms(percentile(backTimes, 0.5))} / ${ms(Math.max(...backTimes))}`);
    findings.add('CIs running again in new sessions (after kill -9): max', ms(Math.max(...runningTimes)));
    findings.add('attached clients that attached again and got the screen', `${reattached} of ${2 * (options.crashes - 1)}`, { target: 'all', ok: reattached === 2 * (options.crashes - 1) });
    findings.add(`acknowledged messages to an inbox, delivered once (of ${toMailbox.length})`, `${toMailbox.length - lostMailbox.length}`, { target: 'all', ok: lostMailbox.length === 0 });
    findings.add(`acknowledged messages injected, typed into the CI (of ${injected.length})`, `${injected.length - lostInjected.length}`, { target: 'all', ok: lostInjected.length === 0 });
    findings.add('…of which the agent had read before its terminal went (the rest: typed, then killed with the hub)', `${injected.length - unread.length}`);

    if (hasCommand('asciinema')) {
      let sessions = 0;
      const unreadable: string[] = [];
      for (const name of PRINTERS) {
        for (const file of sessionsOf(home, name).slice(0, -1)) {
          sessions++;
          const events = readCast(file).events; // throws on a line the hub did not repair
          const last = events.filter((e) => e[1] === 'o').pop()?.[2] ?? '';
          const played = await inPty(`asciinema cat ${file}; echo "EXIT=$?"`);
          const tail = last.trim().split('\n').pop() ?? '';
          if (!played.includes('EXIT=0') || !played.includes(tail)) unreadable.push(path.basename(file));
        }
      }
      findings.add(`captures of the killed sessions that asciinema plays to their last output (of ${sessions})`, `${sessions - unreadable.length}`, { target: 'all', ok: unreadable.length === 0 && sessions === PRINTERS.length * options.crashes });
    } else {
      findings.add('captures of the killed sessions played by asciinema', 'not checked: asciinema is not installed', { target: 'installed', ok: false });
    }
    return findings;
  } finally {
    for (const c of clients) c.close();
    client.close();
    await home.cleanup();
  }
}

/** Text typed into a CI in one capture ('i' events). */
function typedInto(file: string): string {
  return readCast(file)
    .events.filter((e) => e[1] === 'i')
    .map((e) => e[2])
    .join('');
}

/** A client attached read-only to a CI; `replay` tells whether it got the screen. */
async function attachWatcher(home: Home, name: string): Promise<{ client: HubClient; replay: boolean }> {
  const client = await connect(home);
  let replay = false;
  let live = 0;
  client.on(Output, (p) => {
    if (p.kind === 'replay' && p.data.includes('tick')) replay = true;
    if (p.kind === 'live') live += p.data.length;
  });
  await client.call(Attach, { name, attachId: 'watch', readOnly: true, cols: 100, rows: 30 });
  await waitFor(() => live > 0, 10_000, `live output of ${name}`);
  return { client, replay };
}
