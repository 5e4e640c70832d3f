/**
 * The extension's settings (`projectsChat.*` in package.json), read and validated with zod: a bad value
 * is reported once and replaced by its default, never passed on.
 */
import * as vscode from 'vscode';
import { z } from 'zod';
import { describeZodError, Retention, RETENTION_DEFAULTS, withoutInvalid, type HubConfig } from '../server/protocol';

export const Settings = z.object({
  defaultCi: z.string().trim().default(''),
  defaultCiPolicy: z.enum(['inbox', 'inject', 'hold']).default('inbox'),
  keepDefaultCis: z.boolean().default(false),
  ports: z.object({ enabled: z.boolean().default(false), base: z.number().int().min(1024).max(65000).default(42100) }).default({ enabled: false, base: 42100 }),
  contextPrefix: z.enum(['cross-project', 'always', 'never']).default('cross-project'),
  inject: z
    .object({ quietMs: z.number().int().min(0).max(60_000).default(1500), humanIdleMs: z.number().int().min(0).max(600_000).default(5000) })
    .default({ quietMs: 1500, humanIdleMs: 5000 }),
  retention: Retention.default(RETENTION_DEFAULTS),
  diskLowMB: z.number().int().min(0).max(1_048_576).default(512),
});
export type Settings = z.infer<typeof Settings>;

/** Reads the settings; invalid ones fall back to their defaults and are reported through `warn`. */
export function readSettings(warn: (message: string) => void): Settings {
  const c = vscode.workspace.getConfiguration('projectsChat');
  const raw = {
    defaultCi: c.get('defaultCi'),
    defaultCiPolicy: c.get('defaultCiPolicy'),
    keepDefaultCis: c.get('keepDefaultCis'),
    ports: { enabled: c.get('ports.enabled'), base: c.get('ports.base') },
    contextPrefix: c.get('contextPrefix'),
    inject: { quietMs: c.get('inject.quietMs'), humanIdleMs: c.get('inject.humanIdleMs') },
    retention: {
      captureMaxMB: c.get('retention.captureMaxMB'),
      captureMaxAgeDays: c.get('retention.captureMaxAgeDays'),
      queueMaxMessages: c.get('retention.queueMaxMessages'),
      queueMaxAgeDays: c.get('retention.queueMaxAgeDays'),
    },
    diskLowMB: c.get('diskLowMB'),
  };
  const parsed = Settings.safeParse(raw);
  if (parsed.success) return parsed.data;
  warn(`Projects Chat settings: ${describeZodError(parsed.error)}; using the defaults for those.`);
  const repaired = Settings.safeParse(withoutInvalid(raw, parsed.error));
  return repaired.success ? repaired.data : Settings.parse({});
}

/** The hub settings these settings ask for. */
export function hubConfigOf(s: Settings): Partial<HubConfig> {
  return {
    ports: s.ports,
    contextPrefix: s.contextPrefix,
    injectQuietMs: s.inject.quietMs,
    injectHumanIdleMs: s.inject.humanIdleMs,
    retention: s.retention,
    diskLowMB: s.diskLowMB,
  };
}
