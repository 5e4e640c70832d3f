/**
 * Hardening 1d: settings. Seeded and bounded (FUZZ_SEED=<n>).
 *
 *  - extension/settings.ts imports `vscode`, which only exists inside VS Code. The test loads it with a
 *    stand-in `vscode` module (a `workspace.getConfiguration` over a plain object; nothing is copied from
 *    the extension) and fuzzes the real `Settings` schema and `readSettings`: a bad value is reported and
 *    replaced by its default, a good one is kept, and nothing throws.
 *  - the hub-side equivalent, `hub/setConfig`: invalid changes are refused with a message and change
 *    nothing (GetConfig and config.json before/after); valid ones are applied, and persist across a restart.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Module from 'node:module';
import { GetConfig, HubErrorCode, SetConfig, type HubConfig } from '../../server/protocol';
import { HubRequestError } from '../../client/hubClient';
import { restartHub, withHub } from '../helpers';
import { randomJson, testRng, type Rng } from '../fixtures/hardening';
import type * as SettingsModule from '../../extension/settings';

/** What `c.get(key)` answers in the stand-in `vscode` module. */
let configValues: Record<string, unknown> = {};
/** Whether `get` wraps object values as VS Code does (see {@link asVscodeReturnsIt}). */
let vscodeProxies = false;

function isVscodeObject(v: unknown): v is Record<string, unknown> {
  // VS Code's `isObject` (src/vs/base/common/types.ts): not null, not an array, not a RegExp or Date.
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof RegExp) && !(v instanceof Date);
}

/**
 * A configuration value the way VS Code's `WorkspaceConfiguration.get` returns it: objects come wrapped
 * in a clone-on-write `Proxy` (src/vs/workbench/api/common/extHostConfiguration.ts, `cloneOnWriteProxy`),
 * nested objects too, arrays and primitives as they are. Reads go through; `toJSON` gives a copy.
 */
function asVscodeReturnsIt(value: unknown): unknown {
  if (!isVscodeObject(value)) return value;
  return new Proxy(value, {
    get: (target, property) => {
      if (typeof property === 'string' && property.toLowerCase() === 'tojson') return () => JSON.parse(JSON.stringify(target));
      const result: unknown = Reflect.get(target, property);
      return typeof property === 'string' ? asVscodeReturnsIt(result) : result;
    },
    set: () => {
      throw new Error('the stand-in configuration is read-only');
    },
  });
}

function loadSettingsWithoutVscode(): typeof SettingsModule {
  const loader = Module as unknown as { _load: (request: string, parent: unknown, isMain: boolean) => unknown };
  const original = loader._load;
  const get = (key: string) => (vscodeProxies ? asVscodeReturnsIt(configValues[key]) : configValues[key]);
  const vscode = { workspace: { getConfiguration: (section: string) => ({ get: (key: string) => (section === 'projectsChat' ? get(key) : undefined) }) } };
  loader._load = function (request: string, parent: unknown, isMain: boolean) {
    if (request === 'vscode') return vscode;
    return original.call(this, request, parent, isMain);
  };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../../extension/settings') as typeof SettingsModule;
  } finally {
    loader._load = original;
  }
}

interface Field {
  key: string;
  valid: (rng: Rng) => unknown;
  invalid: (rng: Rng) => unknown;
  default: unknown;
  /** Where readSettings puts it. */
  read: (s: SettingsModule.Settings) => unknown;
  /** What a valid input becomes. */
  normalize?: (v: unknown) => unknown;
}

const ws = [' ', '\t', '\n', ''];
const FIELDS: Field[] = [
  {
    key: 'defaultCi',
    valid: (rng) => rng.pick(ws) + rng.pick(['claude', 'bash', 'ollama:llama3.2', 'openai:gpt-4.1@http://127.0.0.1:1234/v1', '', 'aider --model sonnet', 'x'.repeat(5000)]) + rng.pick(ws),
    invalid: (rng) => rng.pick([5, true, null, [], ['claude'], { cmd: 'x' }]),
    default: '',
    read: (s) => s.defaultCi,
    normalize: (v) => String(v).trim(),
  },
  {
    key: 'defaultCiPolicy',
    valid: (rng) => rng.pick(['inbox', 'inject', 'hold']),
    invalid: (rng) => rng.pick(['Inbox', 'INJECT', '', 'drop', 1, null, ['hold']]),
    default: 'inbox',
    read: (s) => s.defaultCiPolicy,
  },
  {
    key: 'keepDefaultCis',
    valid: (rng) => rng.bool(),
    invalid: (rng) => rng.pick(['true', 'false', 0, 1, null, {}]),
    default: false,
    read: (s) => s.keepDefaultCis,
  },
  {
    key: 'ports.enabled',
    valid: (rng) => rng.bool(),
    invalid: (rng) => rng.pick(['yes', 1, null, []]),
    default: false,
    read: (s) => s.ports.enabled,
  },
  {
    key: 'ports.base',
    valid: (rng) => rng.pick([1024, 65000, 42100, rng.int(1024, 65000)]),
    invalid: (rng) => rng.pick([1023, 65001, 0, -1, 42100.5, '42100', null, 1e12, true]),
    default: 42100,
    read: (s) => s.ports.base,
  },
  {
    key: 'contextPrefix',
    valid: (rng) => rng.pick(['cross-project', 'always', 'never']),
    invalid: (rng) => rng.pick(['sometimes', 'ALWAYS', '', 0, null]),
    default: 'cross-project',
    read: (s) => s.contextPrefix,
  },
  {
    key: 'inject.quietMs',
    valid: (rng) => rng.pick([0, 60_000, rng.int(0, 60_000)]),
    invalid: (rng) => rng.pick([-1, 60_001, 1.5, '1500', null, [1500]]),
    default: 1500,
    read: (s) => s.inject.quietMs,
  },
  {
    key: 'inject.humanIdleMs',
    valid: (rng) => rng.pick([0, 600_000, rng.int(0, 600_000)]),
    invalid: (rng) => rng.pick([-1, 600_001, 0.1, 'x', {}, false]),
    default: 5000,
    read: (s) => s.inject.humanIdleMs,
  },
];

test('fuzz extension settings (Settings schema and readSettings, with a stand-in vscode): bad values reported and defaulted, good ones kept', (t) => {
  const rng = testRng('extension settings', (l) => t.diagnostic(l));
  const { Settings, readSettings, hubConfigOf } = loadSettingsWithoutVscode();
  const cases = Number(process.env.FUZZ_SETTINGS_CASES ?? 3000);
  let warned = 0;
  for (let i = 0; i < cases; i++) {
    const values: Record<string, unknown> = {};
    const expected = new Map<string, unknown>();
    let anyInvalid = false;
    for (const f of FIELDS) {
      const roll = rng.next();
      if (roll < 0.25) {
        expected.set(f.key, f.default); // unset: the default, silently
      } else if (roll < 0.5) {
        // (Nesting is capped: settings.json holds what a person writes.)
        values[f.key] = rng.bool(0.7) ? f.invalid(rng) : randomJson(rng, 0, 200);
        // A random value may happen to be valid: the schema itself decides below.
        expected.set(f.key, undefined);
      } else {
        const v = f.valid(rng);
        values[f.key] = v;
        expected.set(f.key, f.normalize ? f.normalize(v) : v);
      }
    }
    configValues = values;
    const warnings: string[] = [];
    let settings: SettingsModule.Settings;
    try {
      settings = readSettings((m) => warnings.push(m));
    } catch (error) {
      assert.fail(`case ${i}: readSettings threw ${String(error)} for ${JSON.stringify(values).slice(0, 300)}`);
    }
    // The result is always a valid Settings, and maps to a valid hub configuration.
    assert.ok(Settings.safeParse(settings).success, `case ${i}: readSettings returned invalid settings`);
    const hub = hubConfigOf(settings);
    assert.ok(SetConfig.params.safeParse(hub).success, `case ${i}: hubConfigOf made a change the hub refuses: ${JSON.stringify(hub)}`);
    for (const f of FIELDS) {
      let want = expected.get(f.key);
      if (want === undefined) {
        // Randomly generated: valid per the schema → kept (normalized); else the default and a warning.
        const alone = Settings.safeParse(withOnly(f.key, values[f.key]));
        if (alone.success) want = f.read(alone.data);
        else {
          want = f.default;
          anyInvalid = true;
        }
      }
      assert.deepEqual(f.read(settings), want, `case ${i}: ${f.key} = ${JSON.stringify(values[f.key])?.slice(0, 80)} read as ${JSON.stringify(f.read(settings))}`);
    }
    if (anyInvalid) {
      warned++;
      assert.equal(warnings.length, 1, `case ${i}: an invalid setting was not reported exactly once`);
      assert.match(warnings[0], /Projects Chat settings: .+; using the defaults for those/);
    } else {
      assert.deepEqual(warnings, [], `case ${i}: warned about valid settings`);
    }
    // The schema itself never throws, whatever it is given.
    assert.doesNotThrow(() => Settings.safeParse(randomJson(rng)));
  }
  t.diagnostic(`${cases} cases, ${warned} with a reported invalid value`);
});

test('a setting with an object value, as VS Code hands it over (a clone-on-write Proxy), is reported and defaulted; readSettings does not throw', () => {
  const { readSettings } = loadSettingsWithoutVscode();
  vscodeProxies = true;
  try {
    const failures: string[] = [];
    for (const f of FIELDS) {
      for (const value of [{ command: 'claude' }, { nested: { deeper: 1 } }, {}]) {
        configValues = { [f.key]: value };
        const warnings: string[] = [];
        try {
          const settings = readSettings((m) => warnings.push(m));
          if (JSON.stringify(f.read(settings)) !== JSON.stringify(f.default)) failures.push(`${f.key}=${JSON.stringify(value)}: read as ${JSON.stringify(f.read(settings))}`);
          if (warnings.length !== 1) failures.push(`${f.key}=${JSON.stringify(value)}: ${warnings.length} warnings`);
        } catch (error) {
          failures.push(`${f.key}=${JSON.stringify(value)}: readSettings threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
        }
      }
    }
    assert.deepEqual(failures, [], 'settings with object values (extension activation calls readSettings first)');
  } finally {
    vscodeProxies = false;
    configValues = {};
  }
});

/** A raw settings object with one dotted key set (as readSettings builds it). */
function withOnly(key: string, value: unknown): Record<string, unknown> {
  const [a, b] = key.split('.');
  if (b === undefined) return { [a]: value };
  return { [a]: { [b]: value } };
}

/** The configuration a valid SetConfig change leads to. */
function applied(config: HubConfig, change: Record<string, unknown>): HubConfig {
  const parsed = SetConfig.params.parse(change);
  const next: HubConfig = structuredClone(config);
  if (parsed.ports?.enabled !== undefined) next.ports.enabled = parsed.ports.enabled;
  if (parsed.ports?.base !== undefined) next.ports.base = parsed.ports.base;
  if (parsed.contextPrefix !== undefined) next.contextPrefix = parsed.contextPrefix;
  if (parsed.injectQuietMs !== undefined) next.injectQuietMs = parsed.injectQuietMs;
  if (parsed.injectHumanIdleMs !== undefined) next.injectHumanIdleMs = parsed.injectHumanIdleMs;
  if (parsed.defaultCiGraceMs !== undefined) next.defaultCiGraceMs = parsed.defaultCiGraceMs;
  return next;
}

function randomChange(rng: Rng): Record<string, unknown> {
  const change: Record<string, unknown> = {};
  const set = (key: string, good: () => unknown, bad: () => unknown) => {
    const roll = rng.next();
    if (roll < 0.5) return;
    change[key] = roll < 0.85 ? good() : rng.bool() ? bad() : randomJson(rng);
  };
  set('contextPrefix', () => rng.pick(['cross-project', 'always', 'never']), () => rng.pick(['Always', '', null, 3]));
  set('injectQuietMs', () => rng.int(0, 60_000), () => rng.pick([-1, 60_001, 0.5, '10', null]));
  set('injectHumanIdleMs', () => rng.int(0, 600_000), () => rng.pick([-1, 600_001, 2.5, true]));
  set('defaultCiGraceMs', () => rng.int(0, 86_400_000), () => rng.pick([-1, 86_400_001, 'soon']));
  set(
    'ports',
    () => {
      const p: Record<string, unknown> = {};
      if (rng.bool()) p.enabled = rng.bool();
      if (rng.bool()) p.base = rng.int(1024, 65000);
      return p;
    },
    () => rng.pick([null, true, [], { enabled: 'yes' }, { base: 80 }, { base: 65001 }, { base: 4.2e4 + 0.5 }]),
  );
  if (rng.bool(0.1)) change.unknownKey = randomJson(rng);
  return change;
}

test('fuzz hub/setConfig: invalid changes refused with a message and change nothing; valid ones applied and persisted', { timeout: 90_000 }, async (t) => {
  const rng = testRng('hub setConfig', (l) => t.diagnostic(l));
  const started = Date.now();
  const cases = Number(process.env.FUZZ_SETCONFIG_CASES ?? 400);
  await withHub(async (home, client) => {
    const file = path.join(home.paths.stateDir, 'config.json');
    const readFile = () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined);
    let current = await client.call(GetConfig, {});
    let refused = 0;
    for (let i = 0; i < cases; i++) {
      // What reaches the hub is JSON (-0 becomes 0).
      const change = JSON.parse(JSON.stringify(randomChange(rng))) as Record<string, unknown>;
      const fileBefore = readFile();
      const valid = SetConfig.params.safeParse(change).success;
      const context = `case ${i}: ${JSON.stringify(change).slice(0, 200)}`;
      if (valid) {
        const want = applied(current, change);
        const got = await client.call(SetConfig, change);
        assert.deepEqual(got, want, context);
        assert.deepEqual(JSON.parse(readFile() ?? 'null'), want, `${context}: config.json`);
        current = want;
      } else {
        let error: unknown;
        try {
          await client.call(SetConfig, change);
        } catch (e) {
          error = e;
        }
        assert.ok(error instanceof HubRequestError, `${context}: accepted`);
        assert.equal(error.code, HubErrorCode.InvalidParams, context);
        assert.match(error.message, /hub\/setConfig: \S/, context);
        assert.equal(readFile(), fileBefore, `${context}: config.json changed`);
        refused++;
      }
      assert.deepEqual(await client.call(GetConfig, {}), current, `${context}: GetConfig`);
    }
    t.diagnostic(`${cases} changes, ${refused} refused`);
    // Persisted across a restart.
    const again = await restartHub(home, client);
    try {
      assert.deepEqual(await again.call(GetConfig, {}), current, 'the configuration after a restart');
    } finally {
      again.close();
    }
  });
  t.diagnostic(`took ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
