/**
 * The top of the view: the project selector, the selected project's CIs as chips, and a banner while
 * the hub is not connected.
 */
import type { CiView, ProjectView } from '../../extension/webviewProtocol';
import { button, focusedAction, h, icon, refocusAction } from './dom';
import { stateTone } from './format';
import type { HubStatus } from './model';

export interface HeaderActions {
  selectProject(path: string): void;
  openTerminal(ci: string): void;
  /** Start typing a /spawn command. */
  spawn(): void;
}

export interface Header {
  readonly element: HTMLElement;
  setProjects(projects: readonly ProjectView[], selected: string | undefined): void;
  setCis(cis: readonly CiView[]): void;
  setHub(hub: HubStatus): void;
}

/** Builds the header; it shows nothing until the first `set…` call. */
export function createHeader(actions: HeaderActions): Header {
  const select = h('select', { class: 'project-select', attrs: { id: 'project', 'aria-label': 'Project' } });
  select.addEventListener('change', () => actions.selectProject(select.value));
  const chips = h('div', { class: 'chips', attrs: { role: 'group', 'aria-label': "This project's CIs" } });
  const banner = h('div', { class: 'banner', attrs: { role: 'status', hidden: true } });
  const element = h(
    'header',
    { class: 'header' },
    h('div', { class: 'header-main' }, h('div', { class: 'select-wrap' }, select, icon('chevron-down', 'select-chevron')), chips),
    banner,
  );
  return {
    element,
    setProjects: (projects, selected) => renderProjects(select, projects, selected),
    setCis: (cis) => renderChips(chips, cis, actions),
    setHub: (hub) => renderBanner(banner, hub),
  };
}

/** What a project is called in the selector: marked when it comes from another window. */
function projectLabel(project: ProjectView, all: readonly ProjectView[]): string {
  const ambiguous = all.some((other) => other !== project && other.name === project.name);
  const name = ambiguous ? `${project.name} — ${project.path}` : project.name;
  return project.here ? name : `${name} (other window)`;
}

function renderProjects(select: HTMLSelectElement, projects: readonly ProjectView[], selected: string | undefined): void {
  const options = projects.map((project) =>
    h('option', { text: projectLabel(project, projects), attrs: { value: project.path, title: project.path } }),
  );
  if (projects.length === 0) {
    options.push(h('option', { text: 'No folders open', attrs: { value: '' } }));
  } else if (!projects.some((project) => project.path === selected)) {
    options.unshift(h('option', { text: 'Choose a project…', attrs: { value: '', disabled: true } }));
  }
  select.replaceChildren(...options);
  select.value = selected !== undefined && projects.some((project) => project.path === selected) ? selected : '';
  select.disabled = projects.length === 0;
  select.title = selected ?? '';
}

function renderChips(container: HTMLElement, cis: readonly CiView[], actions: HeaderActions): void {
  const refocus = focusedAction(container);
  const chips: HTMLElement[] = cis.map((ci) => renderChip(ci, actions));
  if (cis.length === 0) chips.push(h('span', { class: 'chips-empty', text: 'No CIs yet' }));
  chips.push(button({ label: 'Spawn a CI (/spawn)', icon: 'add', class: 'chip-add', action: 'spawn', onClick: () => actions.spawn() }));
  container.replaceChildren(...chips);
  refocusAction(container, refocus);
}

function renderChip(ci: CiView, actions: HeaderActions): HTMLElement {
  const tone = stateTone(ci.state);
  const content = [
    h('span', { class: `state-dot tone-${tone}`, attrs: { 'aria-hidden': 'true' } }),
    h('span', { class: 'chip-name', text: ci.name }),
    ci.isDefault ? icon('star-full', 'chip-default') : undefined,
    ci.unread > 0 ? h('span', { class: 'count-badge', text: String(ci.unread), attrs: { 'aria-hidden': 'true' } }) : undefined,
    ci.held > 0 ? h('span', { class: 'held-badge', attrs: { 'aria-hidden': 'true' } }, icon('debug-pause'), String(ci.held)) : undefined,
  ];
  const description = describeCi(ci);
  if (!ci.hasTerminal) {
    return h('span', { class: 'chip', attrs: { title: description } }, ...content, h('span', { class: 'sr-only', text: `, ${ci.kind}, ${ci.state}` }));
  }
  const chip = h('button', { class: 'chip', attrs: { type: 'button', title: `${description}\nClick to open its terminal`, 'aria-label': `${description}. Open terminal` } }, ...content);
  chip.dataset.action = `ci:${ci.name}`;
  chip.addEventListener('click', () => actions.openTerminal(ci.name));
  return chip;
}

/** A CI in words: for tooltips and screen readers. */
function describeCi(ci: CiView): string {
  const parts = [`${ci.name}${ci.isDefault ? ' (default)' : ''}: ${ci.kind}, ${ci.state}`];
  if (ci.unread > 0) parts.push(`${ci.unread} unread`);
  if (ci.held > 0) parts.push(`${ci.held} held for approval`);
  return `${parts.join(', ')}${ci.detail ? `\n${ci.detail}` : ''}`;
}

const HUB_TEXT: Record<Exclude<HubStatus['state'], 'connected'>, string> = {
  connecting: 'Connecting to the hub…',
  restarting: 'Hub is restarting…',
  down: 'Hub is down',
};

function renderBanner(banner: HTMLElement, hub: HubStatus): void {
  if (hub.state === 'connected') {
    banner.hidden = true;
    banner.replaceChildren();
    return;
  }
  const waiting = hub.state !== 'down';
  const text = hub.message ? `${HUB_TEXT[hub.state]} — ${hub.message}` : HUB_TEXT[hub.state];
  banner.hidden = false;
  banner.className = `banner banner-${hub.state}`;
  banner.replaceChildren(waiting ? icon('loading', 'codicon-modifier-spin') : icon('warning'), h('span', { text }));
}
