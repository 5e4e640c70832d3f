/**
 * The environment a CI started from this window inherits: the extension host's (the hub leaves out what
 * belongs to VS Code's own processes, whoever asks). Pure: no `vscode`.
 */
export function hostEnvironment(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) if (value !== undefined) out[name] = value;
  return out;
}
