/**
 * Hub settings (`config.json` in the state dir, 0600): shared by every window and CLI. Validated with
 * zod when read; an invalid value is reported and replaced by its default, the others are kept.
 */
import * as fs from 'node:fs';
import { writeFileAtomic } from './writeAtomic';
import * as path from 'node:path';
import type { z } from 'zod';
import { describeZodError, HubConfig, withoutInvalid, type SetConfig } from './protocol';
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
      const raw: unknown = JSON.parse(fs.readFileSync(this.file, 'utf8'));
      const parsed = HubConfig.safeParse(raw);
      if (parsed.success) loaded = parsed.data;
      else {
        const repaired = HubConfig.safeParse(withoutInvalid(raw, parsed.error) ?? {});
        if (repaired.success) loaded = repaired.data;
        problem = `${this.file}: ${describeZodError(parsed.error)}; using the default${repaired.success ? ' for that, keeping the other settings' : 's'}`;
      }
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') problem = `${this.file} could not be read (${errorMessage(error)}); using the defaults`;
    }
    this.current = loaded;
    this.problem = problem;
  }

  /** Applies a partial update and saves it. */
  update(change: z.output<typeof SetConfig.params>): HubConfig {
    const { ports, retention, ...rest } = change;
    const next = HubConfig.parse({
      ...this.current,
      ...defined(rest),
      ports: { ...this.current.ports, ...defined(ports ?? {}) },
      retention: { ...this.current.retention, ...defined(retention ?? {}) },
    });
    writeFileAtomic(this.file, JSON.stringify(next, null, 2));
    this.current = next;
    return next;
  }
}
