/**
 * This window's connection to the hub, through `vscode-languageclient`: a `ServerOptions` function
 * connects to `hub.sock`, starting the hub detached first (the bundled dist/server.js, on the extension
 * host's own Node) when nobody answers. If the hub goes away the connection says so, keeps trying with
 * a growing delay, and — once back — tells its listeners to re-register and re-attach.
 *
 * Lifetimes: the LanguageClient and this object live as long as the extension; what belongs to one
 * connection (attachments, registrations) is redone by listeners of {@link onDidConnect}.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CloseAction, ErrorAction, LanguageClient, State, type MessageTransports } from 'vscode-languageclient/node';
import type { z } from 'zod';
import { describeZodError, type NotificationDef, type RequestDef } from '../server/protocol';
import { SocketReader, SocketWriter } from '../server/transport';
import { errorMessage } from '../server/errors';
import { connectSocket, hubSocket, parseResult, startHub } from '../client/hubClient';
import type { HubState } from './webviewProtocol';

/** Reconnect delays after the hub went away: from this, doubling… */
const RETRY_MIN_MS = 500;
/** …up to this. */
const RETRY_MAX_MS = 15_000;

/** A request that could not be answered because the hub is not connected. */
export class HubUnavailable extends Error {}

export class HubConnection implements vscode.Disposable {
  private readonly client: LanguageClient;
  private readonly stateEmitter = new vscode.EventEmitter<{ state: HubState; message?: string }>();
  private readonly connectEmitter = new vscode.EventEmitter<void>();
  private stateValue: HubState = 'connecting';
  private lastMessage: string | undefined;
  private retryMs = RETRY_MIN_MS;
  private retryTimer: NodeJS.Timeout | undefined;
  private disposed = false;
  private wasConnected = false;
  /** Methods that have a handler (see {@link on}). */
  private readonly handled = new Set<string>();

  /** Fires on every state change. */
  readonly onDidChangeState = this.stateEmitter.event;
  /** Fires each time a connection is (re-)established: register projects, re-attach terminals. */
  readonly onDidConnect = this.connectEmitter.event;

  constructor(
    extensionPath: string,
    private readonly output: vscode.LogOutputChannel,
    private readonly log: (line: string) => void,
  ) {
    const serverScript = path.join(extensionPath, 'dist', 'server.js');
    const serverOptions = async (): Promise<MessageTransports> => {
      const socketPath = hubSocket(process.env);
      let socket = await connectSocket(socketPath);
      if (!socket) {
        this.log(`no hub answers on ${socketPath}; starting one`);
        await startHub({ serverScript });
        socket = await connectSocket(socketPath);
        if (!socket) throw new Error(`the hub started but nothing answers on ${socketPath}`);
      }
      return { reader: new SocketReader(socket), writer: new SocketWriter(socket) };
    };
    this.client = new LanguageClient('projectsChat', 'Projects Chat hub', serverOptions, {
      documentSelector: [],
      outputChannel: output,
      initializationOptions: { client: 'vscode' },
      // The hub is shared: when it goes away we reconnect ourselves, without the client's own popups.
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue, handled: true }),
        closed: () => {
          this.lostConnection('the connection to the hub closed');
          return { action: CloseAction.DoNotRestart, handled: true };
        },
      },
    });
    this.client.onDidChangeState((e) => {
      if (e.newState === State.Running) this.connected();
    });
  }

  get state(): HubState {
    return this.stateValue;
  }

  get message(): string | undefined {
    return this.lastMessage;
  }

  private setState(state: HubState, message?: string): void {
    this.stateValue = state;
    this.lastMessage = message;
    this.stateEmitter.fire({ state, message });
  }

  /** Connects (starting the hub if needed); retries in the background when it cannot. */
  async start(): Promise<void> {
    this.setState('connecting');
    await this.tryStart();
  }

  private async tryStart(): Promise<void> {
    if (this.disposed) return;
    try {
      await this.client.start();
    } catch (error) {
      this.lostConnection(errorMessage(error));
    }
  }

  private connected(): void {
    this.retryMs = RETRY_MIN_MS;
    this.log(this.wasConnected ? 'reconnected to the hub' : 'connected to the hub');
    this.wasConnected = true;
    this.setState('connected');
    this.connectEmitter.fire();
  }

  private lostConnection(reason: string): void {
    if (this.disposed || this.retryTimer) return;
    const delay = this.retryMs;
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
    this.log(`hub unavailable (${reason}); retrying in ${(delay / 1000).toFixed(1)} s`);
    this.setState(this.wasConnected && delay <= 4000 ? 'restarting' : 'down', reason);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.tryStart();
    }, delay);
  }

  /** Restarts the hub: asks it to stop (its CIs stop and start again with the new hub) and reconnects. */
  async restartHub(stop: () => Promise<unknown>): Promise<void> {
    // Asked while still connected (requests are refused once the state leaves 'connected'); the
    // closed connection then reconnects, which starts the new hub.
    await stop();
    if (this.stateValue === 'connected') this.setState('restarting', 'restarting the hub');
  }

  /** Sends a request and validates the answer. Throws {@link HubUnavailable} while disconnected. */
  async call<P extends z.ZodType, R extends z.ZodType>(def: RequestDef<P, R>, params: z.input<P>): Promise<z.output<R>> {
    if (this.stateValue !== 'connected') {
      throw new HubUnavailable(this.stateValue === 'connecting' ? 'the hub is starting…' : 'the hub is restarting… try again in a moment');
    }
    const raw: unknown = await this.client.sendRequest(def.method, params);
    return parseResult(def, raw);
  }

  notify<P extends z.ZodType>(def: NotificationDef<P>, params: z.input<P>): void {
    if (this.stateValue !== 'connected') return;
    void this.client.sendNotification(def.method, params).catch(() => undefined);
  }

  /**
   * Handles a hub notification (validated) for the extension's lifetime, across reconnects. One handler
   * per method: the LanguageClient keeps one, and a second would validate every notification again — hand
   * it on from the first instead.
   */
  on<P extends z.ZodType>(def: NotificationDef<P>, handler: (params: z.output<P>) => void): vscode.Disposable {
    if (this.handled.has(def.method)) throw new Error(`${def.method} already has a handler`);
    this.handled.add(def.method);
    const registration = this.client.onNotification(def.method, (raw: unknown) => {
      const parsed = def.params.safeParse(raw);
      if (parsed.success) handler(parsed.data);
      else this.output.warn(`ignored an invalid ${def.method} from the hub: ${describeZodError(parsed.error)}`);
    });
    return {
      dispose: () => {
        registration.dispose();
        this.handled.delete(def.method);
      },
    };
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.retryTimer);
    // Bounded: a window closing must not hang on a hub that does not answer.
    void this.client.stop(2000).catch(() => undefined);
    this.stateEmitter.dispose();
    this.connectEmitter.dispose();
  }
}
