/**
 * Typing a bus message into an agent's PTY (`inject` policy) safely.
 *
 * The message is prefixed with a visible provenance line, `[from <sender>]`, and stripped of control
 * characters: an ESC in the content could end a bracketed paste early (`ESC[201~`) and type the rest
 * as keystrokes. If the agent enabled bracketed paste (DECSET 2004, as TUI agents like Claude Code do),
 * the text goes in as one paste — newlines included — followed by a separate Enter: a real Claude Code
 * TUI takes that as one prompt. Otherwise it is typed as one line (newlines become spaces, so a
 * multi-line message cannot submit several commands to a shell) followed by Enter.
 */

/** Pause between the paste and its Enter, so a TUI has taken the paste before the Enter arrives. */
export const INJECT_ENTER_DELAY_MS = 30;

/** Drops C0 controls (ESC among them) and DEL; keeps tabs and, when `keepNewlines`, newlines. */
export function sanitize(text: string, keepNewlines: boolean): string {
  const normalized = text.replace(/\r\n?/g, '\n');
  const cleaned = normalized.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '');
  return keepNewlines ? cleaned : cleaned.replace(/\n+/g, ' ');
}

/**
 * The keystrokes that deliver `content` with its provenance: `[from <sender>]` on its own line inside a
 * bracketed paste, or as a prefix on the single typed line otherwise. Enter is sent separately.
 */
export function injectionText(sender: string, content: string, bracketedPaste: boolean): string {
  const provenance = `[from ${sanitize(sender, false)}]`;
  if (bracketedPaste) return `\x1b[200~${provenance}\n${sanitize(content, true)}\x1b[201~`;
  return `${provenance} ${sanitize(content, false)}`;
}
