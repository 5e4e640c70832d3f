/**
 * Watches the free space of the state dir's file system: below `diskLowMB` the hub warns once (log and
 * an alert to every window), and says so again when space is back. Writes that fail meanwhile are
 * reported where they happen (a refused send, a capture that stopped, a registry not saved).
 */
import * as fs from 'node:fs';
import type { Log } from './log';
import { errorMessage } from './errors';

/** How often free space is checked. */
const CHECK_INTERVAL_MS = 30_000;
const MIB = 1024 * 1024;

export class DiskWatch {
  private timer: NodeJS.Timeout | undefined;
  private low = false;
  private unreadable = false;
  /** Free bytes at the last check, when it could be read. */
  freeBytes: number | undefined;

  constructor(
    private readonly dir: string,
    private readonly lowMB: () => number,
    private readonly alert: (message: string) => void,
    private readonly log: Log,
  ) {}

  start(): void {
    this.check();
    this.timer = setInterval(() => this.check(), CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  check(): void {
    let free: number;
    try {
      const st = fs.statfsSync(this.dir);
      free = st.bavail * st.bsize;
      this.unreadable = false;
    } catch (error) {
      if (!this.unreadable) this.log.warn(`cannot read the free space of ${this.dir}: ${errorMessage(error)}`);
      this.unreadable = true;
      this.freeBytes = undefined;
      return;
    }
    this.freeBytes = free;
    const low = free < this.lowMB() * MIB;
    if (low && !this.low) {
      this.alert(
        `The disk of ${this.dir} has ${(free / MIB).toFixed(0)} MiB free (below diskLowMB ${this.lowMB()}). When it is full, captures stop and messages are refused. Free some space, or lower retention.captureMaxMB (cihub config retention.captureMaxMB <MiB>).`,
      );
    } else if (!low && this.low) {
      this.log.info(`the disk of ${this.dir} has ${(free / MIB).toFixed(0)} MiB free again`);
    }
    this.low = low;
  }
}
