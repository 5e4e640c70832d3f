/** Agent output rendered to the text a person reads (what the chat shows for a process CI). */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { renderText } from '../server/screen/text';

test('colors and styles vanish; the text stays', async () => {
  assert.equal(await renderText('\x1b[1;31merror:\x1b[0m file \x1b[4mx.ts\x1b[24m not found\r\n'), 'error: file x.ts not found');
});

test('carriage-return progress bars and cursor movement show their final state', async () => {
  const progress = 'downloading  10%\rdownloading  50%\rdownloading 100%\r\ndone\r\n';
  assert.equal(await renderText(progress), 'downloading 100%\ndone');
  // A TUI-style redraw: move up and overwrite a line, erase to end of line.
  const redraw = 'line one\r\nline two\r\n\x1b[2A\x1b[2Kfirst, rewritten\r\n\x1b[1B';
  assert.equal(await renderText(redraw), 'first, rewritten\nline two');
  // Backspaces, as a shell echoes them.
  assert.equal(await renderText('lsx\b \b -l\r\n'), 'ls -l');
});

test('long lines wrapped by the terminal are joined; unicode survives; trailing blank lines are trimmed', async () => {
  const long = 'x'.repeat(100);
  assert.equal(await renderText(`${long}\r\n\r\n\r\n`, 40, 10), long);
  assert.equal(await renderText('ünïcödé ✓ 漢字 😀\r\n'), 'ünïcödé ✓ 漢字 😀');
});

test('a cleared screen shows only what came after', async () => {
  assert.equal(await renderText('old stuff\r\n\x1b[2J\x1b[Hnew screen\r\n'), 'new screen');
});
