/**
 * The CI registry on disk (`registry.json` in the state dir, 0600): every CI the hub knows and whether it
 * should be running, so a hub that was killed — even with `kill -9` — starts the same CIs again.
 * Written atomically (temp file + rename); validated with zod when read back.
 */
import * as fs from 'node:fs';
import { writeFileAtomic } from './writeAtomic';
import * as path from 'node:path';
import { z } from 'zod';
import { CI_NAME_PATTERN, DeliveryPolicy, ModelSettings, RestartPolicy } from './protocol';

/** What every CI record has. */
const Common = {
  name: z.string().regex(CI_NAME_PATTERN),
  project: z.string().optional(),
  createdAt: z.number(),
  /** How bus messages reach it (process CIs; model CIs answer each message). */
  policy: DeliveryPolicy,
  cols: z.number().int(),
  rows: z.number().int(),
  /** Whether the CI should run: `stopped` after a user killed it. */
  desired: z.enum(['running', 'stopped']),
  restarts: z.number().int().default(0),
  bytesCaptured: z.number().default(0),
  state: z.string().optional(),
  reason: z.string().optional(),
  startedAt: z.number().optional(),
  endedAt: z.number().optional(),
  session: z.string().optional(),
  /** The project this CI is the default CI of (`project-<slug>-ai`). */
  defaultFor: z.string().optional(),
  /** Keep it when its project leaves every window. */
  kept: z.boolean().optional(),
};

export const ProcessRecord = z.object({
  ...Common,
  kind: z.literal('process'),
  command: z.array(z.string()).min(1),
  cwd: z.string(),
  /** The client's environment minus secret-looking variables (see server/env.ts). */
  env: z.record(z.string(), z.string()),
  secretEnvNames: z.array(z.string()).default([]),
  restart: RestartPolicy,
  host: z.enum(['hub', 'client']),
  /** The last process, to stop a survivor of a hub crash before starting the CI again. */
  lastPid: z.number().int().optional(),
  lastPidStart: z.number().optional(),
  exitCode: z.number().int().optional(),
  signal: z.string().optional(),
});
export type ProcessRecord = z.infer<typeof ProcessRecord>;

/** A model CI: the provider and how to ask it. API keys are never here (memory only). */
export const ModelRecord = z.object({
  ...Common,
  kind: z.literal('model'),
  ...ModelSettings.shape,
});
export type ModelRecord = z.infer<typeof ModelRecord>;

export const CiRecord = z.discriminatedUnion('kind', [ProcessRecord, ModelRecord]);
export type CiRecord = z.infer<typeof CiRecord>;

const RegistryFile = z.object({ version: z.literal(1), cis: z.array(z.unknown()) });

export interface LoadedRegistry {
  records: CiRecord[];
  /** Problems found (a corrupt file, an invalid entry): reported, and the intact part is kept. */
  problems: string[];
}

export class Registry {
  readonly file: string;

  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'registry.json');
  }

  load(): LoadedRegistry {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch {
      return { records: [], problems: [] };
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      return { records: [], problems: [`${this.file} is not valid JSON (${String(error)}); kept a copy as ${this.keepCopy()}`] };
    }
    const file = RegistryFile.safeParse(parsed);
    if (!file.success) {
      // Perhaps a newer hub's file: it is saved over as soon as anything changes, so keep it first.
      return { records: [], problems: [`${this.file} has an unknown layout; starting with an empty registry; kept a copy as ${this.keepCopy()}`] };
    }
    const records: CiRecord[] = [];
    const problems: string[] = [];
    for (const entry of file.data.cis) {
      const record = CiRecord.safeParse(entry);
      if (record.success) records.push(record.data);
      else {
        const name = typeof entry === 'object' && entry !== null && 'name' in entry && typeof entry.name === 'string' ? ` "${entry.name.slice(0, 64)}"` : '';
        problems.push(`skipped an invalid registry entry${name}: ${record.error.issues[0]?.message ?? 'invalid'}`);
      }
    }
    if (problems.length) problems.push(`the registry as it was, with the skipped entries, is kept as ${this.keepCopy()}`);
    return { records, problems };
  }

  /** Copies the registry file aside before it is saved over; answers the copy's path. */
  private keepCopy(): string {
    const kept = `${this.file}.corrupt-${Date.now()}`;
    fs.copyFileSync(this.file, kept);
    return kept;
  }

  save(records: readonly CiRecord[]): void {
    writeFileAtomic(this.file, JSON.stringify({ version: 1, cis: records }, null, 1), { fsync: true });
  }
}
