/**
 * Single instance: one hub per runtime dir. `hub.lock` is created exclusively and holds the owner's pid
 * and process start time. A lock whose owner is gone (or whose pid was reused) is stale; taking it over
 * is itself guarded by an exclusive `hub.lock.takeover`, so two hubs started at once after a crash (two
 * windows reloading) cannot both remove the stale lock and both believe they won.
 */
import * as fs from 'node:fs';
import { errnoCode } from './errors';
import { isSameProcess, readProc } from './procstat';

export type LockResult = { acquired: true } | { acquired: false; pid: number };

/** How long to keep retrying while another process is in the middle of a takeover. */
const TAKEOVER_WAIT_MS = 2000;

export function acquireLock(file: string): LockResult {
  const takeover = `${file}.takeover`;
  const content = ownerLine();
  const deadline = Date.now() + TAKEOVER_WAIT_MS;
  for (;;) {
    if (createExclusive(file, content)) return { acquired: true };
    const owner = readOwner(file);
    if (owner && isSameProcess(owner.pid, owner.startTime)) return { acquired: false, pid: owner.pid };
    if (createExclusive(takeover, content)) {
      try {
        const again = readOwner(file);
        if (again && isSameProcess(again.pid, again.startTime)) return { acquired: false, pid: again.pid };
        removeIfExists(file);
        if (createExclusive(file, content)) return { acquired: true };
      } finally {
        removeIfExists(takeover);
      }
      continue;
    }
    const taker = readOwner(takeover);
    if (!taker || !isSameProcess(taker.pid, taker.startTime)) removeIfExists(takeover);
    if (Date.now() > deadline) throw new Error(`could not take ${file}: another hub keeps starting; try again`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
}

function ownerLine(): string {
  return `${process.pid} ${readProc(process.pid)?.startTime ?? 0}\n`;
}

function createExclusive(file: string, content: string): boolean {
  try {
    fs.writeFileSync(file, content, { flag: 'wx', mode: 0o600 });
    return true;
  } catch (error) {
    if (errnoCode(error) === 'EEXIST') return false;
    throw error;
  }
}

function removeIfExists(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
  }
}

function readOwner(file: string): { pid: number; startTime: number | undefined } | undefined {
  try {
    const [pid, start] = fs.readFileSync(file, 'utf8').trim().split(/\s+/).map(Number);
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    return { pid, startTime: start ? start : undefined };
  } catch {
    return undefined;
  }
}

/** Removes the lock if this process still owns it. */
export function releaseLock(file: string): void {
  if (readOwner(file)?.pid !== process.pid) return;
  removeIfExists(file);
}
