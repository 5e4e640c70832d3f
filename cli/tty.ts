/** The local terminal for `cihub attach` and `cihub wrap`: raw mode in, and a clean hand-back out. */

/** Modes an agent may have switched on that must not outlive it in the user's terminal. */
const RESET_MODES =
  '\x1b[?1049l' + // leave the alternate screen
  '\x1b[?2004l' + // bracketed paste off
  '\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l' + // mouse reporting off
  '\x1b[?1l' + // normal cursor keys
  '\x1b[?25h' + // cursor visible
  '\x1b[0m'; // default colours

export interface LocalTerminal {
  readonly isTty: boolean;
  size(): { cols: number; rows: number };
  onResize(listener: () => void): void;
  /** Puts stdin back and resets modes the remote side may have left on. */
  restore(resetModes: boolean): void;
}

export function takeTerminal(): LocalTerminal {
  const stdin = process.stdin;
  const isTty = stdin.isTTY === true && process.stdout.isTTY === true;
  // Raw now; reading starts when the caller adds its 'data' listener (flowing mode).
  if (isTty) stdin.setRawMode(true);
  let restored = false;
  return {
    isTty,
    size: () => ({
      cols: Math.max(2, process.stdout.columns || 80),
      rows: Math.max(1, process.stdout.rows || 24),
    }),
    onResize: (listener) => {
      process.stdout.on('resize', listener);
    },
    restore: (resetModes) => {
      if (restored) return;
      restored = true;
      if (isTty) {
        if (resetModes) process.stdout.write(RESET_MODES);
        stdin.setRawMode(false);
      }
      stdin.pause();
    },
  };
}
