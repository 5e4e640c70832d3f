/**
 * The hub's CIs: creating, finding, stopping and removing them, keeping the registry on disk in step,
 * and restoring them when the hub starts (after a clean stop or a crash).
 */
import { HubErrorCode, type ModelSettings } from './protocol';
import { ProcessCi, type CiHost } from './ci';
import { ModelCi } from './model/modelCi';
import { Registry, type ModelRecord, type ProcessRecord } from './registry';
import { errorMessage, hubError, notFound } from './errors';
import { isSameProcess, signalTree } from './procstat';
import { splitSecrets } from './env';
import { repairCast, lastSession } from './capture';

/** A CI of either kind: process (a command in a PTY) or model (a provider). */
export type AnyCi = ProcessCi | ModelCi;

export interface NewProcessCi {
  name: string;
  command: string[];
  cwd: string;
  env: Record<string, string>;
  project?: string;
  restart: ProcessRecord['restart'];
  policy: ProcessRecord['policy'];
  cols: number;
  rows: number;
  host: ProcessRecord['host'];
  defaultFor?: string;
  kept?: boolean;
}

export interface NewModelCi extends ModelSettings {
  name: string;
  project?: string;
  defaultFor?: string;
  kept?: boolean;
}

/** Who hears about CIs coming, changing and going (the hub: the bus and watching clients). */
export interface CiListener {
  added(ci: AnyCi): void;
  changed(ci: AnyCi): void;
  removed(name: string): void;
}

export class Cis {
  private readonly cis = new Map<string, AnyCi>();
  private readonly registry: Registry;
  private readonly host: CiHost;
  private saveFailed = false;
  private listener: CiListener = { added: () => undefined, changed: () => undefined, removed: () => undefined };

  constructor(host: Omit<CiHost, 'changed' | 'updated'>) {
    this.registry = new Registry(host.paths.stateDir);
    this.host = {
      ...host,
      changed: (ci) => this.changed(ci),
      updated: (ci) => {
        if (this.cis.get(ci.name) === ci) this.listener.changed(ci);
      },
    };
  }

  listen(listener: CiListener): void {
    this.listener = listener;
  }

  /**
   * Loads the registry: stops processes a crashed hub left behind, repairs their last capture, and
   * starts the CIs that were running. Returns problems to report.
   */
  restore(): string[] {
    const { records, problems } = this.registry.load();
    for (const record of records) {
      this.repairLastCapture(record.name, problems);
      if (record.kind === 'model') {
        this.cis.set(record.name, new ModelCi(this.host, record));
        continue;
      }
      if (record.lastPid && record.host === 'hub' && isSameProcess(record.lastPid, record.lastPidStart)) {
        // A previous hub died without stopping it; it cannot be re-adopted (its terminal is gone).
        signalTree(record.lastPid, 'SIGKILL');
        problems.push(`${record.name}: stopped pid ${record.lastPid} left running by the previous hub`);
      }
      if (record.host === 'client' && record.desired === 'running' && record.state !== 'exited') {
        record.state = 'exited';
        record.reason = 'its cihub wrap client was cut off when the hub stopped';
      }
      // Secret values were never written: take them from this hub's own environment.
      const secrets: Record<string, string> = {};
      for (const name of record.secretEnvNames) {
        const value = process.env[name];
        if (value !== undefined) secrets[name] = value;
      }
      const ci = new ProcessCi(this.host, record, secrets);
      this.cis.set(record.name, ci);
    }
    for (const ci of this.cis.values()) if (ci.state === 'starting') ci.start();
    this.persist();
    return problems;
  }

  /** A crash can cut a capture's last line: make it readable again. */
  private repairLastCapture(name: string, problems: string[]): void {
    const last = lastSession(this.host.captures.dirOf(name));
    if (!last) return;
    const dropped = repairCast(last.path);
    if (dropped) problems.push(`${name}: capture ${last.id} ended mid-write; dropped ${dropped} bytes of a partial line`);
  }

  get(name: string): AnyCi | undefined {
    return this.cis.get(name);
  }

  require(name: string): AnyCi {
    const ci = this.cis.get(name);
    if (!ci) throw notFound(name);
    return ci;
  }

  /** A process CI, or a readable error for a model CI or a missing one. */
  requireProcess(name: string, what: string): ProcessCi {
    const ci = this.require(name);
    if (ci.kind !== 'process') throw hubError(HubErrorCode.InvalidState, `${name} is a model CI: ${what} applies to process CIs`);
    return ci;
  }

  all(): AnyCi[] {
    return [...this.cis.values()];
  }

  private assertFree(name: string): void {
    if (this.cis.has(name)) {
      throw hubError(HubErrorCode.AlreadyExists, `a CI named "${name}" exists already; pick another name or \`cihub rm ${name}\` first`);
    }
  }

  /** Creates a model CI (not yet started). */
  createModel(spec: NewModelCi): ModelCi {
    this.assertFree(spec.name);
    const { name, project, defaultFor, kept, ...settings } = spec;
    const record: ModelRecord = {
      ...settings,
      name,
      kind: 'model',
      project,
      createdAt: Date.now(),
      policy: 'inbox',
      cols: 100,
      rows: 30,
      defaultFor,
      kept,
      desired: 'running',
      restarts: 0,
      bytesCaptured: 0,
    };
    const ci = new ModelCi(this.host, record);
    this.cis.set(name, ci);
    this.listener.added(ci);
    return ci;
  }

  /** Creates a process CI (not yet started). */
  create(spec: NewProcessCi): ProcessCi {
    this.assertFree(spec.name);
    const { plain, secretNames } = splitSecrets(spec.env);
    const secrets: Record<string, string> = {};
    for (const name of secretNames) secrets[name] = spec.env[name];
    const record: ProcessRecord = {
      name: spec.name,
      kind: 'process',
      project: spec.project,
      createdAt: Date.now(),
      command: spec.command,
      cwd: spec.cwd,
      env: plain,
      secretEnvNames: secretNames,
      restart: spec.restart,
      policy: spec.policy,
      cols: spec.cols,
      rows: spec.rows,
      host: spec.host,
      defaultFor: spec.defaultFor,
      kept: spec.kept,
      desired: 'running',
      restarts: 0,
      bytesCaptured: 0,
    };
    const ci = new ProcessCi(this.host, record, secrets);
    this.cis.set(spec.name, ci);
    this.listener.added(ci);
    return ci;
  }

  async remove(name: string): Promise<void> {
    const ci = this.require(name);
    await ci.remove();
    this.cis.delete(name);
    this.persist();
    this.listener.removed(name);
  }

  private changed(ci: AnyCi): void {
    if (this.cis.get(ci.name) !== ci) return;
    this.persist();
    this.listener.changed(ci);
  }

  /** Saves the registry; a failure (a full disk) is reported once, and the next change tries again. */
  persist(): void {
    try {
      this.registry.save(this.all().map((ci) => ci.snapshot()));
      if (this.saveFailed) this.host.log.info('the CI registry is saved again');
      this.saveFailed = false;
    } catch (error) {
      if (!this.saveFailed) this.host.alert(`Could not save the CI registry (${errorMessage(error)}): CIs changed since run on, but a hub restart would not know of them. Free some disk space.`);
      this.saveFailed = true;
    }
  }

  /** Stops every CI (in parallel, each bounded) for a hub shutdown; the registry keeps what should run. */
  async shutdown(): Promise<void> {
    this.persist();
    await Promise.all(this.all().map((ci) => ci.shutdown()));
    this.persist();
  }
}
