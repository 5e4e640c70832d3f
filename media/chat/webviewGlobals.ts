/**
 * Imported first by main.ts, so that it runs before the protocol's schemas are built.
 *
 * zod compiles fast parsers with `new Function` unless told not to; the webview's CSP has no
 * 'unsafe-eval', so its probe would only be blocked and reported as a CSP violation. This must run
 * before any schema is created (each decides at creation).
 */
import { z } from 'zod';

z.config({ jitless: true });
