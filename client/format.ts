/** Plain-text formatting shared by the CLI and the chat's /status and /jobs: tables, durations, sizes. */
import type { z } from 'zod';
import type { CiInfo, QueueStats, Status } from '../server/protocol';

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = -1;
  do {
    v /= 1024;
    i++;
  } while (v >= 1024 && i < units.length - 1);
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

export function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

export function ago(at: number | undefined, now = Date.now()): string {
  return at === undefined ? '-' : `${duration(now - at)} ago`;
}

/** Left-aligned columns separated by two spaces. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** `~/code/app` for paths under the home directory. */
export function tildify(p: string | undefined, home = process.env.HOME): string {
  if (!p) return '-';
  return home && (p === home || p.startsWith(`${home}/`)) ? `~${p.slice(home.length)}` : p;
}

/** `3 (2m), 1 held, 12 done [inject] → larry`: waiting (oldest's age), held, delivered, policy, forwarding. */
function describeQueue(ci: CiInfo): string {
  if (!ci.queue) return '-';
  const policy = ci.kind === 'process' && ci.policy && ci.policy !== 'inbox' ? ` [${ci.policy}]` : '';
  return `${describeQueueStats(ci.queue)}${policy}${ci.forwardedTo ? ` → ${ci.forwardedTo}` : ''}`;
}

/** A mailbox's queue: depth (and the age of the oldest), held, delivered. */
export function describeQueueStats(q: QueueStats): string {
  const parts = [`${q.depth}${q.depth && q.oldest ? ` (${duration(Date.now() - q.oldest)})` : ''}`];
  if (q.held) parts.push(`${q.held} held`);
  parts.push(`${q.delivered} done`);
  return parts.join(', ');
}

/** The state, with the reason when it failed or exited. */
export function describeState(ci: CiInfo): string {
  if (ci.state === 'failed' || ci.state === 'exited') return ci.reason ? `${ci.state} (${ci.reason})` : ci.state;
  return ci.state;
}

/** `cihub status` as text: the hub, then one row per CI. */
export function formatStatus({ hub, cis }: z.output<typeof Status.result>): string {
  const head =
    `hub: pid ${hub.pid}, version ${hub.version}, up ${duration(hub.uptimeMs)}, ${hub.clients} client(s), ${bytes(hub.rssBytes)} RSS\n` +
    `  socket ${hub.socket}\n  bus    ${hub.busDir}\n  state  ${hub.stateDir}`;
  if (cis.length === 0) return `${head}\nno CIs; start one with: cihub spawn <name> -- <command>`;
  const rows = cis.map((ci) => [
    ci.name,
    describeState(ci),
    ci.pid === undefined ? '-' : String(ci.pid),
    ci.stats ? `${ci.stats.cpuPercent === undefined ? '' : `${ci.stats.cpuPercent.toFixed(0)}% `}${ci.stats.cpuSeconds.toFixed(1)}s` : '-',
    ci.stats ? `${bytes(ci.stats.rssBytes)} (${ci.stats.processes}p)` : '-',
    ago(ci.lastOutputAt),
    ci.bytesCaptured === undefined ? '-' : bytes(ci.bytesCaptured),
    String(ci.attached ?? '-'),
  ]);
  const models = cis.filter((ci) => ci.model);
  const modelTable = models.length
    ? `\n\nmodel CIs:\n${table(
        ['NAME', 'PROVIDER', 'MODEL', 'BASE URL', 'LATENCY', 'LAST ERROR'],
        models.map((ci) => {
          const m = ci.model;
          return [
            ci.name,
            m?.provider ?? '-',
            m?.model ?? '-',
            m?.baseUrl ?? '-',
            m?.lastLatencyMs === undefined ? '-' : `${m.lastLatencyMs} ms${m.busy ? ' (busy)' : ''}`,
            m?.lastError ? `${ago(m.lastErrorAt)}: ${m.lastError}` : '-',
          ];
        }),
      )}`
    : '';
  return `${head}\n${table(['NAME', 'STATE', 'PID', 'CPU', 'MEMORY', 'LAST OUTPUT', 'CAPTURED', 'ATTACHED'], rows)}${modelTable}`;
}

/** `cihub list` as text: CIs with their queues. */
export function formatList(cis: CiInfo[]): string {
  if (cis.length === 0) return 'no CIs; start one with: cihub spawn <name> -- <command>';
  const now = Date.now();
  const rows = cis.map((ci) => [
    ci.name,
    ci.kind,
    describeState(ci),
    ci.pid === undefined ? '-' : String(ci.pid),
    ci.kind === 'external' ? tildify(ci.socket) : tildify(ci.project),
    ci.state === 'running' && ci.startedAt ? duration(now - ci.startedAt) : '-',
    ci.bytesCaptured === undefined ? '-' : bytes(ci.bytesCaptured),
    describeQueue(ci),
  ]);
  return table(['NAME', 'KIND', 'STATE', 'PID', 'PROJECT', 'UPTIME', 'CAPTURED', 'QUEUE'], rows);
}
