/** The slash commands the input suggests: the host's own list (it parses and runs them). */
import { SLASH_HELP } from '../../extension/slashCommands';

export interface SlashCommand {
  /** What is typed, with its slash: `/spawn`. */
  name: string;
  /** The arguments, as shown in the suggestion. Empty for commands without arguments. */
  args: string;
  description: string;
}

/** Every usage `/help` lists (a command may have several, as `/spawn` has). */
export const SLASH_COMMANDS: readonly SlashCommand[] = SLASH_HELP.map(([usage, description]) => {
  const space = usage.indexOf(' ');
  return space === -1 ? { name: usage, args: '', description } : { name: usage.slice(0, space), args: usage.slice(space + 1), description };
});

/**
 * The commands to suggest while the input is a command word being typed (`/`, `/sp`); none once the
 * input holds anything after the word, or does not start with a slash.
 */
export function matchSlashCommands(input: string): SlashCommand[] {
  if (!/^\/\S*$/.test(input)) return [];
  const word = input.toLowerCase();
  return SLASH_COMMANDS.filter((command) => command.name.startsWith(word));
}

/** What the input becomes when a suggestion is accepted: the command, then a space for its arguments. */
export function completeSlashCommand(command: SlashCommand): string {
  return `${command.name} `;
}
