/**
 * Hub settings (`config.json` in the state dir, 0600): shared by every window and CLI. Validated with
 * zod when read; a damaged file is reported and replaced by the defaults.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { z } from 'zod';
import { HubConfig, type SetConfig } from './protocol';
import { errnoCode, errorMessage } from './errors';

/** The entries of `o` whose value is not undefined (a partial update leaves the others as they are). */
function defined(o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

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
  update(change: z.output<typeof SetConfig.params>): HubConfig {
    const { ports, ...rest } = change;
    const next = HubConfig.parse({ ...this.current, ...defined(rest), ports: { ...this.current.ports, ...defined(ports ?? {}) } });
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(next, null, 2), { mode: 0o600 });
    fs.renameSync(tmp, this.file);
    this.current = next;
    return next;
  }
}
