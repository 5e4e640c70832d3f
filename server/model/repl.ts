/**
 * The terminal of a model CI: a small line editor the hub runs, so `cihub attach` and a VS Code terminal
 * give a plain chat — type, Enter, watch the answer stream in; Ctrl-C stops an answer (or clears the
 * line); Backspace and Ctrl-U edit; a paste is taken as text.
 */

export interface ReplHost {
  /** Prints to the terminal (captured like any CI's output). */
  print(text: string): void;
  /** A line was entered. */
  submit(line: string): void;
  /** Ctrl-C while an answer streams. */
  cancel(): void;
}

const PROMPT = '\x1b[1;36myou ›\x1b[0m ';

export class Repl {
  private line = '';
  private busy = false;
  /** What was typed while an answer streamed: shown once it is done. */
  private typedAhead = '';
  private inPaste = false;

  constructor(private readonly host: ReplHost) {}

  /** The prompt, with what is typed so far. */
  prompt(): void {
    this.host.print(`${PROMPT}${this.line}`);
  }

  setBusy(busy: boolean): void {
    this.busy = busy;
    if (!busy) {
      this.line = this.typedAhead;
      this.typedAhead = '';
      this.prompt();
    }
  }

  /** Keys from an attached terminal. */
  input(data: string): void {
    for (let i = 0; i < data.length; i++) {
      if (data.startsWith('\x1b[200~', i)) {
        this.inPaste = true;
        i += 5;
        continue;
      }
      if (data.startsWith('\x1b[201~', i)) {
        this.inPaste = false;
        i += 5;
        continue;
      }
      const c = data[i];
      if (c === '\x1b') {
        // An escape sequence (arrows, function keys): skip it, the editor has no cursor movement.
        const m = /^\x1b(?:\[[0-?]*[ -/]*[@-~]|O.|.)/.exec(data.slice(i));
        i += (m?.[0].length ?? 1) - 1;
        continue;
      }
      if (this.inPaste && (c === '\r' || c === '\n')) {
        this.insert(' ');
        continue;
      }
      this.key(c);
    }
  }

  private key(c: string): void {
    if (c === '\x03') {
      if (this.busy) this.host.cancel();
      else {
        this.line = '';
        this.host.print('^C\r\n');
        this.prompt();
      }
      return;
    }
    if (this.busy) {
      if (c === '\r') this.typedAhead += ' ';
      else if (c >= ' ' && c !== '\x7f') this.typedAhead += c;
      return;
    }
    if (c === '\r' || c === '\n') {
      const line = this.line.trim();
      this.line = '';
      this.host.print('\r\n');
      if (line) this.host.submit(line);
      else this.prompt();
      return;
    }
    if (c === '\x7f' || c === '\b') {
      if (this.line) {
        this.line = [...this.line].slice(0, -1).join('');
        this.host.print('\b \b');
      }
      return;
    }
    if (c === '\x15') {
      this.host.print(`\r\x1b[2K`);
      this.line = '';
      this.prompt();
      return;
    }
    if (c >= ' ') this.insert(c);
  }

  private insert(text: string): void {
    this.line += text;
    this.host.print(text);
  }
}
