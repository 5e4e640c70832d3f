/**
 * The hub's log cannot fill the disk: repeats are counted, and hub.log (the hub's stderr) is rotated
 * to hub.log.1 past LOG_MAX_BYTES while the process runs. Run in a child whose stderr is the file,
 * as the launcher does.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LOG_MAX_BYTES } from '../server/log';

const LOG_MODULE = path.join(__dirname, '..', 'server', 'log.js');

/** Runs `body` (JS using `log`, a Log on `file`) in a node whose stderr is appended to `file`. */
function runWithLog(file: string, body: string): void {
  const fd = fs.openSync(file, 'a');
  const script = `const { Log } = require(${JSON.stringify(LOG_MODULE)}); const log = new Log(${JSON.stringify(file)}); ${body}`;
  const r = spawnSync(process.execPath, ['-e', script], { stdio: ['ignore', 'inherit', fd], timeout: 60_000 });
  fs.closeSync(fd);
  assert.equal(r.status, 0, `the child exited ${r.status ?? r.signal}`);
}

test('a message repeated back to back is written three times, then counted', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cih-log-'));
  try {
    const file = path.join(dir, 'hub.log');
    runWithLog(file, `for (let i = 0; i < 1000; i++) log.warn('send failed'); log.info('next');`);
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(lines.length, 5, lines.join('\n'));
    for (const line of lines.slice(0, 3)) assert.match(line, /^\S+ warn  send failed$/);
    assert.match(lines[3], /^\S+ warn  \(the previous message was repeated 997 more times\)$/);
    assert.match(lines[4], /^\S+ info  next$/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('hub.log is rotated to hub.log.1 when it grows past the limit while the hub runs', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cih-log-'));
  try {
    const file = path.join(dir, 'hub.log');
    const lines = Math.ceil((2.5 * LOG_MAX_BYTES) / 100);
    runWithLog(file, `for (let i = 0; i < ${lines}; i++) log.info('line ' + i + ' ' + 'x'.repeat(60)); log.info('the last line');`);
    const size = fs.statSync(file).size;
    assert.ok(size <= LOG_MAX_BYTES, `hub.log is ${size} bytes`);
    assert.ok(fs.statSync(`${file}.1`).size <= LOG_MAX_BYTES + 200, 'hub.log.1 is bounded too');
    assert.match(fs.readFileSync(file, 'utf8'), /the last line\n$/);
    // Appends after the truncation start at the new end: no hole of zero bytes at the front.
    assert.notEqual(fs.readFileSync(file).subarray(0, 1)[0], 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
