/** Text handed on in batches (server/textBatch.ts): together after the delay, at once past the size. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { TextBatch } from '../server/textBatch';
import { waitFor } from './helpers';

test('text added within the delay goes out together, in order and in its parts; past the size at once; clear drops it', async () => {
  const out: (readonly string[])[] = [];
  const batch = new TextBatch((parts) => out.push(parts), 20, 10);
  batch.add('a');
  batch.add('b');
  assert.deepEqual(out, [], 'nothing before the delay');
  assert.equal(batch.chars, 2);
  await waitFor(() => out.length === 1, 2000, 'the batch');
  assert.deepEqual(out, [['a', 'b']]);
  batch.add('0123');
  batch.add('45', '6789', 'xy');
  assert.deepEqual(out, [['a', 'b'], ['0123', '45', '6789', 'xy']], 'at the size limit it goes at once, the parts of one add together');
  batch.add('c');
  batch.flush();
  assert.deepEqual(out, [['a', 'b'], ['0123', '45', '6789', 'xy'], ['c']]);
  batch.add('dropped');
  batch.clear();
  batch.flush();
  assert.equal(out.length, 3);
  assert.equal(batch.chars, 0);
});
