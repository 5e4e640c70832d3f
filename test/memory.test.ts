/**
 * The hub gives memory back after a burst of output (server/memory.ts): one collection once output has
 * stopped and the heap grew, none while output goes on or when it did not grow.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { HeapReclaimer, RECLAIM_QUIET_MS } from '../server/memory';
import { waitFor } from './helpers';

test('a heap that grew is collected once output has stopped, not while it goes on', async () => {
  let collected = 0;
  const reclaimer = new HeapReclaimer(() => collected++);
  try {
    // ~30 MB of live objects: the heap grows well past RECLAIM_GROWTH_BYTES.
    const grown = Array.from({ length: 300_000 }, (_, i) => ({ i, text: `line ${i} `.repeat(8) }));
    // Output keeps coming for several quiet periods: no collection meanwhile.
    const until = Date.now() + RECLAIM_QUIET_MS * 4;
    while (Date.now() < until) {
      reclaimer.output();
      await new Promise((r) => setTimeout(r, RECLAIM_QUIET_MS / 6));
      assert.equal(collected, 0, 'collected while output was still coming');
    }
    await waitFor(() => collected === 1, RECLAIM_QUIET_MS * 10, 'a collection after the output stopped');
    assert.equal(reclaimer.checks, 1);
    assert.ok(grown.length > 0);
  } finally {
    reclaimer.dispose();
  }
});

test('a heap that did not grow is left alone', async () => {
  let collected = 0;
  const reclaimer = new HeapReclaimer(() => collected++);
  try {
    reclaimer.output();
    await waitFor(() => reclaimer.checks === 1, RECLAIM_QUIET_MS * 10, 'the quiet check');
    assert.equal(collected, 0);
  } finally {
    reclaimer.dispose();
  }
});

test('without gc (a hub started without --expose-gc) nothing is scheduled', async () => {
  const reclaimer = new HeapReclaimer(null);
  try {
    reclaimer.output();
    // Waiting for something not to happen: twice the quiet period that would have run a check.
    await new Promise((r) => setTimeout(r, RECLAIM_QUIET_MS * 2));
    assert.equal(reclaimer.checks, 0);
  } finally {
    reclaimer.dispose();
  }
});
