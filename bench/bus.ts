/**
 * Bus benchmarks (issue 3), against a raw Node Unix-socket NDJSON ping-pong server in another process,
 * measured in the same run: send→ack round trip, one-way throughput with durable queueing, and the ack
 * of one broadcast fanned out to 50 CIs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { List, Receive, Ack, Spawn } from '../server/protocol';
import { waitFor } from '../test/helpers';
import { benchHub, connectTo, percentile, report, scriptServer } from './common';

const ROUND_TRIPS = 3000;
const THROUGHPUT_MESSAGES = 200_000;
const FANOUT_CIS = 50;
const FANOUTS = 30;

/** The raw baseline: reads NDJSON lines, parses each, answers `{"ok":true,"id":…}` per line. */
const RAW_SERVER = `
const net = require('net');
net.createServer((s) => {
  let buf = '';
  s.on('data', (d) => {
    buf += d;
    let out = '';
    let nl;
    while ((nl = buf.indexOf('\\n')) >= 0) {
      const m = JSON.parse(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      out += '{"ok":true,"id":' + JSON.stringify(m.id || 'x') + '}\\n';
    }
    if (out) s.write(out);
  });
}).listen(process.argv[1], () => process.send('ready'));
`;

/** A line client: counts reply lines, resolves waits on the n-th. */
async function lineClient(socketPath: string) {
  const socket = await connectTo(socketPath);
  let replies = 0;
  let waitingFor = 0;
  let wake: (() => void) | undefined;
  socket.on('data', (d: Buffer) => {
    for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) replies++;
    if (wake && replies >= waitingFor) {
      const w = wake;
      wake = undefined;
      w();
    }
  });
  return {
    socket,
    get replies() {
      return replies;
    },
    until(n: number): Promise<void> {
      if (replies >= n) return Promise.resolve();
      waitingFor = n;
      return new Promise((resolve) => (wake = resolve));
    },
  };
}

/**
 * Send → ack round trips, alternating between the raw server and the hub's bus socket so both are
 * measured in the same machine state (how busy the cores are changes a 0.1 ms round trip by 2×).
 */
async function roundTrips(rawPath: string, busPath: string): Promise<{ raw: number[]; bus: number[] }> {
  const sides = [
    { client: await lineClient(rawPath), line: message, lat: [] as number[] },
    { client: await lineClient(busPath), line: (i: number) => message(1_000_000 + i), lat: [] as number[] },
  ];
  for (let i = 0; i < ROUND_TRIPS; i++) {
    for (const side of sides) {
      const t0 = process.hrtime.bigint();
      side.client.socket.write(side.line(i));
      await side.client.until(i + 1);
      side.lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  for (const side of sides) side.client.socket.destroy();
  // Warm-up excluded.
  return { raw: sides[0].lat.slice(100), bus: sides[1].lat.slice(100) };
}

/** Pipelined one-way: writes in chunks of 500 lines, keeping at most 20 000 unacknowledged. */
async function throughput(socketPath: string, line: (i: number) => string): Promise<number> {
  const c = await lineClient(socketPath);
  const started = process.hrtime.bigint();
  for (let sent = 0; sent < THROUGHPUT_MESSAGES; ) {
    const batch: string[] = [];
    for (let k = 0; k < 500 && sent < THROUGHPUT_MESSAGES; k++) batch.push(line(sent++));
    c.socket.write(batch.join(''));
    if (sent - c.replies > 20_000) await c.until(sent - 10_000);
  }
  await c.until(THROUGHPUT_MESSAGES);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  c.socket.destroy();
  return THROUGHPUT_MESSAGES / seconds;
}

/** A 200-byte message line. */
function message(i: number): string {
  const head = `{"id":"m${i}","from":"bench","content":"`;
  const tail = '"}\n';
  return head + 'x'.repeat(200 - head.length - tail.length) + tail;
}

export async function busBenchmarks(): Promise<void> {
  const raw = await scriptServer(RAW_SERVER);
  const hub = await benchHub();
  try {
    await hub.client.call(Spawn, { kind: 'process', name: 'sink', command: ['sleep', '3600'] });
    const busSocket = path.join(hub.env.CIHUB_HOME ?? '', 'run', 'bus', 'sink.sock');
    await waitFor(() => fs.existsSync(busSocket), 10_000, 'the bus socket of sink');

    const { raw: rawLat, bus: busLat } = await roundTrips(raw.socket, busSocket);
    report({
      section: 'bus',
      metric: `send→ack round trip p50 (${ROUND_TRIPS} msgs)`,
      raw: `${percentile(rawLat, 0.5).toFixed(3)} ms`,
      hub: `${percentile(busLat, 0.5).toFixed(3)} ms`,
      ratio: `${(percentile(busLat, 0.5) / percentile(rawLat, 0.5)).toFixed(2)}×`,
      target: '≤ 2× raw',
      ok: percentile(busLat, 0.5) <= 2 * percentile(rawLat, 0.5),
    });
    report({
      section: 'bus',
      metric: 'send→ack round trip p99',
      raw: `${percentile(rawLat, 0.99).toFixed(3)} ms`,
      hub: `${percentile(busLat, 0.99).toFixed(3)} ms`,
      target: '≤ 1 ms',
      ok: percentile(busLat, 0.99) <= 1,
    });
    await drain(hub.client, 'sink');

    const rawRate = await throughput(raw.socket, message);
    const busRate = await throughput(busSocket, (i) => message(2_000_000 + i));
    report({
      section: 'bus',
      metric: `one-way, durably queued (${THROUGHPUT_MESSAGES / 1000}k × 200 B)`,
      raw: `${Math.round(rawRate).toLocaleString('en')}/s`,
      hub: `${Math.round(busRate).toLocaleString('en')}/s`,
      ratio: (busRate / rawRate).toFixed(2),
      target: '≥ 50,000/s',
      ok: busRate >= 50_000,
    });
    await drain(hub.client, 'sink');

    await Promise.all(
      Array.from({ length: FANOUT_CIS }, (_, i) => hub.client.call(Spawn, { kind: 'process', name: `fan${i}`, command: ['sleep', '3600'] })),
    );
    await waitFor(
      async () => (await hub.client.call(List, {})).cis.filter((c) => c.name.startsWith('fan') && c.state === 'running').length === FANOUT_CIS,
      15_000,
      `${FANOUT_CIS} CIs running`,
    );
    const fan = await lineClient(busSocket);
    const fanLat: number[] = [];
    for (let i = 0; i < FANOUTS; i++) {
      const t0 = process.hrtime.bigint();
      fan.socket.write(`{"to":"*","from":"bench","content":"broadcast ${i}"}\n`);
      await fan.until(i + 1);
      fanLat.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    fan.socket.destroy();
    report({
      section: 'bus',
      metric: `broadcast to ${FANOUT_CIS + 1} CIs, ack (all copies durable) p50`,
      raw: `${percentile(rawLat, 0.5).toFixed(3)} ms (1 msg)`,
      hub: `${percentile(fanLat, 0.5).toFixed(3)} ms`,
      ratio: `p99 ${percentile(fanLat, 0.99).toFixed(2)} ms`,
    });
  } finally {
    raw.stop();
    await hub.stop();
  }
}

async function drain(client: Awaited<ReturnType<typeof benchHub>>['client'], name: string): Promise<void> {
  for (;;) {
    const { messages } = await client.call(Receive, { name, max: 10_000, waitMs: 0 });
    if (messages.length === 0) return;
    await client.call(Ack, { name, ids: messages.map((m) => m.id) });
  }
}
