/** Appending in parts (server/appendFile.ts): every byte lands, in order, whatever the size of the batch. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AppendFile } from '../server/appendFile';

test('parts are appended in order and byte-exact, small, past the kept buffer and past its limit', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cih-append-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'a.txt');
  const errors: Error[] = [];
  const out = new AppendFile(file, (error) => errors.push(error));
  const appends: string[][] = [
    ['[0.1,"o",', JSON.stringify('héllo ✓ \x1b[0m'), ']\n'],
    ['x'.repeat(200 * 1024), 'é'.repeat(100 * 1024)],
    ['short\n'],
    ['y'.repeat(3 * 1024 * 1024), '\n'],
    ['after the big one 🙂\n'],
  ];
  for (const parts of appends) {
    out.add(...parts);
    out.flush();
  }
  out.close();
  assert.deepEqual(errors, []);
  assert.equal(fs.readFileSync(file, 'utf8'), appends.map((parts) => parts.join('')).join(''));
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
});
