/**
 * `cihub export`: a CI's capture as the asciicast file itself, or as a transcript (JSONL for tools,
 * Markdown for people) rendered from it through a headless terminal, so it reads as the screen did.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ExportFormat } from './protocol';
import { HubErrorCode } from './protocol';
import { listSessions } from './capture';
import { hubError } from './errors';
import type { ScreenMirrors } from './screen/mirror';
import type { RenderedCast } from './screen/messages';
import type { TimelineEntry } from './bus/timeline';

/** Scrollback lines rendered into a transcript. */
const TRANSCRIPT_MAX_LINES = 100_000;

export interface ExportResult {
  path: string;
  format: ExportFormat;
  session: { id: string; path: string; bytes: number; startedAt: number };
  sessions: { id: string; path: string; bytes: number; startedAt: number }[];
}

export interface ExportSubject {
  name: string;
  command?: string[];
  cwd?: string;
  project?: string;
}

export async function exportCapture(
  stateDir: string,
  captureDir: string,
  ci: ExportSubject,
  format: ExportFormat,
  sessionId: string | undefined,
  mirrors: ScreenMirrors,
  /** The CI's bus messages; read only for a transcript (it reads every project's timeline). */
  timeline: () => TimelineEntry[] = () => [],
): Promise<ExportResult> {
  const sessions = listSessions(captureDir);
  if (sessions.length === 0) throw hubError(HubErrorCode.InvalidState, `${ci.name} has no capture yet (it has not run)`);
  const session = sessionId ? sessions.find((s) => s.id === sessionId) : sessions[sessions.length - 1];
  if (!session) {
    throw hubError(
      HubErrorCode.NotFound,
      `${ci.name} has no session "${sessionId}"; it has: ${sessions.map((s) => s.id).join(', ')}`,
    );
  }
  if (format === 'cast') return { path: session.path, format, session, sessions };
  const rendered = await mirrors.render(session.path, TRANSCRIPT_MAX_LINES);
  const dir = path.join(stateDir, 'exports');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${ci.name}-${session.id}.${format}`);
  // Messages of this session's time span (the last session also gets everything after it).
  const start = session.startedAt - 1000;
  const next = sessions[sessions.indexOf(session) + 1];
  const messages = timeline().filter((e) => e.t >= start && (!next || e.t < next.startedAt));
  const content = format === 'jsonl' ? toJsonl(ci, session.id, rendered, messages) : toMarkdown(ci, session.id, rendered, messages);
  fs.writeFileSync(file, content, { mode: 0o600 });
  return { path: file, format, session, sessions };
}

function toJsonl(ci: ExportSubject, session: string, r: RenderedCast, messages: TimelineEntry[]): string {
  const lines: unknown[] = [
    { type: 'session', ci: ci.name, session, command: ci.command, cwd: ci.cwd, project: ci.project, header: r.header, duration: r.duration },
    ...r.inputs.map((i) => ({ type: 'input', t: i.t, data: i.data })),
    ...r.resizes.map((x) => ({ type: 'resize', t: x.t, size: x.size })),
    ...messages.map(({ type, ...m }) => ({ type: 'message', message_type: type, ...m })),
    { type: 'screen', text: r.text },
  ];
  if (r.badLines) lines.push({ type: 'warning', message: `${r.badLines} damaged capture lines were skipped` });
  return lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
}

function toMarkdown(ci: ExportSubject, session: string, r: RenderedCast, messages: TimelineEntry[]): string {
  const started = typeof r.header.timestamp === 'number' ? new Date(r.header.timestamp * 1000).toISOString() : 'unknown';
  const out = [
    `# ${ci.name} — session ${session}`,
    '',
    `- command: \`${(ci.command ?? []).join(' ')}\``,
    ...(ci.cwd ? [`- cwd: \`${ci.cwd}\``] : []),
    ...(ci.project ? [`- project: \`${ci.project}\``] : []),
    `- started: ${started}; duration ${r.duration.toFixed(1)} s`,
    '',
    '## Terminal',
    '',
    fence(r.text),
    '',
  ];
  if (r.inputs.length) {
    out.push('## Typed', '');
    for (const i of r.inputs) out.push(`- ${i.t.toFixed(2)} s: \`${JSON.stringify(i.data).slice(1, -1).replace(/`/g, '\\`')}\``);
    out.push('');
  }
  if (messages.length) {
    out.push('## Messages', '');
    for (const m of messages) {
      const when = new Date(m.t).toISOString().slice(11, 19);
      out.push(`- ${when} **${m.outcome}** ${m.from} → ${m.mailbox}${m.detail ? ` (${m.detail})` : ''}: ${m.content.replace(/\s+/g, ' ').slice(0, 300)}`);
    }
    out.push('');
  }
  if (r.badLines) out.push(`> ${r.badLines} damaged capture lines were skipped.`, '');
  return out.join('\n');
}

/** A fenced code block that the text itself cannot close. */
function fence(text: string): string {
  const longest = Math.max(2, ...(text.match(/`+/g) ?? []).map((m) => m.length));
  const f = '`'.repeat(longest + 1);
  return `${f}text\n${text}\n${f}`;
}
