// A scripted conversation, as the extension host would send it: HostToWebview messages.

const APP = '/home/dev/code/app';
const WEB = '/home/dev/code/web';
const minute = 60_000;

export function scenario(now = Date.now()) {
  const at = (minutesAgo) => now - minutesAgo * minute;
  const projects = [
    { path: APP, name: 'app', here: true, windows: 1 },
    { path: WEB, name: 'web', here: false, windows: 1 },
  ];
  const cis = [
    { name: 'project-app-ai', kind: 'model', state: 'running', detail: 'ollama · qwen2.5-coder:7b', unread: 0, held: 0, isDefault: true, hasTerminal: true },
    { name: 'reviewer', kind: 'process', state: 'running', detail: 'claude', unread: 2, held: 1, isDefault: false, hasTerminal: true },
    { name: 'tests', kind: 'process', state: 'failed', detail: 'npm test -- --watch', unread: 0, held: 0, isDefault: false, hasTerminal: true },
  ];
  const entries = [
    { id: 'e1', t: at(42), role: 'user', text: '/status', format: 'plain' },
    {
      id: 'e2',
      t: at(42),
      role: 'system',
      format: 'terminal',
      text: [
        'hub  pid 41234  v0.1.0  up 2h13m  clients 2  rss 48 MB',
        '',
        'NAME            KIND     STATE    PID    CPU   MEM     LAST OUTPUT',
        'project-app-ai  model    running  -      -     -       12s ago',
        'reviewer        process  running  41310  0.4%  212 MB  3s ago',
        'tests           process  failed   -      -     -       41m ago (exit 1)',
      ].join('\n'),
    },
    { id: 'e3', t: at(30), role: 'user', ci: 'project-app-ai', text: 'Why does `parseConfig` throw on an empty file?', format: 'markdown' },
    {
      id: 'e4',
      t: at(30),
      role: 'ci',
      ci: 'project-app-ai',
      format: 'markdown',
      text: [
        '`parseConfig` calls `JSON.parse` on the file\'s text, and `JSON.parse("")` throws *Unexpected end of JSON input*. Two fixes:',
        '',
        '1. Treat an empty file as `{}`.',
        '2. Report the path in the error, so it says **which** file is broken.',
        '',
        '```ts',
        'export function parseConfig(path: string, text: string): Config {',
        "  if (text.trim() === '') return {};",
        '  try {',
        '    return ConfigSchema.parse(JSON.parse(text));',
        '  } catch (error) {',
        '    throw new Error(`${path}: ${String(error)}`);',
        '  }',
        '}',
        '```',
        '',
        'See the [zod docs](https://zod.dev) for `safeParse`.',
      ].join('\n'),
    },
    { id: 'e5', t: at(25), role: 'bus', from: 'reviewer', to: 'project-app-ai', format: 'plain', text: 'Can you check src/config.ts line 42? The empty-file branch returns undefined, not {}.\nThe test in config.test.ts expects an object.' },
    { id: 'e6', t: at(24), role: 'bus', from: 'tests', to: 'reviewer', ci: 'reviewer', format: 'plain', text: 'rerun the failing suite after the fix lands', held: ['m-17'] },
    { id: 'e7', t: at(20), role: 'user', ci: 'reviewer', text: '@reviewer please review the diff in src/auth', format: 'plain' },
    {
      id: 'e8',
      t: at(19),
      role: 'ci',
      ci: 'reviewer',
      format: 'terminal',
      text: '\u001b[1m● Reading\u001b[0m src/auth/session.ts (212 lines)\n● Reading src/auth/token.ts (88 lines)\n\nsession.ts:57  refresh() retries forever when the token endpoint returns 401.\ntoken.ts:12    the expiry is compared in seconds against Date.now() (ms).\n\n2 issues. Want me to fix them?',
    },
    { id: 'e9', t: at(15), role: 'error', format: 'markdown', text: 'No CI named **deploy** in this project. Spawn it first: `/spawn deploy -- ./deploy.sh`' },
    {
      id: 'e10',
      t: at(12),
      role: 'ci',
      ci: 'project-app-ai',
      format: 'markdown',
      partial: true,
      text: 'The refactor goes in three steps:\n\n- move the schema to `config/schema.ts`\n- make `parseConfig` pure',
    },
    {
      id: 'e11',
      t: at(8),
      role: 'ci',
      ci: 'reviewer',
      format: 'markdown',
      text: 'Output from a tool: <img src=x onerror=alert(1)> and <script>alert("xss")</script>, a [link](javascript:alert(1)) and <a href="javascript:alert(2)">another</a>. Plain https://example.com stays a link.',
    },
    { id: 'e12', t: at(8), role: 'ci', ci: 'tests', format: 'terminal', text: '<script>alert(3)</script> <img src=x onerror=alert(4)>\nFAIL  src/config.test.ts › parseConfig › empty file' },
    {
      id: 'e13',
      t: at(5),
      role: 'system',
      format: 'markdown',
      text: '| CI | state | unread |\n|---|:---:|--:|\n| project-app-ai | running | 0 |\n| reviewer | running | 2 |\n| tests | failed | 0 |',
    },
    { id: 'e14', t: at(1), role: 'user', ci: 'project-app-ai', text: 'Write the test for the empty file case', format: 'plain' },
    { id: 'e15', t: at(0), role: 'ci', ci: 'project-app-ai', format: 'markdown', streaming: true, text: 'Here is a test for' },
  ];
  const stream = [
    'Here is a test for the empty-file case:\n\n```ts\ntest("an empty file is {}", () => {',
    'Here is a test for the empty-file case:\n\n```ts\ntest("an empty file is {}", () => {\n  assert.deepEqual(parseConfig("a.json", ""), {});\n});\n```\n\nIt fails',
    'Here is a test for the empty-file case:\n\n```ts\ntest("an empty file is {}", () => {\n  assert.deepEqual(parseConfig("a.json", ""), {});\n});\n```\n\nIt fails before the fix and passes after it.',
  ];
  return {
    APP,
    WEB,
    init: { type: 'init', projects, selected: APP, cis, entries, hub: 'connected' },
    streamUpdates: stream.map((text) => ({ type: 'entry', project: APP, entry: { ...entries[entries.length - 1], text } })),
    invalid: [
      { type: 'entry', project: APP, entry: { id: 'bad', role: 'ci' } },
      { type: 'nonsense' },
      'a string',
    ],
    hubDown: { type: 'hub', state: 'down', message: 'it exited 3 times in a minute; run `cihub hub --foreground` to see why' },
    hubRestarting: { type: 'hub', state: 'restarting' },
    hubConnected: { type: 'hub', state: 'connected' },
    selectWeb: [
      { type: 'projects', projects, selected: WEB },
      { type: 'cis', project: WEB, cis: [] },
      { type: 'history', project: WEB, entries: [] },
      {
        type: 'chooseDefaultCi',
        project: WEB,
        options: [
          { id: 'ollama', label: 'Ollama · qwen2.5-coder:7b', detail: 'A local model at http://127.0.0.1:11434 (found running)' },
          { id: 'claude', label: 'Claude Code', detail: 'Runs `claude` in a terminal, in this folder' },
          { id: 'shell', label: 'A shell', detail: 'bash, for running commands by hand' },
        ],
      },
    ],
  };
}
