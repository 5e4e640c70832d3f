/**
 * The hub's CIs: creating, finding, stopping and removing them, keeping the registry on disk in step,
 * and restoring them when the hub starts (after a clean stop or a crash).
 */
import type { CiInfo } from './protocol';
import { HubErrorCode } from './protocol';
import { ProcessCi, type CiHost } from './ci';
import { Registry, type CiRecord } from './registry';
import { hubError, notFound } from './errors';
import { isSameProcess, signalTree } from './procstat';
import { splitSecrets } from './env';
import { repairCast, listSessions } from './capture';
import * as path from 'node:path';

export interface NewProcessCi {
  name: string;
  command: string[];
  cwd: string;
  env: Record<string, string>;
  project?: string;
  restart: CiRecord['restart'];
  policy: CiRecord['policy'];
  cols: number;
  rows: number;
  host: CiRecord['host'];
  defaultFor?: string;
  kept?: boolean;
}

/** Who hears about CIs coming, changing and going (the hub: the bus and watching clients). */
export interface CiListener {
  added(ci: ProcessCi): void;
  changed(ci: ProcessCi): void;
  removed(name: string): void;
}

export class Cis {
  private readonly cis = new Map<string, ProcessCi>();
  private readonly registry: Registry;
  private readonly host: CiHost;
  private listener: CiListener = { added: () => undefined, changed: () => undefined, removed: () => undefined };

  constructor(host: Omit<CiHost, 'changed'>) {
    this.registry = new Registry(host.paths.stateDir);
    this.host = { ...host, changed: (ci) => this.changed(ci) };
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
      if (record.lastPid && record.host === 'hub' && isSameProcess(record.lastPid, record.lastPidStart)) {
        // A previous hub died without stopping it; it cannot be re-adopted (its terminal is gone).
        signalTree(record.lastPid, 'SIGKILL');
        problems.push(`${record.name}: stopped pid ${record.lastPid} left running by the previous hub`);
      }
      const sessions = listSessions(path.join(this.host.paths.stateDir, 'captures', record.name));
      const last = sessions[sessions.length - 1];
      if (last) {
        const dropped = repairCast(last.path);
        if (dropped) problems.push(`${record.name}: capture ${last.id} ended mid-write; dropped ${dropped} bytes of a partial line`);
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

  get(name: string): ProcessCi | undefined {
    return this.cis.get(name);
  }

  require(name: string): ProcessCi {
    const ci = this.cis.get(name);
    if (!ci) throw notFound(name);
    return ci;
  }

  all(): ProcessCi[] {
    return [...this.cis.values()];
  }

  list(): CiInfo[] {
    return this.all().map((ci) => ci.info());
  }

  /** Creates a process CI (not yet started). */
  create(spec: NewProcessCi): ProcessCi {
    if (this.cis.has(spec.name)) {
      throw hubError(HubErrorCode.AlreadyExists, `a CI named "${spec.name}" exists already; pick another name or \`cihub rm ${spec.name}\` first`);
    }
    const { plain, secretNames } = splitSecrets(spec.env);
    const secrets: Record<string, string> = {};
    for (const name of secretNames) secrets[name] = spec.env[name];
    const record: CiRecord = {
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

  private changed(ci: ProcessCi): void {
    if (this.cis.get(ci.name) !== ci) return;
    this.persist();
    this.listener.changed(ci);
  }

  persist(): void {
    this.registry.save(this.all().map((ci) => ci.snapshot()));
  }

  /** Stops every CI (in parallel, each bounded) for a hub shutdown; the registry keeps what should run. */
  async shutdown(): Promise<void> {
    this.persist();
    await Promise.all(this.all().map((ci) => ci.shutdown()));
    this.persist();
  }
}
