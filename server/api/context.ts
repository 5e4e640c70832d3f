/** What request handlers get from the hub. */
import type { z } from 'zod';
import type { CiInfo, HubEvent, Status } from '../protocol';
import type { HubPaths } from '../paths';
import type { Log } from '../log';
import type { Cis } from '../cis';
import type { AnyCi } from '../cis';
import type { KeyStore } from '../model/keys';
import type { Bus } from '../bus/bus';
import type { ConfigStore } from '../config';
import type { ScreenMirrors } from '../screen/mirror';
import type { Client } from '../rpc';
import type { Projects } from '../projects';
import type { Chats } from '../chat';
import type { CaptureRetention } from '../captureRetention';

export interface HubContext {
  readonly log: Log;
  readonly paths: HubPaths;
  readonly cis: Cis;
  readonly bus: Bus;
  readonly config: ConfigStore;
  readonly mirrors: ScreenMirrors;
  readonly projects: Projects;
  readonly chats: Chats;
  readonly keys: KeyStore;
  readonly captures: CaptureRetention;
  /** Tells watching clients. */
  emit(event: HubEvent): void;
  /** Throws `ShuttingDown` while the hub stops. */
  assertAccepting(): void;
  /** A CI as clients see it: its state plus its queue, port and forwarding. */
  info(ci: AnyCi): CiInfo;
  stop(reason: string): Promise<void>;
  status(): z.input<typeof Status.result>;
  clients(): ReadonlySet<Client>;
  /** Opens and closes TCP ports to match the settings and the CIs (after a settings change). */
  updatePorts(): void;
}
