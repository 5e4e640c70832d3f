/**
 * Hardening 1c: the webview is a trust boundary (it renders agent output), and the host validates what it
 * says with zod (`WebviewToHost`), as the webview validates the host (`HostToWebview`). Pure: no VS Code,
 * no hub. Seeded and bounded (FUZZ_SEED=<n>).
 *
 *  - valid messages generated from the schemas' own shapes are accepted, and come out unchanged;
 *  - the same messages with one required part broken are rejected;
 *  - any value at all (exotic ones too: NaN, BigInt, Symbol, functions, Maps, cycles, null prototypes,
 *    huge arrays) is answered with success or failure — `safeParse` never throws.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { z } from 'zod';
import { HostToWebview, WebviewToHost } from '../../extension/webviewProtocol';
import { nastyString, randomJson, testRng, wrongTypeFor, type Rng } from '../fixtures/hardening';

const CASES = Number(process.env.FUZZ_WEBVIEW_CASES ?? 4000);

/** The parts of zod v4's internal definition this generator reads. */
interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  options?: z.ZodType[];
  discriminator?: string;
  element?: z.ZodType;
  innerType?: z.ZodType;
  values?: unknown[];
  entries?: Record<string, string>;
  checks?: { _zod: { def: { check?: string; format?: string; maximum?: number; minimum?: number; value?: number; inclusive?: boolean } } }[];
  getter?: () => z.ZodType;
  in?: z.ZodType;
}

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

function checks(def: Def) {
  return (def.checks ?? []).map((c) => c._zod.def);
}

/** A random value the schema accepts, built from its shape. */
function arbitrary(rng: Rng, schema: z.ZodType, depth = 0): unknown {
  const def = defOf(schema);
  switch (def.type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [key, child] of Object.entries(def.shape ?? {})) {
        const v = arbitrary(rng, child, depth + 1);
        if (v !== undefined) out[key] = v;
      }
      return out;
    }
    case 'union':
      return arbitrary(rng, rng.pick(def.options ?? []), depth);
    case 'optional':
      return rng.bool(0.4) ? undefined : arbitrary(rng, def.innerType as z.ZodType, depth);
    case 'default':
    case 'nullable':
    case 'readonly':
      return arbitrary(rng, def.innerType as z.ZodType, depth);
    case 'lazy':
      return arbitrary(rng, (def.getter as () => z.ZodType)(), depth);
    case 'pipe':
      return arbitrary(rng, def.in as z.ZodType, depth);
    case 'literal':
      return rng.pick(def.values ?? []);
    case 'enum':
      return rng.pick(Object.values(def.entries ?? {}));
    case 'boolean':
      return rng.bool();
    case 'number': {
      const cs = checks(def);
      const int = cs.some((c) => c.check === 'number_format');
      const min = cs.find((c) => c.check === 'greater_than')?.value ?? -1e6;
      const max = cs.find((c) => c.check === 'less_than')?.value ?? 1e12;
      const n = min + rng.next() * (max - min);
      return int ? Math.round(n) : rng.bool(0.5) ? Math.round(n) : n;
    }
    case 'string': {
      const max = checks(def).find((c) => c.check === 'max_length')?.maximum;
      const s = rng.bool(0.1) && (max ?? Infinity) >= 200_000 ? 'x'.repeat(rng.int(100_000, 200_000)) : nastyString(rng);
      return max !== undefined ? s.slice(0, max) : s;
    }
    case 'array': {
      if (depth > 6) return [];
      const n = rng.int(0, 4);
      return Array.from({ length: n }, () => arbitrary(rng, def.element as z.ZodType, depth + 1));
    }
    default:
      throw new Error(`the generator does not know zod type "${def.type}": extend arbitrary()`);
  }
}

/** A holder/key/schema of every value inside `value` that `schema` constrains. */
interface Site {
  holder: Record<string, unknown> | unknown[];
  key: string | number;
  schema: z.ZodType;
  /** The discriminator of a union (another branch may accept a different value). */
  discriminator: boolean;
}

function sites(schema: z.ZodType, value: unknown, out: Site[] = [], inUnion = false): Site[] {
  let def = defOf(schema);
  while (def.type === 'optional' || def.type === 'default' || def.type === 'nullable' || def.type === 'lazy' || def.type === 'readonly') {
    if (value === undefined) return out;
    schema = def.type === 'lazy' ? (def.getter as () => z.ZodType)() : (def.innerType as z.ZodType);
    def = defOf(schema);
  }
  if (def.type === 'union') {
    const branch = (def.options ?? []).find((o) => o.safeParse(value).success);
    if (branch) sites(branch, value, out, def.discriminator !== undefined);
    return out;
  }
  if (def.type === 'object' && value && typeof value === 'object') {
    for (const [key, child] of Object.entries(def.shape ?? {})) {
      out.push({ holder: value as Record<string, unknown>, key, schema: child, discriminator: inUnion && key === 'type' });
      sites(child, (value as Record<string, unknown>)[key], out);
    }
  }
  if (def.type === 'array' && Array.isArray(value)) {
    value.forEach((item, i) => {
      out.push({ holder: value, key: i, schema: def.element as z.ZodType, discriminator: false });
      sites(def.element as z.ZodType, item, out);
    });
  }
  return out;
}

/** A replacement the site's own schema rejects, or undefined if none was found. */
function breaking(rng: Rng, site: Site): unknown {
  const current = (site.holder as Record<string | number, unknown>)[site.key];
  const candidates: unknown[] = [
    wrongTypeFor(rng, current),
    randomJson(rng),
    nastyString(rng),
    -1.5,
    Number.NaN,
    null,
    typeof current === 'string' ? 'x'.repeat(1_000_001) : 0,
    typeof current === 'number' ? 0.5 : [],
  ];
  for (let i = 0; i < 20; i++) {
    const r = rng.pick(candidates);
    if (!site.schema.safeParse(r).success) return r;
  }
  return undefined;
}

/** Values a postMessage or a bug could produce that JSON cannot. */
function exotic(rng: Rng): unknown {
  const cyclic: Record<string, unknown> = { type: 'send', project: '/p' };
  cyclic.text = cyclic;
  const nullProto = Object.assign(Object.create(null) as Record<string, unknown>, { type: 'ready' });
  const sparse: unknown[] = [];
  sparse[5] = 1;
  const withExtras = Object.assign([1, 2], { type: 'ready' });
  const proto = JSON.parse('{"__proto__":{"type":"ready"},"constructor":{"prototype":{"polluted":true}}}');
  const values: unknown[] = [
    undefined,
    Number.NaN,
    Infinity,
    -0,
    10n,
    Symbol('s'),
    () => 1,
    new Date(),
    new Map([['type', 'ready']]),
    new Set(['ready']),
    /ready/,
    new Uint8Array(8),
    new Error('x'),
    cyclic,
    nullProto,
    sparse,
    withExtras,
    proto,
    { type: 'ready', extra: 10n },
    { type: 'send', project: '/p', text: Symbol('t') },
    { type: 'send', project: '/p', text: 'x'.repeat(1_000_001) },
    { type: 'approve', ci: 'a', ids: new Array(100_000).fill('id') },
    { type: 'approve', ci: 'a', ids: sparse },
    { type: 'init', projects: [], cis: [], entries: [{ id: 'e', t: Number.NaN, role: 'ci', text: 'x', format: 'plain' }], hub: 'connected' },
    { type: 'init', projects: [], cis: [], entries: [{ id: 'e', t: Infinity, role: 'ci', text: 'x', format: 'plain' }], hub: 'connected' },
    { type: 'hub', state: 'down', message: new String('boxed') },
    { type: new String('ready') },
    { type: 'selectProject', project: { toString: () => '/p' } },
  ];
  return rng.pick(values);
}

function neverThrows(schema: z.ZodType, value: unknown, context: string): boolean {
  try {
    return schema.safeParse(value).success;
  } catch (error) {
    assert.fail(`safeParse threw ${String(error)} (${context})`);
  }
}

for (const [name, schema] of [
  ['WebviewToHost', WebviewToHost],
  ['HostToWebview', HostToWebview],
] as const) {
  test(`fuzz ${name}.safeParse: accepts what its shape allows, rejects one broken part, never throws`, (t) => {
    const rng = testRng(`webview ${name}`, (l) => t.diagnostic(l));
    const started = Date.now();
    const types = new Map<string, number>();
    let rejected = 0;
    let exoticAccepted = 0;
    for (let i = 0; i < CASES; i++) {
      // 1. A valid message: accepted, and unchanged (no transforms on this boundary).
      const value = arbitrary(rng, schema);
      const kind = String((value as { type?: unknown }).type);
      types.set(kind, (types.get(kind) ?? 0) + 1);
      const parsed = schema.safeParse(value);
      assert.ok(parsed.success, `case ${i}: a valid ${kind} message was rejected: ${parsed.success ? '' : parsed.error.message.slice(0, 300)}`);
      assert.deepEqual(parsed.data, value, `case ${i}: parsing changed a valid ${kind} message`);

      // 2. The same with one constrained part broken: rejected.
      const broken = structuredClone(value);
      const all = sites(schema, broken);
      const site = rng.pick(all);
      const replacement = site ? breaking(rng, site) : undefined;
      if (site && replacement !== undefined) {
        (site.holder as Record<string | number, unknown>)[site.key] = replacement;
        const ok = neverThrows(schema, broken, `case ${i} broken`);
        const describe = `${kind}.${String(site.key)} = ${String(JSON.stringify(replacement)).slice(0, 80)}`;
        if (site.discriminator) {
          // Another branch may own the new type value; it must still be one of the known types then.
          if (ok) assert.ok((broken as { type: unknown }).type !== replacement || typeof replacement === 'string', describe);
        } else {
          assert.equal(ok, false, `case ${i}: accepted a message with a broken part: ${describe}`);
          rejected++;
        }
      }

      // 3. Anything at all: never throws.
      const anything = rng.bool(0.3) ? exotic(rng) : randomJson(rng);
      if (neverThrows(schema, anything, `case ${i} random ${typeof anything}`)) exoticAccepted++;
    }
    t.diagnostic(`${CASES} cases in ${Date.now() - started} ms; by type ${JSON.stringify(Object.fromEntries(types))}; ${rejected} broken ones rejected; ${exoticAccepted} random values accepted`);
    // Every branch of the union was generated.
    const branches = (defOf(schema).options ?? []).map((o) => String(defOf(defOf(o).shape?.type as z.ZodType).values?.[0]));
    for (const b of branches) assert.ok(types.has(b), `no ${b} message was generated`);
  });
}

test('webview messages: the specific hostile cases', () => {
  const reject: [string, unknown][] = [
    ['text over 1 000 000 characters', { type: 'send', project: '/p', text: 'x'.repeat(1_000_001) }],
    ['unknown type', { type: 'eval', code: 'alert(1)' }],
    ['type inherited through __proto__', JSON.parse('{"__proto__":{"type":"ready"}}')],
    ['a Map', new Map([['type', 'ready']])],
    ['ids that are not strings', { type: 'approve', ci: 'a', ids: [1, 2] }],
    ['a boxed string', { type: new String('ready') }],
    ['an object that stringifies to a path', { type: 'selectProject', project: { toString: () => '/p' } }],
  ];
  for (const [what, value] of reject) assert.equal(WebviewToHost.safeParse(value).success, false, what);
  const hostReject: [string, unknown][] = [
    ['a non-integer window count', { type: 'projects', projects: [{ path: '/p', name: 'p', here: true, windows: 1.5 }] }],
    ['an unknown hub state', { type: 'hub', state: 'exploded' }],
    ['an entry with an unknown role', { type: 'entry', project: '/p', entry: { id: 'e', t: 1, role: 'admin', text: 'x', format: 'plain' } }],
    ['an entry with an unknown format', { type: 'entry', project: '/p', entry: { id: 'e', t: 1, role: 'ci', text: 'x', format: 'html' } }],
    ['NaN as a time', { type: 'entry', project: '/p', entry: { id: 'e', t: Number.NaN, role: 'ci', text: 'x', format: 'plain' } }],
    ['Infinity as a time', { type: 'entry', project: '/p', entry: { id: 'e', t: Infinity, role: 'ci', text: 'x', format: 'plain' } }],
  ];
  for (const [what, value] of hostReject) assert.equal(HostToWebview.safeParse(value).success, false, what);
  // Unknown extra fields are dropped, not passed on.
  const parsed = WebviewToHost.safeParse({ type: 'openTerminal', ci: 'a', command: 'rm -rf /' });
  assert.ok(parsed.success);
  assert.deepEqual(parsed.data, { type: 'openTerminal', ci: 'a' });
});
