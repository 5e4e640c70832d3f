/**
 * The PTY layer on its own: nothing a process prints right before it exits is lost, exit codes and
 * signals are reported, input and resize reach the process.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Pty, type PtyExit } from '../server/pty';
import { processEnv } from '../server/env';

function run(file: string, args: string[], input?: string): Promise<{ out: Buffer; exit: PtyExit }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const pty = Pty.spawn(
      { file, args, cwd: process.cwd(), env: processEnv(), cols: 80, rows: 24 },
      (data) => chunks.push(Buffer.from(data)),
      (exit) => resolve({ out: Buffer.concat(chunks), exit }),
    );
    if (input) pty.write(input);
  });
}

/** The proof: a fast-printing, fast-exiting command, many times, never loses its tail. */
test('seq 1 20000 in a PTY, 150 times: every byte arrives, every time', async () => {
  const expected = Array.from({ length: 20000 }, (_, i) => String(i + 1)).join('\r\n') + '\r\n';
  let lost = 0;
  const runs = 150;
  for (let i = 0; i < runs; i++) {
    const { out, exit } = await run('seq', ['1', '20000']);
    assert.equal(exit.exitCode, 0);
    if (out.toString() !== expected) lost++;
  }
  assert.equal(lost, 0, `${lost} of ${runs} runs lost output`);
});

test('a process that prints and exits at once keeps its last line (printf without newline)', async () => {
  for (let i = 0; i < 50; i++) {
    const { out } = await run('printf', ['last-bytes-%d', String(i)]);
    assert.equal(out.toString(), `last-bytes-${i}`);
  }
});

test('exit code and signal are reported', async () => {
  assert.deepEqual((await run('sh', ['-c', 'exit 7'])).exit, { exitCode: 7 });
  assert.deepEqual((await run('sh', ['-c', 'kill -TERM $$'])).exit, { signal: 'SIGTERM' });
});

test('input reaches the process; resize changes its terminal size', async () => {
  const { out } = await run('sh', ['-c', 'read line; echo "got:$line"'], 'hello\r');
  assert.match(out.toString(), /got:hello/);
  const sized = await new Promise<string>((resolve) => {
    let text = '';
    const pty = Pty.spawn(
      { file: 'sh', args: ['-c', 'read x; stty size'], cwd: process.cwd(), env: processEnv(), cols: 80, rows: 24 },
      (d) => (text += d.toString()),
      () => resolve(text),
    );
    pty.resize(133, 41);
    pty.write('\r');
  });
  assert.match(sized, /41 133/);
});
