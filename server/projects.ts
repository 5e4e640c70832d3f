/**
 * Projects across windows: each connected window registers its workspace folders; the hub keeps the
 * union and drops a window's folders when it disconnects. A project's default CI (`project-<slug>-ai`,
 * created on demand) is removed once no window has had the project for `defaultCiGraceMs` — a window
 * reload reconnects well within that — unless it is kept.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type { ProjectInfo } from './protocol';
import type { Cis } from './cis';
import type { Log } from './log';

/** A project folder's name, lowercased to letters, digits and dashes, at most `max` long ("root" if none is left). */
export function projectSlug(projectPath: string, max: number): string {
  return (
    path
      .basename(projectPath)
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, max) || 'root'
  );
}

/** `project-<slug>-ai`, to fit a CI name. */
function defaultCiName(projectPath: string, taken: (name: string) => boolean = () => false): string {
  const slug = projectSlug(projectPath, 50);
  const plain = `project-${slug}-ai`;
  if (!taken(plain)) return plain;
  // Another folder with the same name has it: tell them apart by a hash of the path.
  return `project-${slug.slice(0, 45)}-${createHash('sha256').update(projectPath).digest('hex').slice(0, 4)}-ai`;
}

interface Window {
  id: string;
  folders: { path: string; name: string }[];
}

export class Projects {
  private readonly windows = new Map<object, Window>();
  private readonly graceTimers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly cis: Cis,
    private readonly log: Log,
    private readonly changed: (projects: ProjectInfo[]) => void,
    private readonly graceMs: () => number,
  ) {}

  /** Default CIs of projects no window has yet (after a hub start) get their grace period. */
  start(): void {
    this.reconcile();
  }

  register(connection: object, windowId: string, folders: { path: string; name: string }[]): ProjectInfo[] {
    this.windows.set(connection, { id: windowId, folders });
    this.reconcile();
    return this.list();
  }

  /** A window's connection closed. */
  drop(connection: object): void {
    if (this.windows.delete(connection)) this.reconcile();
  }

  list(): ProjectInfo[] {
    const byPath = new Map<string, { name: string; windows: number }>();
    for (const w of this.windows.values()) {
      for (const f of w.folders) {
        const entry = byPath.get(f.path);
        if (entry) entry.windows++;
        else byPath.set(f.path, { name: f.name, windows: 1 });
      }
    }
    return [...byPath]
      .map(([p, { name, windows }]) => ({ path: p, name, windows, defaultCi: this.defaultCiOf(p) }))
      .sort((a, b) => a.name.localeCompare(b.name) || a.path.localeCompare(b.path));
  }

  has(projectPath: string): boolean {
    for (const w of this.windows.values()) if (w.folders.some((f) => f.path === projectPath)) return true;
    return false;
  }

  /** The default CI's name for a project: the existing one, or the name it will get. */
  defaultCiOf(projectPath: string): string {
    const existing = this.cis.all().find((ci) => ci.record.defaultFor === projectPath);
    if (existing) return existing.name;
    return defaultCiName(projectPath, (name) => {
      const ci = this.cis.get(name);
      return ci !== undefined && ci.record.defaultFor !== projectPath;
    });
  }

  private reconcile(): void {
    for (const ci of this.cis.all()) {
      const project = ci.record.defaultFor;
      if (!project) continue;
      if (this.has(project)) {
        clearTimeout(this.graceTimers.get(project));
        this.graceTimers.delete(project);
      } else if (!ci.record.kept && !this.graceTimers.has(project)) {
        const timer = setTimeout(() => void this.expire(project), this.graceMs());
        timer.unref();
        this.graceTimers.set(project, timer);
      }
    }
    this.changed(this.list());
  }

  private async expire(project: string): Promise<void> {
    this.graceTimers.delete(project);
    if (this.has(project)) return;
    for (const ci of this.cis.all()) {
      if (ci.record.defaultFor !== project || ci.record.kept) continue;
      this.log.info(`${ci.name}: its project ${project} is gone from every window; removing it`);
      await this.cis.remove(ci.name);
    }
  }

  stop(): void {
    for (const timer of this.graceTimers.values()) clearTimeout(timer);
    this.graceTimers.clear();
  }
}
