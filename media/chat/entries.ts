/**
 * One chat entry as DOM. Agent text goes in as text, or as Markdown rendered by markdown-it with raw
 * HTML escaped — never as HTML of its own.
 */
import type { ChatEntry, CiView, WebviewToHost } from '../../extension/webviewProtocol';
import { button, h, icon } from './dom';
import { firstLine, formatFullTime, formatTime } from './format';
import { renderMarkdown, stripAnsi } from './render';

export interface EntryContext {
  /** The selected project's CI of that name, if it is one. */
  ci(name: string | undefined): CiView | undefined;
  post(message: WebviewToHost): void;
}

/** Builds the element of an entry. The caller keys it by `entry.id`. */
export function renderEntry(entry: ChatEntry, ctx: EntryContext): HTMLElement {
  switch (entry.role) {
    case 'user':
      return renderUser(entry);
    case 'ci':
      return renderCi(entry, ctx);
    case 'bus':
      return renderBus(entry, ctx);
    case 'system':
      return renderSystem(entry, ctx);
    case 'error':
      return renderError(entry);
    default:
      return entry.role satisfies never;
  }
}

/** What an entry's rendering takes from its CI (for the Stop and terminal buttons): re-render when it changes. */
export function entryCiKey(entry: ChatEntry, ctx: EntryContext): string {
  const ci = ctx.ci(entry.ci);
  return ci ? `${ci.kind}|${ci.hasTerminal}` : '';
}

function shell(entry: ChatEntry, ...children: (Node | undefined)[]): HTMLElement {
  const el = h('div', { class: `entry entry-${entry.role}` }, ...children);
  el.dataset.id = entry.id;
  if (entry.streaming) el.setAttribute('aria-busy', 'true');
  return el;
}

function timestamp(t: number): HTMLElement {
  return h('time', { class: 'entry-time', text: formatTime(t), attrs: { datetime: new Date(t).toISOString(), title: formatFullTime(t) } });
}

function renderUser(entry: ChatEntry): HTMLElement {
  return shell(
    entry,
    h('div', { class: 'entry-head' }, entry.ci ? h('span', { class: 'entry-to', text: `to ${entry.ci}` }) : undefined, timestamp(entry.t)),
    h('div', { class: 'bubble' }, body(entry, 'prose')),
  );
}

function renderCi(entry: ChatEntry, ctx: EntryContext): HTMLElement {
  const ci = ctx.ci(entry.ci);
  const name = entry.ci ?? entry.from ?? 'CI';
  const actions = h('span', { class: 'entry-actions' });
  if (entry.streaming && ci?.kind === 'model') {
    actions.append(button({ label: `Stop ${name}`, icon: 'debug-stop', action: 'stop', onClick: () => ctx.post({ type: 'stop', ci: ci.name }) }));
  }
  if (ci?.kind === 'process' && ci.hasTerminal) {
    actions.append(button({ label: `Open ${name}'s terminal`, icon: 'terminal', action: 'terminal', onClick: () => ctx.post({ type: 'openTerminal', ci: ci.name }) }));
  }
  return shell(
    entry,
    h(
      'div',
      { class: 'entry-head' },
      icon(kindIcon(ci?.kind), 'entry-icon'),
      h('span', { class: 'entry-author', text: name }),
      timestamp(entry.t),
      entry.streaming ? streamingMark() : undefined,
      actions,
    ),
    body(entry, 'prose'),
    footer(entry, ctx),
  );
}

function kindIcon(kind: CiView['kind'] | undefined): string {
  switch (kind) {
    case 'model':
      return 'sparkle';
    case 'external':
      return 'plug';
    default:
      return 'hubot';
  }
}

function streamingMark(): HTMLElement {
  return h('span', { class: 'streaming', attrs: { role: 'img', 'aria-label': 'Replying', title: 'Replying…' } }, icon('loading', 'codicon-modifier-spin'));
}

function renderBus(entry: ChatEntry, ctx: EntryContext): HTMLElement {
  const route = `${entry.from ?? '?'} → ${entry.to ?? '?'}`;
  const details = h(
    'details',
    {},
    h(
      'summary',
      { attrs: { title: `${route}: ${firstLine(entry.text)}` } },
      icon('chevron-right', 'bus-chevron'),
      icon('mail', 'entry-icon'),
      h('span', { class: 'bus-route', text: route }),
      h('span', { class: 'bus-preview', text: firstLine(entry.text) }),
      entry.streaming ? streamingMark() : undefined,
      timestamp(entry.t),
    ),
    body(entry, 'prose'),
  );
  return shell(entry, details, footer(entry, ctx));
}

function renderSystem(entry: ChatEntry, ctx: EntryContext): HTMLElement {
  return shell(
    entry,
    h('div', { class: 'entry-head' }, icon('info', 'entry-icon'), h('span', { class: 'entry-author', text: entry.ci ?? 'Projects Chat' }), timestamp(entry.t), entry.streaming ? streamingMark() : undefined),
    body(entry, 'mono'),
    footer(entry, ctx),
  );
}

function renderError(entry: ChatEntry): HTMLElement {
  return shell(
    entry,
    h('div', { class: 'error-box' }, icon('error', 'entry-icon'), body(entry, 'prose'), timestamp(entry.t)),
  );
}

/**
 * The text: Markdown rendered safely, terminal text in a `<pre>`, plain text as text (`mono`: in the
 * editor font, for command results).
 */
function body(entry: ChatEntry, plainStyle: 'prose' | 'mono'): HTMLElement {
  switch (entry.format) {
    case 'markdown': {
      const el = h('div', { class: 'entry-body markdown' });
      // Safe: markdown-it runs with html disabled (raw HTML is escaped) and links limited to http/https/mailto.
      el.innerHTML = renderMarkdown(entry.text);
      addCopyButtons(el);
      return el;
    }
    case 'terminal':
      return h('pre', { class: 'entry-body terminal', text: stripAnsi(entry.text) });
    case 'plain':
      return plainStyle === 'mono' ? h('pre', { class: 'entry-body terminal', text: entry.text }) : h('div', { class: 'entry-body plain', text: entry.text });
    default:
      return entry.format satisfies never;
  }
}

function addCopyButtons(root: HTMLElement): void {
  for (const pre of root.querySelectorAll('pre')) {
    const wrapper = h('div', { class: 'code-block' });
    pre.replaceWith(wrapper);
    const copy = button({
      label: 'Copy',
      icon: 'copy',
      class: 'code-copy',
      onClick: () => {
        void navigator.clipboard.writeText(pre.textContent ?? '').then(() => copied(copy));
      },
    });
    wrapper.append(pre, copy);
  }
}

function copied(copy: HTMLButtonElement): void {
  copy.replaceChildren(icon('check'));
  setTimeout(() => copy.replaceChildren(icon('copy')), 1500);
}

function footer(entry: ChatEntry, ctx: EntryContext): HTMLElement | undefined {
  const held = heldActions(entry, ctx);
  if (!entry.partial && !held) return undefined;
  return h('div', { class: 'entry-foot' }, entry.partial ? h('span', { class: 'partial', text: '(cut off)', attrs: { title: 'This reply was cut off before it ended' } }) : undefined, held);
}

function heldActions(entry: ChatEntry, ctx: EntryContext): HTMLElement | undefined {
  const ids = entry.held;
  // The hold is at the recipient: the entry's CI, or for a message between CIs, who it is to.
  const ci = entry.ci ?? entry.to;
  if (!ids || ids.length === 0 || !ci) return undefined;
  const count = ids.length === 1 ? 'A message is' : `${ids.length} messages are`;
  return h(
    'div',
    { class: 'held', attrs: { role: 'group', 'aria-label': 'Held for approval' } },
    icon('debug-pause', 'held-icon'),
    h('span', { class: 'held-text', text: `${count} held for your approval` }),
    button({ label: `Approve: deliver to ${ci}`, text: 'Approve', class: 'primary', action: 'approve', onClick: () => ctx.post({ type: 'approve', ci, ids }) }),
    button({ label: `Refuse: drop it`, text: 'Refuse', class: 'secondary', action: 'refuse', onClick: () => ctx.post({ type: 'refuse', ci, ids }) }),
  );
}
