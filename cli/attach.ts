/**
 * `cihub attach <name>`: this terminal shows the CI's current screen, then its live output; what you type
 * goes to the CI. The detach key (Ctrl-], as in telnet) returns to the shell; the CI keeps running.
 */
import { randomUUID } from 'node:crypto';
import { Attach, AttachEnded, AttachResize, Detach, Input, Output } from '../server/protocol';
import type { HubClient } from '../client/hubClient';
import { takeTerminal } from './tty';

/** Ctrl-] detaches. Agents rarely bind it (it is telnet's escape character). */
export const DETACH_KEY = '\x1d';
export const DETACH_KEY_NAME = 'Ctrl-]';

export async function attach(client: HubClient, name: string, readOnly: boolean): Promise<number> {
  const attachId = randomUUID();
  const term = takeTerminal();
  let done: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => (done = resolve));
  let ended = false;
  const end = (message: string, code: number) => {
    if (ended) return;
    ended = true;
    process.stdin.removeAllListeners('data');
    process.stdin.removeAllListeners('end');
    term.restore(true);
    process.stderr.write(`\r\n[cihub] ${message}\r\n`);
    done(code);
  };

  client.on(Output, ({ attachId: id, kind, data }) => {
    if (id !== attachId) return;
    // A replay is the whole screen: start from a clear one.
    if (kind === 'replay' && term.isTty) process.stdout.write('\x1b[H\x1b[2J');
    process.stdout.write(data);
  });
  client.on(AttachEnded, ({ attachId: id, reason }) => {
    if (id === attachId) end(reason, 0);
  });
  client.onClose(() => end('connection to the hub lost', 1));

  term.onResize(() => void client.notify(AttachResize, { attachId, ...term.size() }));

  if (term.isTty) {
    // The replay clears the screen, so the hint also goes in the window title.
    process.stderr.write(`[cihub] attaching to ${name}; ${DETACH_KEY_NAME} detaches\r\n`);
    process.stdout.write(`\x1b]2;cihub attach ${name} (${DETACH_KEY_NAME} detaches)\x07`);
  }
  try {
    await client.call(Attach, { name, attachId, readOnly, ...term.size() });
  } catch (error) {
    term.restore(false);
    throw error;
  }
  process.stdin.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    const at = text.indexOf(DETACH_KEY);
    if (at >= 0) {
      if (!readOnly && at > 0) void client.notify(Input, { attachId, data: text.slice(0, at) });
      void client.notify(Detach, { attachId }).then(() => end(`detached from ${name} (it keeps running)`, 0));
      return;
    }
    if (!readOnly) void client.notify(Input, { attachId, data: text });
  });
  process.stdin.on('end', () => {
    void client.notify(Detach, { attachId }).then(() => end(`detached from ${name} (input ended)`, 0));
  });
  return finished;
}
