/**
 * Scale: `cis` CIs across `projects` projects, `clients` connected clients (windows) watching events,
 * attached to terminals and sending, with steady messages and output for `seconds`. Half the CIs take
 * messages typed into their terminal (inject), half from an inbox the clients drain (receive + ack).
 * Afterwards every acknowledged message must have arrived exactly where it was sent, no queue may be
 * left stuck, and the hub's memory must stay within a stated bound once warm.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { HubClient } from '../client/hubClient';
import { Ack, Attach, Event, List, Output, Receive, Send, SetConfig, Spawn, Watch } from '../server/protocol';
import { FIXTURES, castOutput, connect, hubPid, makeHome, sessionsOf, startHub, waitFor, within } from '../test/helpers';
import { Findings, RssSampler, mib, ms } from './common';
import { MB, percentile, sleep } from '../bench/common';

interface ScaleOptions {
  cis: number;
  projects: number;
  clients: number;
  seconds: number;
  messagesPerSecond: number;
}

/** The hub's JSON-RPC p99 with every client busy (the issue's target under load). */
const RPC_P99_TARGET_MS = 50;
/**
 * How much the hub's RSS may grow from the end of warm-up (a fifth of the run) to the end: screens,
 * queues and histories are bounded, so what grows past this is a leak.
 */
const RSS_GROWTH_BOUND_MB = 48;
/** The hub's RSS bound for this load (50 CIs with screens and scrollback, 3 clients). */
const RSS_BOUND_MB = 256;

interface Sent {
  id: string;
  to: string;
  token: string;
}

export async function scale(options: ScaleOptions, findings = new Findings('scale')): Promise<Findings> {
  const home = makeHome();
  const setup = await startHub(home);
  const clients: HubClient[] = [];
  try {
    const hub = hubPid(home.paths.lock);
    if (!hub) throw new Error('no hub pid');
    await setup.call(SetConfig, { injectQuietMs: 200, injectHumanIdleMs: 0 });
    const names: string[] = [];
    const inboxes: string[] = [];
    for (let p = 0; p < options.projects; p++) {
      const project = path.join(home.dir, `project-${p}`);
      fs.mkdirSync(project);
      for (let i = 0; i < options.cis / options.projects; i++) {
        const name = `c${p}-${i}`;
        const policy = i % 2 ? 'inbox' : 'inject';
        // Output every 2 s from each: 25 lines a second in all, with quiet gaps for injection.
        await setup.call(Spawn, { kind: 'process', name, project, policy, command: [path.join(FIXTURES, 'chatty.sh'), '2'] });
        names.push(name);
        if (policy === 'inbox') inboxes.push(name);
      }
    }
    const s = setup;
    await waitFor(async () => (await s.call(List, {})).cis.filter((c) => c.state === 'running').length === options.cis, 30_000, 'every CI running');

    const rss = new RssSampler(hub, 1000);
    const started = Date.now();
    const acked: Sent[] = [];
    const received = new Map<string, number>();
    const latencies: number[] = [];
    let events = 0;
    const liveBytes = Array.from({ length: options.clients }, () => 0);
    let running = true;
    let seq = 0;
    const loops: Promise<void>[] = [];
    for (let k = 0; k < options.clients; k++) {
      const client = await connect(home);
      clients.push(client);
      client.on(Event, () => events++);
      client.on(Output, (p) => {
        if (p.kind === 'live') liveBytes[k] += p.data.length;
      });
      await client.call(Watch, {});
      for (let a = 0; a < 5; a++) {
        const name = names[(k * 5 + a) % names.length];
        await client.call(Attach, { name, attachId: `a${a}`, readOnly: true, cols: 120, rows: 40 });
      }
      const mine = inboxes.filter((_, i) => i % options.clients === k);
      const interval = (1000 * options.clients) / options.messagesPerSecond;
      // Sends, timing each request: what a window waits for.
      loops.push(
        (async () => {
          while (running) {
            const to = names[Math.floor(Math.random() * names.length)];
            const from = names[Math.floor(Math.random() * names.length)];
            const token = `scale-msg-${seq++}-end`;
            const t = performance.now();
            const { id } = await client.call(Send, { message: { to, from, content: token } });
            latencies.push(performance.now() - t);
            acked.push({ id, to, token });
            await sleep(interval);
          }
        })(),
      );
      // Drains its share of the inboxes, as agents running `cihub recv` would.
      loops.push(
        (async () => {
          while (running || (await pending(client, mine)) > 0) {
            for (const name of mine) {
              const { messages } = await client.call(Receive, { name, max: 100 });
              if (!messages.length) continue;
              for (const m of messages) received.set(m.id, (received.get(m.id) ?? 0) + 1);
              await client.call(Ack, { name, ids: messages.map((m) => m.id) });
            }
            await sleep(500);
          }
        })(),
      );
    }
    await sleep(options.seconds * 1000);
    running = false;
    const drainStarted = performance.now();
    // Senders stop; inbox drainers go on until their inboxes are empty (bounded: stuck queues fail here).
    await within(Promise.all(loops), 60_000, 'the inboxes to drain after the last send');
    const injects = names.filter((n) => !inboxes.includes(n));
    await waitFor(async () => (await s.call(List, {})).cis.filter((c) => injects.includes(c.name)).every((c) => c.queue?.depth === 0), 60_000, 'every inject queue to empty');
    const drained = performance.now() - drainStarted;
    rss.stop();

    const toInbox = acked.filter((m) => inboxes.includes(m.to));
    const lostInbox = toInbox.filter((m) => received.get(m.id) !== 1);
    const output = new Map(injects.map((name) => [name, sessionsOf(home, name).map((f) => castOutput(f)).join('')]));
    const toInject = acked.filter((m) => !inboxes.includes(m.to));
    const lostInject = toInject.filter((m) => !output.get(m.to)?.includes(`${m.token}>`));
    const { cis } = await s.call(List, {});
    const stuck = cis.filter((c) => (c.queue?.depth ?? 0) > 0 || c.state !== 'running').map((c) => c.name);

    const warm = started + (options.seconds * 1000) / 5;
    const atWarm = rss.at(warm);
    const growth = rss.peakSince(warm) - atWarm;
    findings.add(`load: ${options.cis} CIs, ${options.projects} projects, ${options.clients} clients, ${options.seconds} s`, `${acked.length} messages`);
    findings.add('events to clients; live output to each (5 terminals)', `${events}; ${liveBytes.map((b) => `${(b / 1024).toFixed(0)} KiB`).join(', ')}`, { target: 'output to every client', ok: liveBytes.every((b) => b > 0) });
    findings.add('send request (acknowledged when durable): p50 / p99', `${ms(percentile(latencies, 0.5))} / ${ms(percentile(latencies, 0.99))}`, { target: `p99 < ${RPC_P99_TARGET_MS} ms`, ok: percentile(latencies, 0.99) < RPC_P99_TARGET_MS, performance: true });
    findings.add(`messages to inboxes received exactly once (of ${toInbox.length})`, `${toInbox.length - lostInbox.length}`, { target: 'all', ok: lostInbox.length === 0 });
    findings.add(`messages injected and read by the agent (of ${toInject.length})`, `${toInject.length - lostInject.length}`, { target: 'all', ok: lostInject.length === 0 });
    findings.add('queues left non-empty or CIs not running', stuck.length ? stuck.join(', ') : 'none', { target: 'none', ok: stuck.length === 0 });
    findings.add('every queue empty after the last send', ms(drained));
    findings.add('hub RSS: after warm-up / peak', `${mib(atWarm)} / ${mib(rss.peak)}`, { target: `peak < ${RSS_BOUND_MB} MiB`, ok: rss.peak < RSS_BOUND_MB * MB, performance: true });
    findings.add('hub RSS growth after warm-up', mib(growth), { target: `< ${RSS_GROWTH_BOUND_MB} MiB`, ok: growth < RSS_GROWTH_BOUND_MB * MB, performance: true });
    return findings;
  } finally {
    for (const c of clients) c.close();
    setup.close();
    await home.cleanup();
  }
}

/** Messages still waiting in `names`' mailboxes. */
async function pending(client: HubClient, names: string[]): Promise<number> {
  const { cis } = await client.call(List, {});
  return cis.filter((c) => names.includes(c.name)).reduce((n, c) => n + (c.queue?.depth ?? 0), 0);
}
