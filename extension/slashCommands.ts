/**
 * What a user types in the chat: a message (optionally `@name …` to address another CI) or a slash
 * command. Pure (no `vscode`): unit-tested in test/slashCommands.test.ts.
 */
import { BusAddress, CI_NAME_SOURCE, nameProblem } from '../server/protocol';

/** `@name text…` addresses another CI. */
const MENTION = new RegExp(`^@(${CI_NAME_SOURCE})(?:\\s+([\\s\\S]*))?$`);

export type SlashCommand =
  | { name: 'spawn'; ci: string; command?: string[]; provider?: string; model?: string; baseUrl?: string }
  | { name: 'status' }
  | { name: 'jobs' }
  | { name: 'kill'; ci: string }
  | { name: 'restart'; ci: string }
  | { name: 'send'; to: string; text: string }
  | { name: 'attach'; ci: string }
  | { name: 'export'; ci: string; format: 'cast' | 'jsonl' | 'md' }
  | { name: 'help' };

export type ChatInput =
  | { kind: 'message'; to?: string; text: string }
  | { kind: 'command'; command: SlashCommand }
  /** A slash command that cannot run: say why, and how it is used. */
  | { kind: 'invalid'; error: string };

/** The commands, as `/help` lists them. */
export const SLASH_HELP: readonly [string, string][] = [
  ['/spawn <name> [-- command…]', 'start a CI in this project (default: the default CI command, else your shell)'],
  ['/spawn <name> --provider P --model M [--base-url URL]', 'start a model CI (ollama, openai, anthropic)'],
  ['/status', 'the hub and every CI: state, CPU, memory, output, clients'],
  ['/jobs', 'CIs and their queues'],
  ['/kill <name>', 'stop a CI'],
  ['/restart <name>', 'start a CI again'],
  ['/send <to> <text>', 'send a bus message (to: a CI, * or @project)'],
  ['/attach <name>', "open a terminal on a CI's live PTY"],
  ['/export <name> [cast|jsonl|md]', "save a CI's transcript"],
  ['/help', 'this list'],
];

const USAGE: Record<string, string> = {
  spawn: '/spawn <name> [-- command…]  or  /spawn <name> --provider P --model M',
  kill: '/kill <name>',
  restart: '/restart <name>',
  send: '/send <to> <text>',
  attach: '/attach <name>',
  export: '/export <name> [cast|jsonl|md]',
};

/**
 * Splits a command line into words: whitespace separates, single and double quotes group, a backslash
 * escapes the next character (outside single quotes). Returns an error for an unclosed quote.
 */
export function splitWords(line: string): string[] | { error: string } {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) word += line[++i];
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) return { error: `unclosed ${quote === '"' ? 'double' : 'single'} quote` };
  if (inWord) words.push(word);
  return words;
}

function nameError(value: string | undefined, command: string): string | undefined {
  if (!value) return `${command} needs a CI name: ${USAGE[command]}`;
  return nameProblem(value);
}

function invalid(error: string): ChatInput {
  return { kind: 'invalid', error };
}

/** Parses what the user typed. */
export function parseChatInput(raw: string): ChatInput {
  const text = raw.trim();
  if (!text.startsWith('/')) {
    const mention = MENTION.exec(text);
    if (mention) {
      const body = (mention[2] ?? '').trim();
      if (!body) return invalid(`write a message after @${mention[1]}`);
      return { kind: 'message', to: mention[1], text: body };
    }
    return { kind: 'message', text };
  }
  const space = text.search(/\s/);
  const verb = (space < 0 ? text.slice(1) : text.slice(1, space)).toLowerCase();
  const rest = space < 0 ? '' : text.slice(space + 1).trim();
  switch (verb) {
    case 'status':
    case 'jobs':
    case 'help':
      if (rest) return invalid(`/${verb} takes no arguments`);
      return { kind: 'command', command: { name: verb } };
    case 'kill':
    case 'restart':
    case 'attach': {
      const words = splitWords(rest);
      if (!Array.isArray(words)) return invalid(words.error);
      if (words.length > 1) return invalid(`/${verb} takes one CI name: ${USAGE[verb]}`);
      const error = nameError(words[0], verb);
      if (error) return invalid(error);
      return { kind: 'command', command: { name: verb, ci: words[0] } };
    }
    case 'export': {
      const words = splitWords(rest);
      if (!Array.isArray(words)) return invalid(words.error);
      const error = nameError(words[0], 'export');
      if (error) return invalid(error);
      const format = words[1] ?? 'md';
      if (format !== 'cast' && format !== 'jsonl' && format !== 'md') return invalid(`/export formats are cast, jsonl and md (got "${format}")`);
      if (words.length > 2) return invalid(`too many arguments: ${USAGE.export}`);
      return { kind: 'command', command: { name: 'export', ci: words[0], format } };
    }
    case 'send': {
      const m = /^(\S+)\s+([\s\S]+)$/.exec(rest);
      if (!m) return invalid(`/send needs a recipient and a text: ${USAGE.send}`);
      const to = m[1];
      if (!BusAddress.safeParse(to).success) return invalid(`/send: "${to}" is not a CI name, "*" or "@project"`);
      return { kind: 'command', command: { name: 'send', to, text: m[2].trim() } };
    }
    case 'spawn':
      return parseSpawn(rest);
    default:
      return invalid(`unknown command /${verb}; commands: ${SLASH_HELP.map(([c]) => c.split(' ')[0]).filter((c, i, a) => a.indexOf(c) === i).join(' ')}`);
  }
}

function parseSpawn(rest: string): ChatInput {
  const dashes = rest.search(/(^|\s)--(\s|$)/);
  const head = dashes < 0 ? rest : rest.slice(0, dashes);
  const tail = dashes < 0 ? undefined : rest.slice(dashes).replace(/^\s*--/, '');
  const words = splitWords(head);
  if (!Array.isArray(words)) return invalid(words.error);
  const [ci, ...options] = words;
  const error = nameError(ci, 'spawn');
  if (error) return invalid(error);
  const spec: Extract<SlashCommand, { name: 'spawn' }> = { name: 'spawn', ci };
  for (let i = 0; i < options.length; i++) {
    const option = options[i];
    const value = options[i + 1];
    const key = option === '--provider' ? 'provider' : option === '--model' ? 'model' : option === '--base-url' ? 'baseUrl' : undefined;
    if (!key) return invalid(`/spawn: unknown option "${option}"; put the command after --: ${USAGE.spawn}`);
    if (value === undefined || value.startsWith('--')) return invalid(`/spawn: ${option} needs a value`);
    spec[key] = value;
    i++;
  }
  if (tail !== undefined) {
    const command = splitWords(tail);
    if (!Array.isArray(command)) return invalid(command.error);
    if (command.length === 0) return invalid(`/spawn: give the command after --: ${USAGE.spawn}`);
    if (spec.provider || spec.model) return invalid('/spawn: give either a command (after --) or --provider/--model, not both');
    spec.command = command;
  }
  if ((spec.provider === undefined) !== (spec.model === undefined)) return invalid('/spawn: --provider and --model go together');
  return { kind: 'command', command: spec };
}
