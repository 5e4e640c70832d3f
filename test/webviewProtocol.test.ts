/**
 * The chat webview's protocol (both directions, validated with zod) and the webview's pure parts: the
 * Markdown renderer that turns untrusted agent output into HTML, slash-command suggestions, and the
 * sent-message history.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { HostToWebview, WebviewToHost, type ChatEntry } from '../extension/webviewProtocol';
import { renderMarkdown, stripAnsi } from '../media/chat/render';
import { completeSlashCommand, matchSlashCommands, SLASH_COMMANDS } from '../media/chat/commands';
import { InputHistory } from '../media/chat/inputHistory';
import { stateTone } from '../media/chat/format';

const PROJECT = '/home/dev/code/app';

const entry: ChatEntry = {
  id: 'e1',
  t: 1_700_000_000_000,
  role: 'ci',
  ci: 'project-app-ai',
  text: 'Hello **there**',
  format: 'markdown',
  streaming: true,
  held: ['m-1'],
};

const ci = { name: 'reviewer', kind: 'process', state: 'running', detail: 'claude', unread: 2, held: 0, isDefault: false, hasTerminal: true } as const;

test('host → webview: every message type validates', () => {
  const messages: unknown[] = [
    { type: 'init', projects: [{ path: PROJECT, name: 'app', here: true, windows: 1 }], selected: PROJECT, cis: [ci], entries: [entry], hub: 'connected' },
    { type: 'init', projects: [], cis: [], entries: [], hub: 'connecting' },
    { type: 'projects', projects: [{ path: '/w', name: 'web', here: false, windows: 2 }] },
    { type: 'cis', project: PROJECT, cis: [ci, { ...ci, name: 'm', kind: 'model', isDefault: true }] },
    { type: 'history', project: PROJECT, entries: [entry, { id: 'e2', t: 1, role: 'bus', from: 'a', to: 'b', text: 'hi', format: 'plain' }] },
    { type: 'entry', project: PROJECT, entry: { id: 'e3', t: 2, role: 'error', text: 'No such CI', format: 'plain', partial: true } },
    { type: 'hub', state: 'down', message: 'it exited' },
    { type: 'hub', state: 'restarting' },
    { type: 'chooseDefaultCi', project: PROJECT, options: [{ id: 'ollama', label: 'Ollama', detail: 'local' }] },
  ];
  for (const message of messages) {
    const parsed = HostToWebview.safeParse(message);
    assert.ok(parsed.success, `${JSON.stringify(message)}: ${parsed.error?.message}`);
  }
});

test('host → webview: invalid messages are rejected', () => {
  const invalid: unknown[] = [
    'init',
    null,
    { type: 'nonsense' },
    { projects: [] },
    { type: 'init', projects: [], cis: [], entries: [] },
    { type: 'hub', state: 'sleeping' },
    { type: 'entry', project: PROJECT, entry: { ...entry, role: 'robot' } },
    { type: 'entry', project: PROJECT, entry: { ...entry, format: 'html' } },
    { type: 'entry', project: PROJECT, entry: { ...entry, t: '12:00' } },
    { type: 'entry', project: PROJECT, entry: { id: 'e', role: 'ci', format: 'plain', t: 1 } },
    { type: 'entry', entry },
    { type: 'cis', project: PROJECT, cis: [{ ...ci, unread: 1.5 }] },
    { type: 'cis', project: PROJECT, cis: [{ ...ci, kind: 'robot' }] },
    { type: 'projects', projects: [{ path: PROJECT, name: 'app', here: 'yes', windows: 1 }] },
    { type: 'chooseDefaultCi', project: PROJECT, options: [{ id: 'x' }] },
  ];
  for (const message of invalid) assert.equal(HostToWebview.safeParse(message).success, false, JSON.stringify(message));
});

test('webview → host: every message type validates', () => {
  const messages: unknown[] = [
    { type: 'ready' },
    { type: 'selectProject', project: PROJECT },
    { type: 'send', project: PROJECT, text: '@reviewer look at this' },
    { type: 'send', project: PROJECT, text: 'x'.repeat(1_000_000) },
    { type: 'openTerminal', ci: 'reviewer' },
    { type: 'stop', ci: 'project-app-ai' },
    { type: 'approve', ci: 'reviewer', ids: ['m-1', 'm-2'] },
    { type: 'approve', ci: 'reviewer' },
    { type: 'refuse', ci: 'reviewer', ids: ['m-1'] },
    { type: 'chooseDefaultCi', project: PROJECT, option: 'ollama' },
    { type: 'openSettings' },
  ];
  for (const message of messages) assert.doesNotThrow(() => WebviewToHost.parse(message), JSON.stringify(message).slice(0, 80));
});

test('webview → host: invalid messages are rejected', () => {
  const invalid: unknown[] = [
    { type: 'hello' },
    {},
    { type: 'send', project: PROJECT },
    { type: 'send', text: 'hi' },
    { type: 'send', project: PROJECT, text: 42 },
    { type: 'send', project: PROJECT, text: 'x'.repeat(1_000_001) },
    { type: 'openTerminal' },
    { type: 'stop', ci: 7 },
    { type: 'approve', ci: 'reviewer', ids: 'm-1' },
    { type: 'chooseDefaultCi', project: PROJECT },
    { type: 'selectProject', project: null },
  ];
  for (const message of invalid) {
    assert.equal(WebviewToHost.safeParse(message).success, false, JSON.stringify(message).slice(0, 80));
  }
});

test('renderMarkdown escapes HTML from agent output', () => {
  const html = renderMarkdown('before <img src=x onerror=alert(1)> and <script>alert("xss")</script> after');
  assert.doesNotMatch(html, /<img/i);
  assert.doesNotMatch(html, /<script/i);
  assert.match(html, /&lt;img src=x onerror=alert\(1\)&gt;/);
  assert.match(html, /&lt;script&gt;alert\(&quot;xss&quot;\)&lt;\/script&gt;/);
});

test('renderMarkdown escapes HTML blocks, inline tags and attributes', () => {
  const html = renderMarkdown('<div onclick="alert(1)">\n\n<iframe src="https://evil.example"></iframe>\n\n</div>\n\n`<b>` and <a href="javascript:alert(2)">x</a>');
  assert.doesNotMatch(html, /<(div|iframe|b)[\s>]/i);
  assert.doesNotMatch(html, /<a href="javascript/i);
  assert.doesNotMatch(html, /onclick="/i);
  assert.match(html, /<code>&lt;b&gt;<\/code>/);
});

test('renderMarkdown keeps http, https and mailto links and drops the others', () => {
  const html = renderMarkdown(
    '[web](https://example.com/a?b=1) [plain](http://example.com) [mail](mailto:a@example.com) ' +
      '[js](javascript:alert(1)) [JS](JAVASCRIPT:alert(1)) [data](data:text/html;base64,PHNjcmlwdD4=) ' +
      '[vb](vbscript:msgbox) [file](file:///etc/passwd) [rel](./local) <javascript:alert(3)>',
  );
  const hrefs = [...html.matchAll(/href="([^"]*)"/g)].map((match) => match[1]);
  assert.deepEqual(hrefs, ['https://example.com/a?b=1', 'http://example.com', 'mailto:a@example.com']);
  assert.doesNotMatch(html, /href="(javascript|data|vbscript|file)/i);
  assert.match(html, /title="https:\/\/example.com\/a\?b=1"/, 'a link shows where it goes');
});

test('renderMarkdown linkifies bare URLs, keeps line breaks, and renders no images', () => {
  const html = renderMarkdown('see https://example.com\nnext line\n\n![pixel](https://tracker.example/p.gif)');
  assert.match(html, /<a href="https:\/\/example.com"/);
  assert.match(html, /<br>/);
  assert.doesNotMatch(html, /<img/);
});

test('renderMarkdown renders fenced code with its text escaped', () => {
  const html = renderMarkdown('```html\n<script>alert(1)</script>\n```');
  assert.match(html, /<pre><code class="language-html">&lt;script&gt;alert\(1\)&lt;\/script&gt;\n<\/code><\/pre>/);
});

test('renderMarkdown aligns table columns with classes, not style attributes (the CSP blocks those)', () => {
  const html = renderMarkdown('| a | b | c |\n|:--|:-:|--:|\n| 1 | 2 | 3 |');
  assert.doesNotMatch(html, /style=/);
  assert.match(html, /<th class="align-left">a<\/th>/);
  assert.match(html, /<td class="align-center">2<\/td>/);
  assert.match(html, /<td class="align-right">3<\/td>/);
});

test('stripAnsi removes terminal escape sequences and keeps the text', () => {
  assert.equal(stripAnsi('\u001b[1;31mred\u001b[0m \u001b]0;title\u0007plain \u001b]8;;https://x\u001b\\link\u001b]8;;\u001b\\'), 'red plain link');
});

test('slash commands are suggested while the command word is typed', () => {
  assert.equal(matchSlashCommands('/').length, SLASH_COMMANDS.length);
  for (const name of ['/spawn', '/status', '/jobs', '/kill', '/send', '/attach', '/export', '/help']) {
    assert.ok(SLASH_COMMANDS.some((command) => command.name === name), name);
  }
  assert.deepEqual(new Set(matchSlashCommands('/s').map((command) => command.name)), new Set(['/spawn', '/status', '/send']));
  assert.ok(matchSlashCommands('/sp').every((command) => command.args.startsWith('<name>')));
  assert.deepEqual(matchSlashCommands('/ST').map((command) => command.name), ['/status']);
  assert.deepEqual(matchSlashCommands('/status '), []);
  assert.deepEqual(matchSlashCommands('hello /s'), []);
  assert.deepEqual(matchSlashCommands('/zzz'), []);
  const spawn = SLASH_COMMANDS.find((command) => command.name === '/spawn');
  assert.ok(spawn);
  assert.equal(completeSlashCommand(spawn), '/spawn ');
});

test('the sent-message history walks back and forth and gives the draft back', () => {
  const history = new InputHistory(['one', 'two']);
  assert.equal(history.walking, false);
  assert.equal(history.previous('draft'), 'two');
  assert.equal(history.previous('two'), 'one');
  assert.equal(history.previous('one'), undefined);
  assert.equal(history.next(), 'two');
  assert.equal(history.next(), 'draft');
  assert.equal(history.walking, false);
  assert.equal(history.next(), undefined);
  history.push('three');
  history.push('three');
  assert.deepEqual(history.entries, ['one', 'two', 'three']);
  const bounded = new InputHistory([], 2);
  for (const text of ['a', 'b', 'c']) bounded.push(text);
  assert.deepEqual(bounded.entries, ['b', 'c']);
});

test('CI states map to the dot colors', () => {
  assert.equal(stateTone('running'), 'ok');
  assert.equal(stateTone('starting'), 'busy');
  assert.equal(stateTone('backoff'), 'busy');
  assert.equal(stateTone('exited'), 'idle');
  assert.equal(stateTone('stopped'), 'idle');
  assert.equal(stateTone('failed'), 'error');
  assert.equal(stateTone('something new'), 'idle');
});
