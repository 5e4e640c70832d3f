/**
 * Append-only JSONL files (queues, chats, conversations, the timeline): reading them back after a
 * crash. A hub killed mid-write (SIGKILL, a full disk, power loss) can leave a last line without its
 * newline; {@link repairTail} cuts it before anything is appended, so a record written later never lands
 * on the end of a broken one and is lost with it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errnoCode } from './errors';

export interface JsonlContent {
  /** Each complete line, parsed. */
  values: unknown[];
  /** Lines that were not JSON. */
  damaged: number;
  /** Bytes of a partial last line cut off by {@link repairTail}. */
  cutBytes: number;
}

/** Cuts a last line that has no newline (a write the crash interrupted); answers how many bytes went. */
export function repairTail(file: string): number {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r+');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return 0;
    throw error;
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return 0;
    // Read backwards in blocks until a newline: records are small, so this is one read in practice.
    const block = Buffer.alloc(64 * 1024);
    let end = size;
    while (end > 0) {
      const start = Math.max(0, end - block.length);
      const n = fs.readSync(fd, block, 0, end - start, start);
      const at = block.subarray(0, n).lastIndexOf(0x0a);
      if (at >= 0) {
        const keep = start + at + 1;
        if (keep < size) fs.ftruncateSync(fd, keep);
        return size - keep;
      }
      end = start;
    }
    fs.ftruncateSync(fd, 0);
    return size;
  } finally {
    fs.closeSync(fd);
  }
}

/** Repairs the tail (see {@link repairTail}), then parses every line; a missing file is empty. */
export function readJsonl(file: string): JsonlContent {
  const cutBytes = repairTail(file);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { values: [], damaged: 0, cutBytes };
    throw error;
  }
  const values: unknown[] = [];
  let damaged = 0;
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      values.push(JSON.parse(line));
    } catch {
      damaged++;
    }
  }
  return { values, damaged, cutBytes };
}

/** One line for the log about what a load skipped, or undefined when the file was intact. */
export function damageReport(file: string, damaged: number, cutBytes: number): string | undefined {
  const parts: string[] = [];
  if (damaged) parts.push(`skipped ${damaged} damaged record(s)`);
  if (cutBytes) parts.push(`cut a partial last record (${cutBytes} bytes, from a write interrupted by a crash)`);
  return parts.length ? `${path.basename(path.dirname(file))}/${path.basename(file)}: ${parts.join('; ')}; the intact ones were kept` : undefined;
}
