/** The slash commands the input suggests (the host parses and runs them). */

export interface SlashCommand {
  /** What is typed, with its slash: `/spawn`. */
  name: string;
  /** The arguments, as shown in the suggestion. Empty for commands without arguments. */
  args: string;
  description: string;
}

export const SLASH_COMMANDS: readonly SlashCommand[] = [
  { name: '/spawn', args: '<name> [-- command]', description: 'Start a new CI in this project' },
  { name: '/status', args: '', description: 'The hub and every CI' },
  { name: '/jobs', args: '', description: "This project's CIs" },
  { name: '/kill', args: '<name>', description: 'Stop a CI' },
  { name: '/send', args: '<to> <text>', description: 'Message a CI over the bus' },
  { name: '/attach', args: '<name>', description: "Open a CI's terminal" },
  { name: '/export', args: '<name>', description: "Export a CI's transcript" },
  { name: '/help', args: '', description: 'What you can type here' },
];

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
