/**
 * The hub's entry point (`dist/server.js`). It always runs in the foreground; `cihub hub` and the VS Code
 * extension start it detached, with stderr appended to `hub.log` in the state dir.
 *
 *   node dist/server.js           # start; exits 0 at once if a hub already runs for these paths
 */
import { Hub } from './hub';
import { errorMessage } from './errors';
import { dropLaunchEnv } from './env';

async function main(): Promise<void> {
  dropLaunchEnv();
  let started;
  try {
    started = await Hub.start();
  } catch (error) {
    process.stderr.write(`cihub hub: ${errorMessage(error)}\n`);
    process.exit(1);
  }
  if ('alreadyRunning' in started) {
    process.stderr.write(`cihub hub: a hub is already running (pid ${started.alreadyRunning})\n`);
    process.exit(0);
  }
  const hub = started.hub;
  const stop = (reason: string) => void hub.stop(reason);
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => stop('SIGHUP'));
  // A broken pipe to a client must not kill the hub and every agent with it.
  process.on('SIGPIPE', () => undefined);
  process.on('uncaughtException', (error) => hub.log.error(`uncaught: ${error.stack ?? error.message}`));
  process.on('unhandledRejection', (reason) => hub.log.error(`unhandled rejection: ${String(reason)}`));
  await hub.stopped;
  process.exit(0);
}

void main();
