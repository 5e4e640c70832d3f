/**
 * The screen mirror's flood control: output at an agent's pace is mirrored whole; after a flood (only
 * its tail is parsed) the screen is still right.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { FLOOD_CHARS, FLOOD_QUIET_MS, FLOOD_WINDOW_MS, MIRROR_KEEP_CHARS, ScreenMirrors } from '../server/screen/mirror';
import { ROOT } from './helpers';

const WORKER = path.join(ROOT, 'dist', 'screenWorker.js');

function withMirrors(fn: (mirrors: ScreenMirrors) => Promise<void>): Promise<void> {
  const mirrors = new ScreenMirrors(() => undefined, WORKER);
  // The worker does not hold the process open (in the hub, the hub's sockets do): this test's job.
  const keepAlive = setInterval(() => undefined, 1000);
  return fn(mirrors).finally(async () => {
    clearInterval(keepAlive);
    await mirrors.dispose();
  });
}

test('output below the flood rate is mirrored whole: every line is in the scrollback, in order', () =>
  withMirrors(async (mirrors) => {
    const screen = mirrors.open(80, 24);
    let seq = 0;
    // 600 lines in 6 writes spread over more than one window each: well under FLOOD_CHARS per window.
    for (let block = 0; block < 6; block++) {
      const lines = Array.from({ length: 100 }, (_, i) => `line ${block * 100 + i}\r\n`).join('');
      assert.ok(lines.length < FLOOD_CHARS / 10);
      screen.write(lines, ++seq);
      await new Promise((r) => setTimeout(r, FLOOD_WINDOW_MS / 4));
    }
    const marker = await screen.mark();
    const snapshot = await screen.snapshot();
    const shown = snapshot.data.match(/line \d+/g) ?? [];
    assert.deepEqual(shown, Array.from({ length: 600 }, (_, i) => `line ${i}`));
    assert.equal(snapshot.seq, seq);
    screen.write('after the mark\r\n', ++seq);
    assert.match((await screen.text(marker, 10)).text, /after the mark/);
    screen.close();
  }));

test('after a flood its newest output draws the screen, a snapshot during it covers all written, and calm output is mirrored again', () =>
  withMirrors(async (mirrors) => {
    // Wide lines, so that the tail the mirror keeps is far fewer lines than the replayed scrollback (1000):
    // a mirror that parsed the whole flood would show a full scrollback of it.
    const screen = mirrors.open(2000, 24);
    let seq = 0;
    const lineLength = 1990;
    // 16 MiB in writes each past FLOOD_CHARS, so the flood is seen from its first write.
    const lines = Math.ceil(FLOOD_CHARS / lineLength) + 1;
    const chunk = Array.from({ length: lines }, (_, i) => `flood line ${String(i).padStart(4, '0')} `.padEnd(lineLength - 2, 'x') + '\r\n').join('');
    let written = 0;
    for (let n = 0; written < 16 * 1024 * 1024; n++, written += chunk.length) screen.write(chunk.replace(/flood line/g, `flood ${n} line`), ++seq);
    const last = Math.ceil((16 * 1024 * 1024) / chunk.length) - 1;
    screen.write('the end of the flood\r\n', ++seq);
    // Asked during the flood, the snapshot still covers everything written so far.
    const during = await screen.snapshot();
    assert.equal(during.seq, seq);
    assert.match(during.data, /the end of the flood/);
    assert.match(during.data, new RegExp(`flood ${last} line ${String(lines - 1).padStart(4, '0')}`));
    assert.doesNotMatch(during.data, /flood 0 line 0000/, 'the start of the flood is not replayed');
    const floodLines = (during.data.match(/flood \d+ line/g) ?? []).length;
    assert.ok(floodLines <= Math.ceil(MIRROR_KEEP_CHARS / lineLength) + 1, `${floodLines} flood lines mirrored: only the kept tail is parsed`);
    // Once the CI is quiet, output is mirrored as it comes again.
    await new Promise((r) => setTimeout(r, FLOOD_QUIET_MS * 2));
    screen.write('calm again\r\n', ++seq);
    const after = await screen.snapshot();
    assert.equal(after.seq, seq);
    assert.match(after.data, /the end of the flood\s+calm again/);
    screen.close();
  }));
