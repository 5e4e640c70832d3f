/**
 * The message list: entries keyed by id (a streaming reply is re-rendered in place as it grows), the
 * "choose a default CI" card, and scrolling that follows the latest entry unless you scrolled up.
 */
import type { ChatEntry } from '../../extension/webviewProtocol';
import { button, focusedAction, h, icon, refocusAction } from './dom';
import { entryCiKey, renderEntry, type EntryContext } from './entries';
import type { DefaultCiChoice } from './model';

export interface ChatLogActions extends EntryContext {
  /** The scroll position changed (for the view state). */
  scrolled(scrollTop: number, atBottom: boolean): void;
  chooseDefaultCi(project: string, option: string): void;
  openSettings(): void;
}

export interface ChatLog {
  readonly element: HTMLElement;
  /** Replaces every entry (a project's history, or `init`). */
  setEntries(entries: readonly ChatEntry[]): void;
  /** Adds an entry, or updates the one with its id. */
  upsert(entry: ChatEntry): void;
  /** Re-renders the entries whose CI changed kind (their Stop and terminal buttons). */
  refresh(): void;
  setChoice(choice: DefaultCiChoice | undefined): void;
  /** The empty-state text, which names the default CI. */
  setWelcome(target: string | undefined, hasProject: boolean): void;
  /** Scrolls to a saved position, or to the latest entry. */
  scrollTo(position: { scrollTop?: number; atBottom: boolean }): void;
}

/** Within this many pixels of the end counts as "at the latest entry". */
const BOTTOM_SLACK_PX = 24;
const SAVE_SCROLL_DELAY_MS = 150;

interface Row {
  entry: ChatEntry;
  /** The entry as JSON: an update that changes nothing re-renders nothing. */
  json: string;
  /** What the entry's rendering takes from its CI. */
  ciKey: string;
  element: HTMLElement;
}

let cardCount = 0;

/** Builds the message list. */
export function createChatLog(actions: ChatLogActions): ChatLog {
  const rows = new Map<string, Row>();
  const list = h('div', { class: 'entries' });
  const welcome = h('div', { class: 'welcome' });
  const choiceSlot = h('div', { class: 'choice-slot' });
  const log = h('div', { class: 'log', attrs: { role: 'log', 'aria-live': 'polite', 'aria-label': 'Messages', tabindex: '0' } }, welcome, list, choiceSlot);
  const jump = button({ label: 'Jump to the latest message', icon: 'arrow-down', text: 'Jump to latest', class: 'jump', onClick: () => scrollToEnd(true) });
  jump.hidden = true;
  const element = h('section', { class: 'chat' }, log, jump);

  let following = true;
  /** Where the list last scrolled itself to: scrolling above it is the user's doing. */
  let autoTop = 0;
  let saveTimer: ReturnType<typeof setTimeout> | undefined;

  function atBottom(): boolean {
    return log.scrollHeight - log.scrollTop - log.clientHeight <= BOTTOM_SLACK_PX;
  }

  function scrollToEnd(focusLatest = false): void {
    following = true;
    log.scrollTop = log.scrollHeight;
    autoTop = log.scrollTop;
    jump.hidden = true;
    if (focusLatest) log.focus();
  }

  function updateJump(): void {
    jump.hidden = following || log.scrollHeight <= log.clientHeight;
  }

  /** After the content changed: stay at the end when following, otherwise leave the scroll alone. */
  function settle(): void {
    if (following) scrollToEnd();
    else updateJump();
    welcome.hidden = rows.size > 0 || choiceSlot.childElementCount > 0;
  }

  log.addEventListener('scroll', () => {
    // A scroll event can arrive after the content or the view changed size: only a move up from where
    // the list put itself stops following, not being "not at the bottom" at that moment.
    if (atBottom()) following = true;
    else if (log.scrollTop < autoTop) following = false;
    updateJump();
    clearTimeout(saveTimer);
    saveTimer = setTimeout(() => actions.scrolled(log.scrollTop, following), SAVE_SCROLL_DELAY_MS);
  });
  // Content that grows after it is added (fonts, a details opened, the view resized) keeps the end in view.
  new ResizeObserver(() => settle()).observe(list);
  new ResizeObserver(() => settle()).observe(log);

  function render(entry: ChatEntry): Row {
    return { entry, json: JSON.stringify(entry), ciKey: entryCiKey(entry, actions), element: renderEntry(entry, actions) };
  }

  /** Updates a row in place, keeping its element (so focus, the live region and opened details survive). */
  function update(row: Row, entry: ChatEntry, json: string): void {
    const ciKey = entryCiKey(entry, actions);
    if (json === row.json && ciKey === row.ciKey) return;
    const fresh = renderEntry(entry, actions);
    const refocus = focusedAction(row.element);
    const wasOpen = row.element.querySelector('details')?.open ?? false;
    row.element.className = fresh.className;
    row.element.toggleAttribute('aria-busy', fresh.hasAttribute('aria-busy'));
    row.element.replaceChildren(...fresh.childNodes);
    const details = row.element.querySelector('details');
    if (details && wasOpen) details.open = true;
    refocusAction(row.element, refocus);
    row.entry = entry;
    row.json = json;
    row.ciKey = ciKey;
  }

  return {
    element,
    setEntries(entries) {
      rows.clear();
      const fresh = entries.map((entry) => {
        const row = render(entry);
        rows.set(entry.id, row);
        return row.element;
      });
      list.replaceChildren(...fresh);
      settle();
    },
    upsert(entry) {
      const row = rows.get(entry.id);
      if (row) {
        update(row, entry, JSON.stringify(entry));
      } else {
        const fresh = render(entry);
        rows.set(entry.id, fresh);
        list.append(fresh.element);
      }
      settle();
    },
    refresh() {
      for (const row of rows.values()) update(row, row.entry, row.json);
      settle();
    },
    setChoice(choice) {
      choiceSlot.replaceChildren(...(choice ? [renderChoice(choice, actions)] : []));
      settle();
    },
    setWelcome(target, hasProject) {
      welcome.replaceChildren(...renderWelcome(target, hasProject));
    },
    scrollTo(position) {
      if (position.atBottom || position.scrollTop === undefined) {
        scrollToEnd();
        return;
      }
      log.scrollTop = position.scrollTop;
      autoTop = log.scrollTop;
      following = atBottom();
      updateJump();
    },
  };
}

function renderWelcome(target: string | undefined, hasProject: boolean): Node[] {
  if (!hasProject) {
    return [icon('folder-opened', 'welcome-icon'), h('p', { class: 'welcome-title', text: 'No project' }), h('p', { text: 'Open a folder to chat with its CIs.' })];
  }
  return [
    icon('comment-discussion', 'welcome-icon'),
    h('p', { class: 'welcome-title', text: 'Chat with this project’s CIs' }),
    h('p', { text: target ? `Messages go to ${target}. Start one with @name to address another CI.` : 'Start a message with @name to address a CI.' }),
    h('p', {}, 'Type ', h('code', { text: '/' }), ' for commands: ', h('code', { text: '/spawn' }), ' starts a CI, ', h('code', { text: '/status' }), ' shows them all.'),
  ];
}

function renderChoice(choice: DefaultCiChoice, actions: ChatLogActions): HTMLElement {
  cardCount += 1;
  const titleId = `choice-title-${cardCount}`;
  const card = h(
    'div',
    { class: 'card', attrs: { role: 'group', 'aria-labelledby': titleId } },
    h('div', { class: 'card-title', attrs: { id: titleId } }, icon('sparkle'), h('span', { text: `Choose a default CI for ${choice.projectName}` })),
    h('p', { class: 'card-text', text: 'Plain messages go to the project’s default CI, and none is configured yet. Pick how it should run:' }),
    h(
      'div',
      { class: 'card-options' },
      ...choice.options.map((option) => {
        const el = h('button', { class: 'card-option', attrs: { type: 'button' } }, h('span', { class: 'option-label', text: option.label }), h('span', { class: 'option-detail', text: option.detail }));
        el.addEventListener('click', () => actions.chooseDefaultCi(choice.project, option.id));
        return el;
      }),
    ),
    button({ label: 'Open settings', icon: 'settings-gear', text: 'Open settings', class: 'link', onClick: () => actions.openSettings() }),
  );
  return card;
}
