/**
 * Imported first by main.ts, so that it runs before the protocol's schemas are built: it sets up what
 * the shared protocol modules need in a webview.
 */
import { z } from 'zod';

// zod compiles fast parsers with `new Function` unless told not to; the webview's CSP has no
// 'unsafe-eval', so its probe would only be blocked and reported as a CSP violation. This must run
// before any schema is created (each decides at creation).
z.config({ jitless: true });

// `ChatEntry` comes from server/protocol.ts, which reads `process.platform` when it loads (and has a
// function over `process.env`). A webview has no `process`: without this the bundle throws before it
// runs. Remove once the webview's protocol no longer pulls in Node globals.
declare global {
  namespace NodeJS {
    interface ProcessEnv {
      [name: string]: string | undefined;
    }
  }
  var process: { platform: string; env: NodeJS.ProcessEnv; getuid?: () => number };
}

if (!('process' in globalThis)) {
  globalThis.process = { platform: 'browser', env: {} };
}
