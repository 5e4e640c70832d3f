// @ts-check
// Helpers for the extension-host tests: deadlines, the package manifest, and a JSON-RPC client for the
// test's own hub (the one in CIHUB_HOME), to check from the outside what the extension did inside it.
// Plain CommonJS so that VS Code's extension host can `require` it as is, in both runners.
'use strict';

const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { createMessageConnection, SocketMessageReader, SocketMessageWriter } = require('vscode-jsonrpc/node');

/** The repository, which is also the extension under development (its package.json, its dist/). */
const ROOT = path.resolve(__dirname, '..', '..');

/**
 * @typedef {object} Manifest  the parts of package.json the tests read
 * @property {string} name
 * @property {string} publisher
 * @property {{ commands: { command: string, title: string }[],
 *   configuration: { properties: Record<string, { default?: unknown }> },
 *   terminal: { profiles: { id: string, title: string }[] } }} contributes
 */
/** @type {Manifest} */
const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const EXTENSION_ID = `${manifest.publisher}.${manifest.name}`;

/**
 * Polls `fn` until it returns something truthy; returns that value. Errors thrown by `fn` count as
 * "not yet"; the last one is part of the timeout error.
 * @template T
 * @param {() => T | Promise<T>} fn
 * @param {number} ms deadline
 * @param {string} what for the error message
 * @param {number} [interval]
 * @returns {Promise<NonNullable<Awaited<T>>>}
 */
async function waitFor(fn, ms, what, interval = 100) {
  const deadline = Date.now() + ms;
  /** @type {unknown} */
  let lastError;
  for (;;) {
    try {
      const value = await fn();
      if (value) return /** @type {NonNullable<Awaited<T>>} */ (value);
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const why = lastError ? ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})` : '';
      throw new Error(`timed out after ${ms} ms waiting for ${what}${why}`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/** The hub's socket for this test run; refuses to touch the user's own hub. */
function hubSocket() {
  const home = process.env.CIHUB_HOME;
  if (!home) throw new Error('CIHUB_HOME is not set: the extension-host tests only run against a hub of their own (the runners set it)');
  return path.join(home, 'run', 'hub.sock');
}

/**
 * One JSON-RPC request to the hub over a fresh connection, as `cihub` does.
 * @param {string} method
 * @param {unknown} params
 * @param {number} [timeoutMs]
 * @returns {Promise<unknown>}
 */
async function hubCall(method, params = {}, timeoutMs = 10_000) {
  const socket = net.connect(hubSocket());
  socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`the hub did not answer ${method} within ${timeoutMs} ms`)));
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const connection = createMessageConnection(new SocketMessageReader(socket), new SocketMessageWriter(socket));
  connection.listen();
  try {
    return await new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.once('close', () => reject(new Error(`the hub closed the connection before answering ${method}`)));
      connection.sendRequest(method, params).then(resolve, reject);
    });
  } finally {
    connection.dispose();
    socket.destroy();
  }
}

/** @typedef {import('../../server/protocol').CiInfo} CiInfo */
/** @typedef {import('../../server/protocol').HubInfo} HubInfo */
/** @typedef {import('../../server/protocol').HubConfig} HubConfig */
/** @typedef {import('../../server/protocol').ProjectInfo} ProjectInfo */
/** @typedef {import('../../server/protocol').SpawnParams} SpawnParams */

/** Typed requests (shapes from server/protocol.ts; the hub validates what it sends). */
const hub = {
  status: async () => /** @type {{ hub: HubInfo, cis: CiInfo[] }} */ (await hubCall('cihub/status')),
  list: async () => /** @type {{ cis: CiInfo[] }} */ (await hubCall('cihub/list')).cis,
  /** @param {string} name */
  ci: async (name) => (await hub.list()).find((c) => c.name === name),
  projects: async () => /** @type {{ projects: ProjectInfo[] }} */ (await hubCall('projects/list')).projects,
  config: async () => /** @type {HubConfig} */ (await hubCall('hub/getConfig')),
  /** @param {SpawnParams} params */
  spawn: async (params) => /** @type {CiInfo} */ (await hubCall('cihub/spawn', params)),
  /** @param {string} name */
  remove: async (name) => hubCall('cihub/remove', { name }),
};

/** Whether the hub answers at all (it may still be starting). */
async function hubAnswers() {
  try {
    await hub.status();
    return true;
  } catch {
    return false;
  }
}

module.exports = { ROOT, EXTENSION_ID, manifest, waitFor, hub, hubAnswers, hubSocket };
