/**
 * The extension's settings (`projectsChat.*` in package.json), read and validated with zod: a bad value
 * is reported once and replaced by its default, never passed on.
 */
import * as vscode from 'vscode';
import { z } from 'zod';
import { DeliveryPolicy, describeZodError, HubConfig, withoutInvalid } from '../server/protocol';

/** The hub-wide ones are the hub's own schema (limits and defaults), grouped as package.json shows them. */
export const Settings = z.object({
  defaultCi: z.string().trim().default(''),
  defaultCiPolicy: DeliveryPolicy.default('inbox'),
  keepDefaultCis: z.boolean().default(false),
  ports: HubConfig.shape.ports,
  contextPrefix: HubConfig.shape.contextPrefix,
  inject: z.object({ quietMs: HubConfig.shape.injectQuietMs, humanIdleMs: HubConfig.shape.injectHumanIdleMs }).prefault({}),
  retention: HubConfig.shape.retention,
  diskLowMB: HubConfig.shape.diskLowMB,
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
