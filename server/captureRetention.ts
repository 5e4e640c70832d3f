/**
 * Retention of captures (`captures/<ci>/<session>.cast`): per CI, sessions older than
 * `retention.captureMaxAgeDays` are removed, then the oldest until the CI's captures fit
 * `retention.captureMaxMB`. A session being written is never removed; one that grows past a quarter of
 * the limit continues in a new file (see CiTerminal), so a flood cannot outgrow the limit either.
 * Removed CIs' captures age out the same way. Each removal is logged.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Log } from './log';
import type { Retention } from './protocol';
import { listSessions } from './capture';
import { errorMessage } from './errors';

const MIB = 1024 * 1024;
/** How often retention runs besides at start and when a session continues in a new file. */
const PASS_INTERVAL_MS = 60 * 60 * 1000;

/** What a CI's terminal needs to know about its capture files. */
export interface CaptureFiles {
  readonly dir: string;
  /** Size at which a live session continues in a new file. */
  segmentBytes(): number;
  /** A session continued in a new file: old ones may have to go. */
  rolledOver(): void;
  /** Writing the capture failed (a full disk): the user must hear of it. */
  failed(message: string): void;
}

export class CaptureRetention {
  private timer: NodeJS.Timeout | undefined;
  /** CIs whose sessions rolled over since the last pass over them. */
  private readonly due = new Set<string>();
  /** Bytes of captures each CI keeps on disk, as of the last pass over it. */
  private readonly kept = new Map<string, number>();

  constructor(
    private readonly dir: string,
    private readonly limits: () => Retention,
    /** Session files being written now (never removed). */
    private readonly live: () => Iterable<string>,
    private readonly log: Log,
    private readonly alert: (message: string) => void,
  ) {}

  /** The folder of CI `name`'s captures. */
  dirOf(name: string): string {
    return path.join(this.dir, name);
  }

  /** The capture files of CI `name`. */
  forCi(name: string): CaptureFiles {
    return {
      dir: this.dirOf(name),
      segmentBytes: () => Math.floor((this.limits().captureMaxMB * MIB) / 4),
      rolledOver: () => this.soon(name),
      failed: (message) => this.alert(`${name}: ${message}`),
    };
  }

  /** Runs a pass once the hub is up (not in its start-up) and then every hour. */
  start(): void {
    setImmediate(() => this.pass());
    this.timer = setInterval(() => this.pass(), PASS_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Bytes of captures on disk, as of the last passes; undefined before the first. */
  get keptBytes(): number | undefined {
    return this.kept.size ? [...this.kept.values()].reduce((a, b) => a + b, 0) : undefined;
  }

  /** A pass over CI `name` on the next turn (several roll-overs at once make one pass; other CIs are not read). */
  private soon(name: string): void {
    if (this.due.size === 0) {
      setImmediate(() => {
        const names = [...this.due];
        this.due.clear();
        this.pass(names);
      });
    }
    this.due.add(name);
  }

  /** Removes what the limits no longer allow, in the captures of `names` (default: every CI). */
  pass(names = this.allNames(), now = Date.now()): void {
    const { captureMaxMB, captureMaxAgeDays } = this.limits();
    const live = new Set(this.live());
    for (const name of names) {
      const sessions = listSessions(this.dirOf(name));
      let total = sessions.reduce((n, s) => n + s.bytes, 0);
      const removed: { count: number; bytes: number } = { count: 0, bytes: 0 };
      for (const session of sessions) {
        if (live.has(session.path)) continue;
        const tooOld = captureMaxAgeDays > 0 && now - session.startedAt > captureMaxAgeDays * 86_400_000;
        if (!tooOld && total <= captureMaxMB * MIB) continue;
        try {
          fs.unlinkSync(session.path);
          total -= session.bytes;
          removed.count++;
          removed.bytes += session.bytes;
        } catch (error) {
          this.log.warn(`retention: could not remove ${session.path}: ${errorMessage(error)}`);
        }
      }
      if (removed.count) {
        this.log.info(`retention: removed ${removed.count} capture session(s) of ${name} (${(removed.bytes / MIB).toFixed(1)} MiB); keeping ${(total / MIB).toFixed(1)} MiB (retention.captureMaxMB ${captureMaxMB}, captureMaxAgeDays ${captureMaxAgeDays})`);
      }
      this.kept.set(name, total);
    }
  }

  private allNames(): string[] {
    try {
      return fs.readdirSync(this.dir);
    } catch {
      return []; // no captures yet
    }
  }
}
