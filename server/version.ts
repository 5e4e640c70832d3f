/** The hub's version: package.json's, injected by esbuild.mjs ("dev" when run unbundled). */
export const VERSION: string = process.env.PROJECTS_CHAT_VERSION ?? 'dev';
