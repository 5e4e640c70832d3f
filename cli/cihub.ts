/**
 * `cihub`: the hub from any shell, including from inside an agent's own terminal.
 * Exit code 0 on success; otherwise a one-line error on stderr and 1 (2 for a usage error).
 */
import { spawn as spawnChild } from 'node:child_process';
import * as fs from 'node:fs';
import type { Socket } from 'node:net';
import * as path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { z } from 'zod';
import {
  Ack,
  Approve,
  Ask,
  ProviderKind,
  DeliveryPolicy,
  Export,
  Forward,
  GetConfig,
  Peek,
  Receive,
  Refuse,
  Send,
  SetConfig,
  SetPolicy,
  Unforward,
  HubConfig,
  type Message,
  ExportFormat,
  KEY_ENV,
  Kill,
  List,
  Remove,
  Restart,
  RestartPolicy,
  Spawn,
  Status,
  StopHub,
  describeZodError,
  nameProblem,
} from '../server/protocol';
import { hubPaths } from '../server/paths';
import { HubClient, connectSocket, hubCommand, hubSocket, startHub } from '../client/hubClient';
import { processEnv } from '../server/env';
import { errorMessage } from '../server/errors';
import { attach, DETACH_KEY_NAME } from './attach';
import { defaultWrapName, wrap } from './wrap';
import { formatList, formatStatus, tildify } from '../client/format';

class UsageError extends Error {}

const USAGE = `usage: cihub <command> [options]

  hub [--foreground]                 start the hub (daemonized unless --foreground)
  stop                               stop the hub and its CIs (they start again with the next hub)
  status [--json]                    the hub and every CI: state, pid, CPU, memory, output, clients
  list [--json]                      CIs: name, kind, state, pid, project, uptime, bytes captured
  spawn <name> [--cwd DIR] [--project DIR [--default]] [--restart never|on-failure|always]
               [--policy inbox|inject|hold] -- <command…>
                                     --default: the project's default CI (what its chat talks to)
  spawn <name> --provider ollama|openai|anthropic --model M [--base-url URL] [--project DIR]
               [--temperature T] [--max-tokens N] [--system TEXT] [--context-tokens N] [--timeout S]
                                     a model CI (keys: OPENAI_API_KEY, ANTHROPIC_API_KEY)
  kill <name>                        stop a CI (SIGHUP, SIGTERM, SIGKILL); it stays listed
  restart <name>                     start a CI again, in a new capture session
  rm <name>                          stop and forget a CI (its captures stay on disk)
  attach <name> [--read-only]        show its screen, then live; typing goes in; ${DETACH_KEY_NAME} detaches
  wrap [--name N] [--project DIR] -- <command…>
                                     run a command here, transparently, as a CI of the hub
  export <name> [--format cast|jsonl|md] [--session ID] [-o FILE]

  send <to> <text…> [--wait [--timeout S]] [--from F] [--priority high] [--reply-to ID] [--type T] [--ttl S]
                                     to: a CI or mailbox, "*" (every CI) or @project; text may be piped in;
                                     --wait prints the reply (a model CI's answer)
  recv [<name>] [--wait [--timeout S]] [--max N] [--peek] [--json]
                                     take a mailbox's messages (inside a CI, its own); exit 1 if --wait timed out
  policy <name> inbox|inject|hold    how messages reach a process CI
  approve|refuse <name> [<id>…] [--reason R]
                                     release or drop messages held for a CI (all, without ids)
  forward <name> --to <mailbox>      route a CI's messages to another mailbox (a human's); unforward <name>
  config [<key> <value>]             hub settings: ports.enabled, ports.base, contextPrefix, inject…

Environment: CIHUB_HOME puts the hub's sockets and state under one directory.`;

function fail(message: string): never {
  throw new Error(message);
}

/** Every connection this command opened, closed when it ends (success or error) so the process can exit. */
const openClients = new Set<HubClient>();

function open(socket: Socket): HubClient {
  const client = HubClient.fromSocket(socket);
  openClients.add(client);
  return client;
}

/** Connects to the running hub. A hub that crashed (stale lock) is started again; none running is an error. */
async function connect(): Promise<HubClient> {
  const socket = hubSocket();
  const s = await connectSocket(socket);
  if (s) return open(s);
  if (crashedHubLeftLock()) {
    process.stderr.write('cihub: the hub stopped unexpectedly; starting it again\n');
    await startHub({ serverScript: serverScript() });
    const again = await connectSocket(socket);
    if (again) return open(again);
  }
  fail(`no hub is running (nothing answers on ${socket}); start one with \`cihub hub\``);
}

/** Connects, starting the hub first if none runs. */
async function connectOrStart(): Promise<HubClient> {
  const socket = hubSocket();
  const s = await connectSocket(socket);
  if (s) return open(s);
  await startHub({ serverScript: serverScript() });
  const again = await connectSocket(socket);
  if (!again) fail(`the hub started but nothing answers on ${socket}`);
  return open(again);
}

function crashedHubLeftLock(): boolean {
  return fs.existsSync(hubPaths().lock);
}

function serverScript(): string {
  return path.join(__dirname, 'server.js');
}

function checkName(name: string | undefined, verb: string): string {
  if (name === undefined) throw new UsageError(`${verb} needs a CI name: cihub ${verb} <name>`);
  const problem = nameProblem(name);
  if (problem) fail(problem);
  return name;
}

function absolute(dir: string | undefined): string | undefined {
  return dir === undefined ? undefined : path.resolve(dir);
}

function parse<const O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(errorMessage(error));
  }
}

/** Splits `a b -- c d` into before and after `--`. */
function splitCommand(args: string[]): { before: string[]; command: string[] } {
  const at = args.indexOf('--');
  return at < 0 ? { before: args, command: [] } : { before: args.slice(0, at), command: args.slice(at + 1) };
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

async function run(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  switch (verb) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return verb === undefined ? 2 : 0;

    case 'hub': {
      const { values } = parse(rest, { foreground: { type: 'boolean' } });
      const existing = await connectSocket(hubSocket());
      if (existing) {
        const client = open(existing);
        const { hub } = await client.call(Status, {});
        client.close();
        process.stdout.write(`a hub is already running (pid ${hub.pid}, socket ${hub.socket})\n`);
        return 0;
      }
      if (values.foreground) {
        const { file, args, env } = hubCommand(serverScript());
        const child = spawnChild(file, args, { stdio: 'inherit', env });
        for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => child.kill(sig));
        return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
      }
      await startHub({ serverScript: serverScript() });
      const client = await connect();
      const { hub } = await client.call(Status, {});
      client.close();
      process.stdout.write(`hub started (pid ${hub.pid}); socket ${hub.socket}; log ${hubPaths().log}\n`);
      return 0;
    }

    case 'stop': {
      const socket = hubSocket();
      const s = await connectSocket(socket);
      if (!s) {
        process.stdout.write('no hub is running\n');
        return 0;
      }
      const client = open(s);
      const { hub } = await client.call(Status, {});
      await client.call(StopHub, {});
      client.close();
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        if (!processAlive(hub.pid)) {
          process.stdout.write(`hub stopped (pid ${hub.pid})\n`);
          return 0;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      fail(`the hub (pid ${hub.pid}) is still running 15 s after being asked to stop; kill it with: kill ${hub.pid}`);
    }

    case 'status': {
      const { values } = parse(rest, { json: { type: 'boolean' } });
      const client = await connect();
      const status = await client.call(Status, {});
      client.close();
      if (values.json) {
        printJson(status);
        return 0;
      }
      process.stdout.write(`${formatStatus(status)}\n`);
      return 0;
    }

    case 'list':
    case 'ls': {
      const { values } = parse(rest, { json: { type: 'boolean' } });
      const client = await connect();
      const { cis } = await client.call(List, {});
      client.close();
      if (values.json) {
        printJson(cis);
        return 0;
      }
      process.stdout.write(`${formatList(cis)}\n`);
      return 0;
    }

    case 'spawn': {
      const { before, command } = splitCommand(rest);
      const { values, positionals } = parse(before, {
        cwd: { type: 'string' },
        project: { type: 'string' },
        restart: { type: 'string' },
        policy: { type: 'string' },
        default: { type: 'boolean' },
        json: { type: 'boolean' },
        provider: { type: 'string' },
        model: { type: 'string' },
        'base-url': { type: 'string' },
        temperature: { type: 'string' },
        'max-tokens': { type: 'string' },
        system: { type: 'string' },
        'context-tokens': { type: 'string' },
        timeout: { type: 'string' },
      });
      const name = checkName(positionals[0], 'spawn');
      if (positionals.length > 1) throw new UsageError(`put the command after --: cihub spawn ${name} -- ${positionals.slice(1).join(' ')}`);
      if (values.provider !== undefined || values.model !== undefined) {
        if (command.length) throw new UsageError('give either a command (after --) or --provider/--model, not both');
        return spawnModel(name, values, absolute(str(values.project)), values.default === true);
      }
      if (command.length === 0) throw new UsageError(`give the command to run after --: cihub spawn ${name} -- bash  (or --provider P --model M)`);
      const restart = RestartPolicy.safeParse(values.restart ?? 'never');
      if (!restart.success) fail(`--restart must be never, on-failure or always (got "${str(values.restart)}")`);
      const policy = DeliveryPolicy.safeParse(values.policy ?? 'inbox');
      if (!policy.success) fail(`--policy must be inbox, inject or hold (got "${str(values.policy)}")`);
      const project = absolute(str(values.project));
      const cwd = absolute(str(values.cwd)) ?? project ?? process.cwd();
      const client = await connect();
      const ci = await client.call(Spawn, {
        kind: 'process',
        name,
        command,
        cwd,
        project,
        env: processEnv(),
        restart: restart.data,
        policy: policy.data,
        defaultCi: values.default,
        // Not a terminal: the hub's default size.
        ...(process.stdout.isTTY ? { cols: process.stdout.columns, rows: process.stdout.rows } : {}),
      });
      client.close();
      if (values.json) printJson(ci);
      if (ci.state === 'failed') fail(`${name} failed: ${ci.reason ?? 'unknown reason'}`);
      if (!values.json) process.stdout.write(`spawned ${name} (pid ${ci.pid}) in ${tildify(ci.cwd)}: ${command.join(' ')}\n`);
      return 0;
    }

    case 'kill':
    case 'restart':
    case 'rm': {
      const { values, positionals } = parse(rest, { json: { type: 'boolean' } });
      const name = checkName(positionals[0], verb);
      const client = await connect();
      if (verb === 'rm') {
        await client.call(Remove, { name });
        client.close();
        process.stdout.write(`removed ${name}\n`);
        return 0;
      }
      const ci = await client.call(verb === 'kill' ? Kill : Restart, { name });
      client.close();
      if (values.json) printJson(ci);
      else if (verb === 'kill') process.stdout.write(`stopped ${name}${ci.reason ? ` (${ci.reason})` : ''}\n`);
      else if (ci.state === 'failed') fail(`${name} failed: ${ci.reason ?? 'unknown reason'}`);
      else process.stdout.write(`restarted ${name} (pid ${ci.pid})\n`);
      return 0;
    }

    case 'attach': {
      const { values, positionals } = parse(rest, { 'read-only': { type: 'boolean' } });
      const name = checkName(positionals[0], 'attach');
      const client = await connect();
      const code = await attach(client, name, values['read-only'] ?? false);
      client.close();
      return code;
    }

    case 'wrap': {
      const { before, command } = splitCommand(rest);
      const { values, positionals } = parse(before, { name: { type: 'string' }, project: { type: 'string' } });
      if (positionals.length) throw new UsageError(`put the command after --: cihub wrap -- ${positionals.join(' ')}`);
      if (command.length === 0) throw new UsageError('give the command to run after --: cihub wrap -- bash');
      const name = values.name === undefined ? defaultWrapName(command) : checkName(str(values.name), 'wrap');
      const first = await connectOrStart();
      const { cis } = await first.call(List, {});
      first.close();
      const clash = cis.find((ci) => ci.name === name);
      if (clash && (clash.host !== 'client' || clash.state === 'running')) {
        fail(`a CI named "${name}" exists already${clash.state === 'running' ? ' and is running' : ''}; pick another with --name`);
      }
      return wrap({
        name,
        command,
        project: absolute(str(values.project)),
        connect: async () => {
          const s = await connectSocket(hubSocket());
          if (s) return HubClient.fromSocket(s);
          await startHub({ serverScript: serverScript() }).catch(() => undefined);
          const again = await connectSocket(hubSocket());
          return again ? HubClient.fromSocket(again) : undefined;
        },
      });
    }

    case 'export': {
      const { values, positionals } = parse(rest, {
        format: { type: 'string' },
        session: { type: 'string' },
        output: { type: 'string', short: 'o' },
      });
      const name = checkName(positionals[0], 'export');
      const format = ExportFormat.safeParse(values.format ?? 'cast');
      if (!format.success) fail(`--format must be cast, jsonl or md (got "${str(values.format)}")`);
      const client = await connect();
      const result = await client.call(Export, { name, format: format.data, session: str(values.session) });
      client.close();
      const out = str(values.output);
      if (out) {
        fs.copyFileSync(result.path, out);
        process.stderr.write(`wrote ${out} (session ${result.session.id}, ${result.format})\n`);
      } else {
        await new Promise<void>((resolve, reject) => {
          const stream = fs.createReadStream(result.path);
          stream.on('error', reject);
          stream.on('end', () => resolve());
          stream.pipe(process.stdout, { end: false });
        });
      }
      return 0;
    }

    case 'send': {
      const { values, positionals } = parse(rest, {
        wait: { type: 'boolean' },
        timeout: { type: 'string' },
        from: { type: 'string' },
        type: { type: 'string' },
        priority: { type: 'string' },
        'reply-to': { type: 'string' },
        ttl: { type: 'string' },
        json: { type: 'boolean' },
      });
      const [to, ...words] = positionals;
      if (!to) throw new UsageError('send needs a recipient and a text: cihub send <to> <text…>  (to: a CI, "*" or @project)');
      const content = words.length ? words.join(' ') : process.stdin.isTTY ? '' : fs.readFileSync(0, 'utf8');
      if (!content) throw new UsageError(`give the text to send: cihub send ${to} "…" (or pipe it in)`);
      const priorityValue = values.priority ?? 'normal';
      if (priorityValue !== 'normal' && priorityValue !== 'high') fail(`--priority must be normal or high (got "${priorityValue}")`);
      const priority: 'normal' | 'high' = priorityValue;
      const ttl = values.ttl === undefined ? undefined : Number(values.ttl);
      if (ttl !== undefined && !(ttl > 0)) fail(`--ttl must be a number of seconds (got "${str(values.ttl)}")`);
      const message = {
        to,
        content,
        from: str(values.from) ?? process.env.CIHUB_CI,
        type: str(values.type) ?? (values['reply-to'] ? 'response' : undefined),
        in_reply_to: str(values['reply-to']),
        priority,
        ttl,
      };
      const client = await connect();
      if (values.wait) {
        const seconds = values.timeout === undefined ? 300 : Number(values.timeout);
        if (!(seconds > 0)) fail(`--timeout must be a number of seconds (got "${str(values.timeout)}")`);
        const { reply } = await client.call(Ask, { message, timeoutMs: Math.round(seconds * 1000) });
        if (values.json) printJson(reply);
        else if (reply.type !== 'error') process.stdout.write(`${reply.content}\n`);
        if (reply.type === 'error') fail(`${reply.from}: ${reply.content}`);
        return 0;
      }
      const result = await client.call(Send, { message });
      if (values.json) printJson(result);
      else process.stdout.write(`sent ${result.id} to ${result.recipients.join(', ') || 'nobody (no other CI)'}\n`);
      return 0;
    }

    case 'recv': {
      const { values, positionals } = parse(rest, {
        wait: { type: 'boolean' },
        timeout: { type: 'string' },
        max: { type: 'string' },
        peek: { type: 'boolean' },
        json: { type: 'boolean' },
      });
      const name = positionals[0] ?? process.env.CIHUB_CI;
      if (!name) throw new UsageError('whose messages? cihub recv <name> (inside a CI, CIHUB_CI says who)');
      const client = await connect();
      if (values.peek) {
        const { messages } = await client.call(Peek, { name });
        if (values.json) printJson(messages);
        else for (const m of messages) process.stdout.write(`${formatMessage(m)}  (${m.state})\n`);
        return 0;
      }
      const waitMs = values.wait ? (values.timeout ? Number(values.timeout) * 1000 : 3_600_000) : 0;
      if (!(waitMs >= 0)) fail(`--timeout must be a number of seconds (got "${str(values.timeout)}")`);
      const max = values.max ? Number(values.max) : 100;
      const { messages } = await client.call(Receive, { name, max, waitMs });
      if (values.json) printJson(messages);
      else for (const m of messages) process.stdout.write(`${formatMessage(m)}\n`);
      // Acknowledged only once printed: a recv killed before this point gets them again next time.
      await client.call(Ack, { name, ids: messages.map((m) => m.id) });
      return values.wait && messages.length === 0 ? 1 : 0;
    }

    case 'policy': {
      const { values, positionals } = parse(rest, { json: { type: 'boolean' } });
      const name = checkName(positionals[0], 'policy');
      const policy = DeliveryPolicy.safeParse(positionals[1]);
      if (!policy.success) throw new UsageError(`give a policy: cihub policy ${name} inbox|inject|hold`);
      const client = await connect();
      const ci = await client.call(SetPolicy, { name, policy: policy.data });
      if (values.json) printJson(ci);
      else process.stdout.write(`${name}: messages are now ${policyWords(policy.data)}\n`);
      return 0;
    }

    case 'forward': {
      const { values, positionals } = parse(rest, { to: { type: 'string' } });
      const name = checkName(positionals[0], 'forward');
      const to = str(values.to);
      if (!to) throw new UsageError(`forward to whom? cihub forward ${name} --to <mailbox>`);
      checkName(to, 'forward --to');
      const client = await connect();
      await client.call(Forward, { name, to });
      process.stdout.write(`messages for ${name} now go to ${to} (read them with: cihub recv ${to})\n`);
      return 0;
    }

    case 'unforward': {
      const { positionals } = parse(rest, {});
      const name = checkName(positionals[0], 'unforward');
      const client = await connect();
      await client.call(Unforward, { name });
      process.stdout.write(`messages for ${name} go to ${name} again\n`);
      return 0;
    }

    case 'approve':
    case 'refuse': {
      const { values, positionals } = parse(rest, { reason: { type: 'string' } });
      const name = checkName(positionals[0], verb);
      const ids = positionals.length > 1 ? positionals.slice(1) : undefined;
      const client = await connect();
      if (verb === 'approve') {
        const { approved } = await client.call(Approve, { name, ids });
        process.stdout.write(`approved ${approved} held message(s) for ${name}\n`);
      } else {
        const { refused } = await client.call(Refuse, { name, ids, reason: str(values.reason) });
        process.stdout.write(`refused ${refused} held message(s) for ${name}\n`);
      }
      return 0;
    }

    case 'config': {
      const { values, positionals } = parse(rest, { json: { type: 'boolean' } });
      const client = await connect();
      if (positionals.length === 0) {
        const config = await client.call(GetConfig, {});
        if (values.json) printJson(config);
        else process.stdout.write(`${describeConfig(config)}\n`);
        return 0;
      }
      const [key, value] = positionals;
      if (value === undefined) throw new UsageError(`give a value: cihub config ${key} <value>`);
      const config = await client.call(SetConfig, configChange(key, value));
      process.stdout.write(`${describeConfig(config)}\n`);
      return 0;
    }

    default:
      throw new UsageError(`unknown command "${verb}"`);
  }
}

/** `cihub spawn <name> --provider P --model M …`: a model CI. The API key comes from the environment. */
async function spawnModel(name: string, values: Record<string, string | boolean | undefined>, project: string | undefined, defaultCi: boolean): Promise<number> {
  const provider = ProviderKind.safeParse(values.provider);
  if (!provider.success) fail(`--provider must be ollama, openai or anthropic (got "${str(values.provider) ?? ''}")`);
  const model = str(values.model);
  if (!model) throw new UsageError(`give the model: cihub spawn ${name} --provider ${provider.data} --model <model>`);
  const number = (option: string): number | undefined => {
    const raw = str(values[option]);
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n)) fail(`--${option} must be a number (got "${raw}")`);
    return n;
  };
  const timeout = number('timeout');
  const keyEnv = KEY_ENV[provider.data];
  const client = await connect();
  const ci = await client.call(Spawn, {
    kind: 'model',
    name,
    provider: provider.data,
    model,
    project,
    defaultCi,
    baseUrl: str(values['base-url']),
    temperature: number('temperature'),
    maxTokens: number('max-tokens'),
    systemPrompt: str(values.system),
    contextTokens: number('context-tokens'),
    timeoutMs: timeout === undefined ? undefined : Math.round(timeout * 1000),
    apiKey: keyEnv ? process.env[keyEnv] || undefined : undefined,
  });
  if (values.json) printJson(ci);
  else process.stdout.write(`spawned ${name}: ${provider.data} ${model} at ${ci.model?.baseUrl}; ask it with: cihub send ${name} --wait "…"  or  cihub attach ${name}\n`);
  return 0;
}

function formatMessage(m: Message): string {
  const when = new Date(m.timestamp).toISOString().slice(11, 19);
  const extra = [m.type !== 'request' ? m.type : '', m.priority === 'high' ? 'high' : '', m.in_reply_to ? `re ${m.in_reply_to}` : ''].filter(Boolean);
  return `${when} [from ${m.from}]${extra.length ? ` (${extra.join(', ')})` : ''} ${m.content}  #${m.id}`;
}

function policyWords(policy: DeliveryPolicy): string {
  if (policy === 'inject') return 'typed into its terminal when it is quiet';
  if (policy === 'hold') return 'held until you approve them (cihub approve)';
  return 'kept in its inbox (cihub recv)';
}

/** Every hub setting as a dotted key and its value: `ports.base`, `retention.captureMaxMB`, … */
function configEntries(c: HubConfig): [string, unknown][] {
  return Object.entries(c).flatMap(([key, value]): [string, unknown][] =>
    typeof value === 'object' && value !== null ? Object.entries(value).map(([sub, v]): [string, unknown] => [`${key}.${sub}`, v]) : [[key, value]],
  );
}

function describeConfig(c: HubConfig): string {
  return configEntries(c).map(([key, value]) => `${key.padEnd(29)}${String(value)}`).join('\n');
}

/** `cihub config <key> <value>` as a SetConfig change, checked by its schema; a bad key or value is a usage error. */
function configChange(key: string, value: string): z.output<typeof SetConfig.params> {
  const keys = configEntries(HubConfig.parse({})).map(([k]) => k);
  if (!keys.includes(key)) throw new UsageError(`unknown setting "${key}"; settings: ${keys.join(', ')}`);
  const typed = value === 'true' || value === 'false' ? value === 'true' : /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  const [head, sub] = key.split('.');
  const parsed = SetConfig.params.safeParse(sub ? { [head]: { [sub]: typed } } : { [head]: typed });
  if (!parsed.success) throw new UsageError(`${describeZodError(parsed.error)} (got ${JSON.stringify(value)})`);
  return parsed.data;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

run(process.argv.slice(2))
  .finally(() => {
    for (const client of openClients) client.close();
  })
  .then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`cihub: ${error.message}\n(run \`cihub help\` for usage)\n`);
      process.exitCode = 2;
      return;
    }
    const message = errorMessage(error);
    process.stderr.write(`cihub: ${message.split('\n')[0]}\n`);
    process.exitCode = 1;
  },
);
