/**
 * Model benchmark (issue 5): time to first token through the hub to a subscribed client, against the SDK
 * called directly in this process, both talking to a local OpenAI-compatible server that answers at once.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import OpenAI from 'openai';
import { ChatSend, Event, RegisterProjects, Spawn, Watch } from '../server/protocol';
import { startLlmFixture } from '../test/fixtures/llm';
import { benchHub, percentile, report, signed } from './common';

const RUNS = 60;

export async function modelBenchmarks(): Promise<void> {
  const fixture = await startLlmFixture('openai', ['m1'], { kind: 'ok', tokens: ['first', ' second', ' third'] });
  const hub = await benchHub();
  try {
    const sdk = new OpenAI({ apiKey: 'k', baseURL: fixture.baseUrl, maxRetries: 0 });
    const direct: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = process.hrtime.bigint();
      const stream = await sdk.chat.completions.create({ model: 'm1', stream: true, messages: [{ role: 'user', content: 'hi' }] });
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta?.content) {
          direct.push(Number(process.hrtime.bigint() - t0) / 1e6);
          break;
        }
      }
    }

    const project = fs.mkdtempSync(path.join(os.tmpdir(), 'cibm-'));
    await hub.client.call(RegisterProjects, { window: 'bench', folders: [{ path: project, name: 'bench' }] });
    await hub.client.call(Watch, {});
    await hub.client.call(Spawn, { kind: 'model', name: 'ttft', provider: 'openai', model: 'm1', baseUrl: fixture.baseUrl, project, contextTokens: 512 });
    let firstToken: (() => void) | undefined;
    hub.client.on(Event, (e) => {
      if (e.type === 'chat' && e.entry.role === 'ci' && e.entry.text) firstToken?.();
    });
    const through: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = process.hrtime.bigint();
      const seen = new Promise<void>((resolve) => (firstToken = resolve));
      await hub.client.call(ChatSend, { project, to: 'ttft', text: 'hi' });
      await seen;
      firstToken = undefined;
      through.push(Number(process.hrtime.bigint() - t0) / 1e6);
      // Let the answer finish before the next question (answers are serialized per CI).
      await new Promise((r) => setTimeout(r, 20));
    }
    const d50 = percentile(through, 0.5) - percentile(direct, 0.5);
    const d95 = percentile(through, 0.95) - percentile(direct, 0.95);
    report({
      section: 'models',
      metric: `time to first token p50 (${RUNS} asks)`,
      raw: `${percentile(direct, 0.5).toFixed(2)} ms (SDK)`,
      hub: `${percentile(through, 0.5).toFixed(2)} ms`,
      ratio: `${signed(d50, 2)} ms`,
      target: 'added ≤ 5 ms',
      ok: d50 <= 5,
    });
    report({
      section: 'models',
      metric: 'time to first token p95',
      raw: `${percentile(direct, 0.95).toFixed(2)} ms (SDK)`,
      hub: `${percentile(through, 0.95).toFixed(2)} ms`,
      ratio: `${signed(d95, 2)} ms`,
      target: 'added ≤ 5 ms',
      ok: d95 <= 5,
    });
    fs.rmSync(project, { recursive: true, force: true });
  } finally {
    await hub.stop();
    await fixture.close();
  }
}
