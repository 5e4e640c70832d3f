/**
 * Giving memory back after a burst of output.
 *
 * A flood (`cat` of a big file, a noisy build) passes tens of MiB of strings through a heap: the
 * decoded text, its JSON for clients and the capture, what the screen mirror holds. Whatever outlives a
 * young-generation collection is promoted, and V8 frees the old generation only when it reaches its
 * limit or when its memory reducer finds the process idle — here ~8–10 s after the burst, and until then
 * 100 MiB of output left the hub 37–58 MB larger. So each thread that handles output (the hub's main
 * thread, the screen worker) checks its heap once output has stopped, and if the heap grew by
 * {@link RECLAIM_GROWTH_BYTES} since its last collection, runs one. It needs `gc`, which the hub's
 * `--expose-gc` flag provides (HUB_NODE_FLAGS in client/hubClient.ts); without it this does nothing.
 */
import * as v8 from 'node:v8';
import { QuietTimer } from './quietTimer';

/**
 * Growth of a heap (bytes V8 has committed) since the last collection that makes one worthwhile once
 * output has stopped; a full collection of the hub's heap takes ~10 ms.
 */
const RECLAIM_GROWTH_BYTES = 8 * 1024 * 1024;
/** Output has stopped once none came for this long. */
export const RECLAIM_QUIET_MS = 300;

function heapBytes(): number {
  return v8.getHeapStatistics().total_heap_size;
}

export class HeapReclaimer {
  /** Armed by output when there is a `gc` to run. */
  private readonly quiet: QuietTimer | undefined;
  /** The heap's size after the last collection (or at start). */
  private baseline = heapBytes();
  /** Quiet spells checked so far. */
  checks = 0;

  /** `collect`: runs a full collection; null when there is none (a hub started without `--expose-gc`). */
  constructor(collect: (() => void) | null = globalThis.gc ?? null) {
    this.quiet = collect ? new QuietTimer(RECLAIM_QUIET_MS, () => this.check(collect)) : undefined;
  }

  /** Output went through this thread's heap. */
  output(): void {
    this.quiet?.touch();
  }

  private check(collect: () => void): void {
    this.checks++;
    if (heapBytes() - this.baseline < RECLAIM_GROWTH_BYTES) return;
    collect();
    this.baseline = heapBytes();
  }

  dispose(): void {
    this.quiet?.cancel();
  }
}

/** This thread's reclaimer (each thread loads its own copy of this module). */
export const reclaimer = new HeapReclaimer();
