/**
 * What the soak scenarios share: findings (figures against targets), a latency probe for the hub's
 * JSON-RPC, and the hub's memory and CPU from /proc.
 */
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { HubClient } from '../client/hubClient';
import { List } from '../server/protocol';
import { MB, percentile, rssOf, sleep } from '../bench/common';

/** One measured figure; `ok` is set when there is a target to hold. */
export interface Figure {
  scenario: string;
  metric: string;
  value: string;
  target?: string;
  ok?: boolean;
  /** A speed or memory target: held by `npm run soak`, only reported by the short runs in `npm test`. */
  performance?: boolean;
}

/** The figures of one scenario, printed as they come. */
export class Findings {
  readonly figures: Figure[] = [];

  constructor(
    readonly scenario: string,
    private readonly print: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  ) {}

  /** Records a figure; with `ok`, a target it must meet. */
  add(metric: string, value: string, check?: { target: string; ok: boolean; performance?: boolean }): void {
    const figure: Figure = { scenario: this.scenario, metric, value, ...check };
    this.figures.push(figure);
    const mark = figure.ok === undefined ? ' ' : figure.ok ? '✓' : '✗';
    this.print(`${mark} ${this.scenario.padEnd(14)} ${metric.padEnd(52)} ${value.padEnd(22)} ${figure.target ?? ''}`);
  }

  /**
   * The figures that missed their target, one line each. Speed and memory targets count only when asked
   * for: on a machine busy with other tests they measure the machine.
   */
  failures(options: { performance: boolean }): string[] {
    return this.figures
      .filter((f) => f.ok === false && (options.performance || !f.performance))
      .map((f) => `${f.metric}: ${f.value} (target ${f.target})`);
  }
}

export const ms = (n: number): string => `${n.toFixed(1)} ms`;
export const mib = (bytes: number): string => `${(bytes / MB).toFixed(1)} MiB`;

/** CPU time (user + system) a process has used, in ms: all its threads, or only its main thread (its event loop). */
export function cpuMsOf(pid: number, mainThreadOnly = false): number {
  const stat = fs.readFileSync(mainThreadOnly ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat (11 and 12 after the command), in clock ticks (100 Hz).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * Times a cheap request (`cihub/list`) on its own connection, one after another with `intervalMs`
 * between them: how long a window or the CLI waits for the hub while the scenario runs.
 */
export class RpcProbe {
  readonly latencies: number[] = [];
  private running = true;
  private readonly done: Promise<void>;

  constructor(
    private readonly client: HubClient,
    private readonly intervalMs = 20,
  ) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const started = performance.now();
      await this.client.call(List, {});
      this.latencies.push(performance.now() - started);
      await sleep(this.intervalMs);
    }
  }

  async stop(): Promise<{ p50: number; p99: number; max: number; count: number }> {
    this.running = false;
    await this.done;
    return { p50: percentile(this.latencies, 0.5), p99: percentile(this.latencies, 0.99), max: Math.max(...this.latencies), count: this.latencies.length };
  }
}

/** Samples a process's RSS every `intervalMs`. */
export class RssSampler {
  readonly samples: { at: number; rss: number }[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    intervalMs: number,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  private sample(): void {
    try {
      this.samples.push({ at: Date.now(), rss: rssOf(this.pid) });
    } catch {
      // the process is gone: the scenario reports that itself
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }

  get peak(): number {
    return Math.max(...this.samples.map((s) => s.rss));
  }

  /** The highest sample from `at` on. */
  peakSince(at: number): number {
    return Math.max(...this.samples.filter((s) => s.at >= at).map((s) => s.rss));
  }

  /** The sample closest after `at`. */
  at(at: number): number {
    return (this.samples.find((s) => s.at >= at) ?? this.samples[this.samples.length - 1]).rss;
  }
}
