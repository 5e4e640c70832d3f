/**
 * The input at the bottom: a textarea that grows with its content, Enter to send, Shift+Enter for a new
 * line, Up/Down through what was sent, and suggestions for slash commands.
 */
import { completeSlashCommand, matchSlashCommands, type SlashCommand } from './commands';
import { button, h } from './dom';
import { InputHistory } from './inputHistory';

export interface ComposerActions {
  /** Sends the text; answers an error to show instead (e.g. too long), or undefined once sent. */
  send(text: string): string | undefined;
  /** The draft changed (for the view state). */
  draftChanged(draft: string, sent: readonly string[]): void;
}

export interface Composer {
  readonly element: HTMLElement;
  /** Replaces the input's text and focuses it. */
  fill(text: string): void;
  setPlaceholder(text: string): void;
  /** Whether there is a project to send to. */
  setEnabled(enabled: boolean): void;
  focus(): void;
}

const MAX_LINES = 8;

/** Builds the input with its draft and sent history restored. */
export function createComposer(actions: ComposerActions, draft: string, sent: readonly string[]): Composer {
  const history = new InputHistory(sent);
  const textarea = h('textarea', {
    class: 'input',
    attrs: { rows: '1', 'aria-label': 'Message', 'aria-autocomplete': 'list', 'aria-controls': 'suggestions', 'aria-expanded': 'false', spellcheck: 'true' },
  });
  textarea.value = draft;
  const suggestions = h('ul', { class: 'suggestions', attrs: { id: 'suggestions', role: 'listbox', 'aria-label': 'Commands', hidden: true } });
  const problem = h('div', { class: 'input-problem', attrs: { role: 'alert', hidden: true } });
  const send = button({ label: 'Send (Enter)', icon: 'send', class: 'send', onClick: () => submit() });
  const element = h(
    'div',
    { class: 'composer' },
    suggestions,
    h('div', { class: 'input-box' }, textarea, send),
    problem,
  );

  let matches: SlashCommand[] = [];
  let active = 0;
  let dismissed = false;
  let enabled = true;

  function resize(): void {
    const style = getComputedStyle(textarea);
    const lineHeight = parseFloat(style.lineHeight) || 18;
    const padding = parseFloat(style.paddingTop) + parseFloat(style.paddingBottom);
    const max = lineHeight * MAX_LINES + padding;
    textarea.style.height = 'auto';
    textarea.style.height = `${Math.min(textarea.scrollHeight, max)}px`;
    textarea.classList.toggle('scrolls', textarea.scrollHeight > max);
  }

  function setText(text: string): void {
    textarea.value = text;
    textarea.setSelectionRange(text.length, text.length);
    changed();
  }

  /** After any change of the text: size, suggestions, send button, saved draft. */
  function changed(): void {
    resize();
    updateSuggestions();
    send.disabled = !enabled || textarea.value.trim() === '';
    problem.hidden = true;
    actions.draftChanged(textarea.value, history.entries);
  }

  function updateSuggestions(): void {
    const next = dismissed ? [] : matchSlashCommands(textarea.value);
    if (next.length !== matches.length || next.some((command, i) => command !== matches[i])) active = 0;
    matches = next;
    suggestions.hidden = matches.length === 0;
    textarea.setAttribute('aria-expanded', String(matches.length > 0));
    suggestions.replaceChildren(...matches.map((command, i) => renderSuggestion(command, i === active, i)));
    if (matches.length > 0) textarea.setAttribute('aria-activedescendant', `suggestion-${active}`);
    else textarea.removeAttribute('aria-activedescendant');
  }

  function renderSuggestion(command: SlashCommand, selected: boolean, index: number): HTMLElement {
    const item = h(
      'li',
      {
        class: selected ? 'suggestion active' : 'suggestion',
        attrs: { id: `suggestion-${index}`, role: 'option', 'aria-selected': String(selected), title: `${command.name} ${command.args} — ${command.description}` },
      },
      h('span', { class: 'suggestion-name', text: command.name }),
      command.args ? h('span', { class: 'suggestion-args', text: command.args }) : undefined,
      h('span', { class: 'suggestion-description', text: command.description }),
    );
    // mousedown, not click: keep the focus (and the caret) in the textarea.
    item.addEventListener('mousedown', (event) => {
      event.preventDefault();
      accept(command);
    });
    return item;
  }

  function accept(command: SlashCommand): void {
    setText(completeSlashCommand(command));
    textarea.focus();
  }

  function moveActive(delta: number): void {
    active = (active + delta + matches.length) % matches.length;
    updateSuggestions();
    suggestions.children[active]?.scrollIntoView({ block: 'nearest' });
  }

  function submit(): void {
    const text = textarea.value;
    if (!enabled || text.trim() === '') return;
    const error = actions.send(text);
    if (error !== undefined) {
      problem.textContent = error;
      problem.hidden = false;
      return;
    }
    history.push(text);
    dismissed = false;
    setText('');
  }

  /** Handles keys while suggestions are shown; true when the key was used. */
  function suggestionKey(event: KeyboardEvent): boolean {
    const command = matches[active];
    if (!command) return false;
    switch (event.key) {
      case 'ArrowDown':
        moveActive(1);
        return true;
      case 'ArrowUp':
        moveActive(-1);
        return true;
      case 'Tab':
        if (event.shiftKey) return false;
        accept(command);
        return true;
      case 'Enter':
        if (event.shiftKey) return false;
        // A complete command without arguments is sent as typed; anything else is completed first.
        if (command.args === '' && textarea.value === command.name) return false;
        accept(command);
        return true;
      case 'Escape':
        dismissed = true;
        updateSuggestions();
        return true;
      default:
        return false;
    }
  }

  /** Up on the first line (Down on the last, while walking) recalls sent messages. */
  function historyKey(event: KeyboardEvent): boolean {
    if (event.shiftKey || event.altKey || event.ctrlKey || event.metaKey) return false;
    const { value, selectionStart, selectionEnd } = textarea;
    if (selectionStart !== selectionEnd) return false;
    if (event.key === 'ArrowUp' && !value.slice(0, selectionStart).includes('\n')) {
      const previous = history.previous(value);
      if (previous === undefined) return false;
      showRecalled(previous);
      return true;
    }
    if (event.key === 'ArrowDown' && history.walking && !value.slice(selectionEnd).includes('\n')) {
      const next = history.next();
      if (next === undefined) return false;
      showRecalled(next);
      return true;
    }
    return false;
  }

  function showRecalled(text: string): void {
    dismissed = true;
    setText(text);
  }

  textarea.addEventListener('keydown', (event) => {
    if (event.isComposing) return;
    const used = suggestionKey(event) || historyKey(event);
    if (used) {
      event.preventDefault();
      return;
    }
    if (event.key === 'Enter' && !event.shiftKey && !event.altKey) {
      event.preventDefault();
      submit();
    }
  });
  textarea.addEventListener('input', () => {
    history.reset();
    dismissed = false;
    changed();
  });
  textarea.addEventListener('blur', () => {
    dismissed = true;
    updateSuggestions();
  });
  textarea.addEventListener('focus', () => {
    dismissed = false;
    updateSuggestions();
  });

  // The textarea can be measured only once it is in the document.
  requestAnimationFrame(() => changed());
  return {
    element,
    fill(text) {
      dismissed = false;
      history.reset();
      setText(text);
      textarea.focus();
    },
    setPlaceholder(text) {
      textarea.placeholder = text;
      resize();
    },
    setEnabled(value) {
      enabled = value;
      send.disabled = !enabled || textarea.value.trim() === '';
    },
    focus() {
      textarea.focus();
    },
  };
}
