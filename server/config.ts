/**
 * Hub settings (`config.json` in the state dir, 0600): shared by every window and CLI. Validated with
 * zod when read; a damaged file is reported and replaced by the defaults.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HubConfig } from './protocol';
import { errnoCode, errorMessage } from './errors';

export class ConfigStore {
  private readonly file: string;
  current: HubConfig;
  /** A problem found when loading, for the log. */
  readonly problem: string | undefined;

  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'config.json');
    const defaults = HubConfig.parse({});
    let loaded: HubConfig = defaults;
    let problem: string | undefined;
    try {
      const parsed = HubConfig.safeParse(JSON.parse(fs.readFileSync(this.file, 'utf8')));
      if (parsed.success) loaded = parsed.data;
      else problem = `${this.file} is invalid (${parsed.error.issues[0]?.message}); using the defaults`;
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') problem = `${this.file} could not be read (${errorMessage(error)}); using the defaults`;
    }
    this.current = loaded;
    this.problem = problem;
  }

  /** Applies a partial update and saves it. */
  update(change: { ports?: { enabled?: boolean; base?: number }; contextPrefix?: HubConfig['contextPrefix']; injectQuietMs?: number; injectHumanIdleMs?: number }): HubConfig {
    const next: HubConfig = {
      ...this.current,
      ...(change.contextPrefix !== undefined ? { contextPrefix: change.contextPrefix } : {}),
      ...(change.injectQuietMs !== undefined ? { injectQuietMs: change.injectQuietMs } : {}),
      ...(change.injectHumanIdleMs !== undefined ? { injectHumanIdleMs: change.injectHumanIdleMs } : {}),
      ports: { ...this.current.ports, ...(change.ports ?? {}) },
    };
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(next, null, 2), { mode: 0o600 });
    fs.renameSync(tmp, this.file);
    this.current = next;
    return next;
  }
}
