/**
 * `npm run bench`: every benchmark, each against its raw baseline measured in the same run. Prints a
 * table (✓/✗ against the targets in the issues) and writes bench/results/latest.json.
 *   npm run bench [-- section…]     sections: pty, bus, models, vscode (a real VS Code: `node test/e2e/setup.mjs`
 *                                   and `npm run package` first, else it is skipped)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT, header, rows } from './common';
import { ptyBenchmarks } from './pty';
import { busBenchmarks } from './bus';
import { modelBenchmarks } from './models';
import { vscodeBenchmarks } from './vscode';

const sections: Record<string, () => Promise<void>> = {
  pty: ptyBenchmarks,
  bus: busBenchmarks,
  models: modelBenchmarks,
  vscode: vscodeBenchmarks,
};

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((w) => !(w in sections));
  if (unknown.length) {
    process.stderr.write(`unknown section(s): ${unknown.join(', ')}; known: ${Object.keys(sections).join(', ')}\n`);
    process.exit(2);
  }
  header();
  for (const [name, run] of Object.entries(sections)) {
    if (wanted.length && !wanted.includes(name)) continue;
    await run();
  }
  const dir = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'latest.json'), JSON.stringify({ at: new Date().toISOString(), rows }, null, 2));
  process.exit(0);
}

void main();
