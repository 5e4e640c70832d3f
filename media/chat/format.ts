/** Small pure helpers for the chat view (no DOM: the unit tests run them under Node). */

/** How a CI's state is shown: its dot's color. */
export type StateTone = 'ok' | 'busy' | 'idle' | 'error';

/** The tone of a CI state (`running`, `starting`, `backoff`, `exited`, `stopped`, `failed`, …). */
export function stateTone(state: string): StateTone {
  switch (state) {
    case 'running':
      return 'ok';
    case 'starting':
    case 'backoff':
      return 'busy';
    case 'failed':
      return 'error';
    default:
      return 'idle';
  }
}

const timeOfDay = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateAndTime = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
const fullDate = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });

/** A compact timestamp: the time for today's entries, the date and time for older ones. */
export function formatTime(t: number, now: number = Date.now()): string {
  const date = new Date(t);
  return new Date(now).toDateString() === date.toDateString() ? timeOfDay.format(date) : dateAndTime.format(date);
}

/** The full date and time, for a tooltip. */
export function formatFullTime(t: number): string {
  return fullDate.format(new Date(t));
}

/** The first line of a text, for one-line previews. */
export function firstLine(text: string): string {
  const trimmed = text.trim();
  const end = trimmed.indexOf('\n');
  return end === -1 ? trimmed : trimmed.slice(0, end);
}
