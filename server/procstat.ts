/**
 * Process facts from /proc: the tree and session of a CI's process (to report CPU and memory, and to
 * leave no orphans behind when it stops), and process start times (to recognise a pid after a restart).
 */
import * as fs from 'node:fs';

/** Clock ticks per second for /proc/<pid>/stat times (USER_HZ; 100 on Linux everywhere that matters). */
const CLOCK_TICKS = 100;
/** Page size for the rss field (4 KiB on x86_64 and arm64 Linux). */
const PAGE_BYTES = 4096;

export interface ProcInfo {
  pid: number;
  /** R, S, D, Z (zombie: exited, not yet reaped), T… */
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  /** utime + stime, in clock ticks */
  cpuTicks: number;
  /** since boot, in clock ticks */
  startTime: number;
  rssPages: number;
}

/** Parses /proc/<pid>/stat; the command name may contain spaces and parentheses. */
function parseStat(text: string): ProcInfo | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const pid = Number.parseInt(text, 10);
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state); field n is f[n - 3].
  return {
    pid,
    state: f[0],
    ppid: Number(f[1]),
    pgrp: Number(f[2]),
    session: Number(f[3]),
    cpuTicks: Number(f[11]) + Number(f[12]),
    startTime: Number(f[19]),
    rssPages: Number(f[21]),
  };
}

export function readProc(pid: number): ProcInfo | undefined {
  try {
    return parseStat(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Every process on the machine (that we may read). */
export function allProcesses(): ProcInfo[] {
  let names: string[];
  try {
    names = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  const out: ProcInfo[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const info = readProc(Number(name));
    if (info) out.push(info);
  }
  return out;
}

/** `root` and all its descendants, plus anything left in its session (reparented children). */
export function processTree(root: number, all: ProcInfo[] = allProcesses()): ProcInfo[] {
  const children = new Map<number, ProcInfo[]>();
  for (const p of all) {
    const list = children.get(p.ppid);
    if (list) list.push(p);
    else children.set(p.ppid, [p]);
  }
  const seen = new Map<number, ProcInfo>();
  const stack = all.filter((p) => p.pid === root || p.session === root);
  while (stack.length) {
    const p = stack.pop();
    if (!p || seen.has(p.pid)) continue;
    seen.set(p.pid, p);
    for (const c of children.get(p.pid) ?? []) stack.push(c);
  }
  return [...seen.values()];
}

export interface TreeUsage {
  processes: number;
  cpuSeconds: number;
  rssBytes: number;
}

export function treeUsage(root: number, all?: ProcInfo[]): TreeUsage {
  const tree = processTree(root, all);
  let ticks = 0;
  let pages = 0;
  for (const p of tree) {
    ticks += p.cpuTicks;
    pages += p.rssPages;
  }
  return { processes: tree.length, cpuSeconds: ticks / CLOCK_TICKS, rssBytes: pages * PAGE_BYTES };
}

/** Sends `signal` to every process in `root`'s tree and session. Returns how many were signalled. */
export function signalTree(root: number, signal: NodeJS.Signals): number {
  let n = 0;
  for (const p of processTree(root)) {
    try {
      process.kill(p.pid, signal);
      n++;
    } catch {
      // ESRCH: it exited meanwhile; EPERM: not ours (setuid helper), nothing we can do.
    }
  }
  return n;
}

/** True if `pid` runs (is not a zombie) and is the process that had `startTime` (not a reused pid). */
export function isSameProcess(pid: number, startTime: number | undefined): boolean {
  const info = readProc(pid);
  return info !== undefined && info.state !== 'Z' && (startTime === undefined || info.startTime === startTime);
}

export function selfRssBytes(): number {
  return process.memoryUsage.rss();
}
