/** Writing a whole state file so that a crash leaves the old version or the new one, never half of one. */
import * as fs from 'node:fs';

/**
 * Writes `data` to a temporary file beside `file` (created with `mode`) and renames it over `file`.
 * `fsync`: flush it to disk first, for files whose loss after a power cut would lose user state.
 */
export function writeFileAtomic(file: string, data: string, options: { mode?: number; fsync?: boolean } = {}): void {
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w', options.mode ?? 0o600);
  try {
    fs.writeFileSync(fd, data);
    if (options.fsync) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}
