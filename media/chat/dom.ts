/** A few helpers to build DOM without HTML strings: text always goes in as text. */

export type Child = Node | string | false | null | undefined;

export interface Props {
  class?: string;
  /** Attributes; `false` and `undefined` leave one out, `true` sets it empty. */
  attrs?: Record<string, string | boolean | undefined>;
  text?: string;
}

/** Creates an element with a class, attributes, text and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props.class) el.className = props.class;
  for (const [name, value] of Object.entries(props.attrs ?? {})) {
    if (value === true) el.setAttribute(name, '');
    else if (typeof value === 'string') el.setAttribute(name, value);
  }
  if (props.text !== undefined) el.textContent = props.text;
  append(el, children);
  return el;
}

/** Appends children, skipping the empty ones. */
export function append(parent: Node, children: readonly Child[]): void {
  for (const child of children) {
    if (child === false || child === null || child === undefined) continue;
    parent.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
  }
}

/** A codicon, hidden from screen readers (its meaning is carried by a label or text next to it). */
export function icon(name: string, extraClass = ''): HTMLElement {
  return h('i', { class: `codicon codicon-${name}${extraClass ? ` ${extraClass}` : ''}`, attrs: { 'aria-hidden': 'true' } });
}

export interface ButtonOptions {
  label: string;
  icon?: string;
  /** Shown next to the icon; without it the button is icon-only and `label` is its accessible name. */
  text?: string;
  class?: string;
  /** A stable name, so that focus can be put back on it when its entry is re-rendered. */
  action?: string;
  onClick: (event: MouseEvent) => void;
}

/** A button: icon-only (labelled for screen readers and with a tooltip) or with text. */
export function button(options: ButtonOptions): HTMLButtonElement {
  const kind = options.text === undefined ? 'icon-button' : 'text-button';
  const el = h(
    'button',
    {
      class: `${kind}${options.class ? ` ${options.class}` : ''}`,
      attrs: {
        type: 'button',
        title: options.text === options.label ? undefined : options.label,
        'aria-label': options.text === undefined ? options.label : undefined,
      },
    },
    options.icon ? icon(options.icon) : undefined,
    options.text !== undefined ? h('span', { text: options.text }) : undefined,
  );
  if (options.action) el.dataset.action = options.action;
  el.addEventListener('click', options.onClick);
  return el;
}

/** The focused element's `data-action` inside `root`, to restore focus after `root` is replaced. */
export function focusedAction(root: Element): string | undefined {
  const active = document.activeElement;
  return active instanceof HTMLElement && root.contains(active) ? active.dataset.action : undefined;
}

/** Focuses the element with that `data-action` inside `root`, if any. */
export function refocusAction(root: Element, action: string | undefined): void {
  if (action === undefined) return;
  for (const el of root.querySelectorAll<HTMLElement>('[data-action]')) {
    if (el.dataset.action === action) {
      el.focus();
      return;
    }
  }
}
