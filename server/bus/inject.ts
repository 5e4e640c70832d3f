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
const INJECT_ENTER_DELAY_MS = 30;

/** Drops C0 controls (ESC among them) and DEL; keeps tabs and, when `keepNewlines`, newlines. */
function sanitize(text: string, keepNewlines: boolean): string {
  const normalized = text.replace(/\r\n?/g, '\n');
  const cleaned = normalized.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '');
  return keepNewlines ? cleaned : cleaned.replace(/\n+/g, ' ');
}

/**
 * The keystrokes that deliver `content`: one bracketed paste if the program asked for it, else one line.
 * With a `sender`, its provenance `[from <sender>]` comes first: on its own line inside the paste, or as a
 * prefix of the line. Enter is not included (see {@link typeMessage}).
 */
function injectionText(content: string, bracketedPaste: boolean, sender?: string): string {
  const provenance = sender === undefined ? '' : `[from ${sanitize(sender, false)}]`;
  if (bracketedPaste) return `\x1b[200~${provenance && `${provenance}\n`}${sanitize(content, true)}\x1b[201~`;
  return `${provenance && `${provenance} `}${sanitize(content, false)}`;
}

/** Types a message into a CI as {@link injectionText} says, then Enter a moment later, as its own key. */
export function typeMessage(ci: { type(text: string): void }, content: string, bracketedPaste: boolean, sender?: string): void {
  ci.type(injectionText(content, bracketedPaste, sender));
  setTimeout(() => ci.type('\r'), INJECT_ENTER_DELAY_MS).unref();
}
