/**
 * `npm run soak`: the long reliability scenarios of docs/RELIABILITY.md, each with a bounded run time.
 * Prints every figure against its target (✓/✗), writes soak/results/latest.json, exits 1 if one missed.
 *
 *   npm run soak [-- scenario…] [--minutes N]
 *     crash         the hub killed -9 under load, three times
 *     misbehaviour  flood, not reading, forking, SIGTERM ignoring and crash-looping agents for a minute
 *     scale         50 CIs in 5 projects with 3 clients, steady messages and output, for 10 minutes
 *   --minutes N scales every scenario's duration (scale runs N minutes, misbehaviour N/10).
 * The default test run (`npm test`) runs the same scenarios briefly (test/hardening/load.test.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from '../test/helpers';
import { Findings, type Figure } from './common';
import { hubCrash } from './hubCrash';
import { misbehaviour } from './misbehaviour';
import { scale } from './scale';

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const at = args.indexOf('--minutes');
  const minutes = at >= 0 ? Number(args[at + 1]) : 10;
  if (!(minutes > 0)) throw new Error('--minutes takes a positive number');
  const named = args.filter((a, i) => !a.startsWith('--') && (at < 0 || i !== at + 1));
  const scenarios: Record<string, () => Promise<Findings>> = {
    crash: () => hubCrash({ seconds: Math.max(10, minutes * 3), crashes: 3 }),
    misbehaviour: () => misbehaviour({ seconds: Math.max(10, minutes * 6) }),
    scale: () => scale({ cis: 50, projects: 5, clients: 3, seconds: minutes * 60, messagesPerSecond: 20 }),
  };
  const unknown = named.filter((n) => !(n in scenarios));
  if (unknown.length) throw new Error(`unknown scenario ${unknown.join(', ')}: choose from ${Object.keys(scenarios).join(', ')}`);
  const figures: Figure[] = [];
  const failures: string[] = [];
  for (const name of named.length ? named : Object.keys(scenarios)) {
    const started = Date.now();
    process.stdout.write(`\n${name}\n`);
    try {
      const findings = await scenarios[name]();
      figures.push(...findings.figures);
      failures.push(...findings.failures({ performance: true }).map((f) => `${name}: ${f}`));
    } catch (error) {
      failures.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
    }
    process.stdout.write(`  (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  }
  const dir = path.join(ROOT, 'soak', 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'latest.json'), `${JSON.stringify({ date: new Date().toISOString(), minutes, figures, failures }, null, 2)}\n`);
  if (failures.length) process.stdout.write(`\nmissed:\n${failures.map((f) => `  ${f}`).join('\n')}\n`);
  return failures.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`soak: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
