/**
 * The environment a CI started from this window inherits: the extension host's, without what belongs
 * to VS Code's own processes (an agent that runs `code` or any Electron app must not start as plain
 * Node because of ELECTRON_RUN_AS_NODE). Pure: no `vscode`.
 */
const VSCODE_INTERNAL = /^(ELECTRON_RUN_AS_NODE|ELECTRON_NO_ATTACH_CONSOLE|VSCODE_(?!GIT_)\w+|APPLICATION_INSIGHTS_\w+)$/;

export function ciEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && !VSCODE_INTERNAL.test(name)) out[name] = value;
  }
  return out;
}
