/**
 * The chat webview of the Projects Chat sidebar. It says `ready`, renders what the host sends
 * (validated: a message that does not match the protocol is logged and ignored) and posts what the
 * user does. The host owns all state; this keeps only what it shows, and the draft.
 */
import './webviewGlobals';
import { HostToWebview, WebviewToHost, type ChatEntry, type CiView, type ProjectView } from '../../extension/webviewProtocol';
import { createChatLog } from './chatLog';
import { createComposer } from './composer';
import { h } from './dom';
import { createHeader } from './header';
import { post, savedState, saveState } from './host';
import type { DefaultCiChoice, HubStatus } from './model';

interface ViewModel {
  projects: ProjectView[];
  /** The selected project's path. */
  selected: string | undefined;
  cis: CiView[];
  hub: HubStatus;
  /** Pending "choose a default CI" cards, by project. */
  choices: Map<string, DefaultCiChoice>;
}

const model: ViewModel = { projects: [], selected: undefined, cis: [], hub: { state: 'connecting' }, choices: new Map() };

const header = createHeader({
  selectProject,
  openTerminal: (ci) => post({ type: 'openTerminal', ci }),
  spawn: () => composer.fill('/spawn '),
});

const chatLog = createChatLog({
  ci: (name) => model.cis.find((ci) => ci.name === name),
  post,
  scrolled: (scrollTop, atBottom) => saveState({ scrollTop, atBottom }),
  chooseDefaultCi: (project, option) => {
    model.choices.delete(project);
    chatLog.setChoice(undefined);
    post({ type: 'chooseDefaultCi', project, option });
  },
  openSettings: () => post({ type: 'openSettings' }),
});

const composer = createComposer(
  {
    send: sendText,
    draftChanged: (draft, sent) => saveState({ draft, sent: [...sent] }),
  },
  savedState().draft,
  savedState().sent,
);

/** Whether the saved scroll position still waits to be applied (once, after the first `init`). */
let restoreScroll = true;

function sendText(text: string): string | undefined {
  if (model.selected === undefined) return 'Choose a project first.';
  const message = WebviewToHost.safeParse({ type: 'send', project: model.selected, text });
  if (!message.success) return `This message is ${text.length.toLocaleString()} characters long; the limit is 1,000,000.`;
  post(message.data);
  return undefined;
}

function selectProject(path: string): void {
  if (path === model.selected) return;
  model.selected = path;
  model.cis = [];
  showProject([]);
  post({ type: 'selectProject', project: path });
}

/** Shows the selected project: its CIs, its entries, its pending card, and the input's placeholder. */
function showProject(entries: readonly ChatEntry[]): void {
  header.setProjects(model.projects, model.selected);
  header.setCis(model.cis);
  chatLog.setEntries(entries);
  showChoice();
  showTarget();
}

function showChoice(): void {
  chatLog.setChoice(model.selected === undefined ? undefined : model.choices.get(model.selected));
}

/** The placeholder and the empty state name where a plain message goes. */
function showTarget(): void {
  const target = model.cis.find((ci) => ci.isDefault)?.name;
  const hasProject = model.selected !== undefined;
  composer.setEnabled(hasProject);
  composer.setPlaceholder(
    hasProject ? `Message ${target ?? 'this project'} — @name to address another CI, / for commands` : 'Open a folder to chat with its CIs',
  );
  chatLog.setWelcome(target, hasProject);
}

function projectName(path: string): string {
  return model.projects.find((project) => project.path === path)?.name ?? path;
}

function handle(message: HostToWebview): void {
  switch (message.type) {
    case 'init':
      model.projects = message.projects;
      model.selected = message.selected;
      model.cis = message.cis;
      model.hub = { state: message.hub };
      header.setHub(model.hub);
      showProject(message.entries);
      if (restoreScroll) {
        restoreScroll = false;
        chatLog.scrollTo(savedState());
      }
      return;
    case 'projects': {
      model.projects = message.projects;
      const selected = message.selected ?? model.selected;
      if (selected !== model.selected) {
        // The host picked another project (the selected one is gone); its history and CIs follow.
        model.selected = selected;
        model.cis = [];
        showProject([]);
      } else {
        header.setProjects(model.projects, model.selected);
      }
      return;
    }
    case 'cis':
      if (message.project !== model.selected) return;
      model.cis = message.cis;
      header.setCis(model.cis);
      chatLog.refresh();
      showTarget();
      return;
    case 'history':
      if (message.project === model.selected) chatLog.setEntries(message.entries);
      return;
    case 'entry':
      if (message.project === model.selected) chatLog.upsert(message.entry);
      return;
    case 'hub':
      model.hub = { state: message.state, message: message.message };
      header.setHub(model.hub);
      return;
    case 'chooseDefaultCi':
      model.choices.set(message.project, { project: message.project, projectName: projectName(message.project), options: message.options });
      showChoice();
      return;
    default:
      message satisfies never;
  }
}

function mount(): void {
  const app = document.getElementById('app') ?? document.body.appendChild(h('div', { attrs: { id: 'app' } }));
  app.replaceChildren(header.element, chatLog.element, composer.element);
  header.setHub(model.hub);
  showProject([]);
}

mount();
// When VS Code focuses the view (its command, or a click on its title), put the caret in the input.
window.addEventListener('focus', () => {
  if (document.activeElement === document.body) composer.focus();
});
window.addEventListener('message', (event: MessageEvent<unknown>) => {
  const parsed = HostToWebview.safeParse(event.data);
  if (!parsed.success) {
    console.warn('Projects Chat: ignoring an invalid message from the host', parsed.error.issues, event.data);
    return;
  }
  handle(parsed.data);
});
post({ type: 'ready' });
