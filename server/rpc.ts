/**
 * JSON-RPC over `hub.sock`: one `vscode-jsonrpc` message connection per client (a VS Code window, a
 * `cihub` command, a wrap session). Every request is validated against its schema in protocol.ts before
 * its handler runs; failures become typed `ResponseError`s. The LSP lifecycle that
 * `vscode-languageclient` runs is answered here, per connection: `shutdown`/`exit` end that connection,
 * never the hub.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { createMessageConnection, ErrorCodes, ResponseError, type Message, type MessageConnection, type ResponseMessage } from 'vscode-jsonrpc/node';
import { FramingError, InvalidMessageError, SocketReader, SocketWriter } from './transport';
import {
  ExitNotification,
  InitializedNotification,
  InitializeRequest,
  ShutdownRequest,
} from 'vscode-languageserver-protocol';
import type { z } from 'zod';
import {
  AttachEnded,
  describeZodError,
  Event,
  HubErrorCode,
  type HubEvent,
  Output,
  WrapInput,
  WrapSignal,
  type CiInfo,
  type NotificationDef,
  type RequestDef,
} from './protocol';
import type { WrapPeer } from './ci';
import type { AnyCi } from './cis';
import type { Log } from './log';
import { ATTACH_HIGH_WATERMARK_BYTES, ATTACH_LOW_WATERMARK_BYTES } from './terminal';
import { errorMessage } from './errors';
import { VERSION } from './version';

/**
 * A watching client with more unsent data than this is behind: it gets no events (except alerts) until
 * it has drained ({@link Client.whenDrained}), then one `resync` saying how many it missed. Above the attach high watermark,
 * so a window that is only behind on a terminal flood (resynced on its own) keeps its events. Unbounded,
 * the hub held every event a stopped window missed (9 000 messages of 4 KB: +46 MB; bounded: +10 MB).
 */
export const EVENT_BACKLOG_BYTES = ATTACH_HIGH_WATERMARK_BYTES + 4 * 1024 * 1024;

/** A connected client. */
export class Client implements WrapPeer {
  /** Receives `cihub/event` notifications. */
  watching = false;
  /** From `initialize`: who this is (e.g. "Projects Chat (window 2)", "cihub"). */
  label = 'client';
  /** This connection's attachments: attach id → the CI it is attached to. */
  readonly attachments = new Map<string, AnyCi>();
  private drainWaiters: (() => void)[] = [];
  /** Events not sent since this client fell behind (see {@link EVENT_BACKLOG_BYTES}). */
  private eventsDropped = 0;
  private readonly closeListeners: (() => void)[] = [];
  private closed = false;

  constructor(
    readonly id: number,
    readonly connection: MessageConnection,
    private readonly socket: net.Socket,
    private readonly writer: SocketWriter,
  ) {}

  /** Bytes queued on the socket and not yet taken by the kernel: output, events, replies alike. */
  get backlogBytes(): number {
    return this.socket.writableLength;
  }

  /** Sends a notification; data that cannot be sent because the client is gone is dropped. */
  send<P extends z.ZodType>(def: NotificationDef<P>, params: z.input<P>): Promise<void> {
    if (!this.open) return Promise.resolve();
    return this.connection.sendNotification(def.method, params).catch(() => undefined).then(this.wrote);
  }

  /**
   * Sends a hub event, or drops it while this client is behind (see {@link EVENT_BACKLOG_BYTES}). `json` is
   * the event serialized once for every watching client.
   */
  sendEvent(event: HubEvent, json = JSON.stringify(event)): void {
    if (!this.open) return;
    // Once one is dropped, all are until the resync, so what a client gets is never out of order with it.
    if (event.type !== 'alert' && (this.eventsDropped > 0 || this.backlogBytes > EVENT_BACKLOG_BYTES)) {
      if (this.eventsDropped++ === 0) {
        this.whenDrained(() => {
          const dropped = this.eventsDropped;
          this.eventsDropped = 0;
          void this.send(Event, { type: 'resync', dropped });
        });
      }
      return;
    }
    this.sendJson(Event.method, [json]);
  }

  /**
   * Sends terminal output as an {@link Output} notification. `json` is the text already JSON-escaped
   * (shared with the capture), so the hot path serializes each byte once.
   */
  sendOutput(attachId: string, kind: 'replay' | 'live' | 'resync', text: string, json = JSON.stringify(text)): void {
    if (!this.open) return;
    this.sendJson(Output.method, [`{"attachId":${JSON.stringify(attachId)},"kind":"${kind}","data":`, json, '}']);
  }

  /** Sends a notification whose params are given as JSON text, in parts (written as they are, not joined). */
  private sendJson(method: string, params: readonly string[]): void {
    void this.writer
      .writeJson([`{"jsonrpc":"2.0","method":${JSON.stringify(method)},"params":`, ...params, '}'])
      .catch(() => undefined)
      .then(this.wrote);
  }

  /** A write this client's drain waiters follow has completed: wake them once the backlog is low. */
  private readonly wrote = (): void => {
    if (this.drainWaiters.length === 0 || this.backlogBytes > ATTACH_LOW_WATERMARK_BYTES) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  };

  whenDrained(listener: () => void): void {
    if (this.backlogBytes <= ATTACH_LOW_WATERMARK_BYTES) listener();
    else this.drainWaiters.push(listener);
  }

  sendAttachEnded(attachId: string, reason: string, ci: CiInfo): void {
    this.attachments.delete(attachId);
    void this.send(AttachEnded, { attachId, reason, ci });
  }

  sendWrapInput(name: string, data: string): void {
    void this.send(WrapInput, { name, data });
  }

  sendWrapSignal(name: string, signal: 'SIGHUP' | 'SIGTERM' | 'SIGKILL'): void {
    void this.send(WrapSignal, { name, signal });
  }

  /** Still connected: not closed, and the socket not destroyed (its 'close' event comes a turn later). */
  get open(): boolean {
    return !this.closed && !this.socket.destroyed;
  }

  onClose(listener: () => void): void {
    if (this.closed) listener();
    else this.closeListeners.push(listener);
  }

  /** Registers a request handler that validates params and maps failures to `ResponseError`s. */
  handle<P extends z.ZodType, R extends z.ZodType>(
    def: RequestDef<P, R>,
    handler: (params: z.output<P>, client: Client) => Promise<z.input<R>> | z.input<R>,
    log: Log,
  ): void {
    this.connection.onRequest(def.method, async (raw: unknown) => {
      const parsed = def.params.safeParse(raw);
      if (!parsed.success) {
        throw new ResponseError(HubErrorCode.InvalidParams, `${def.method}: ${describeZodError(parsed.error)}`);
      }
      try {
        return await handler(parsed.data, this);
      } catch (error) {
        if (error instanceof ResponseError) throw error;
        log.error(`${def.method} failed: ${error instanceof Error ? error.stack : String(error)}`);
        throw new ResponseError(HubErrorCode.SystemError, `${def.method} failed: ${errorMessage(error)}`);
      }
    });
  }

  /** Registers a notification handler; invalid notifications are logged and dropped (there is no reply). */
  on<P extends z.ZodType>(def: NotificationDef<P>, handler: (params: z.output<P>, client: Client) => void, log: Log): void {
    this.connection.onNotification(def.method, (raw: unknown) => {
      const parsed = def.params.safeParse(raw);
      if (!parsed.success) {
        log.warn(`client ${this.id}: ignored invalid ${def.method}: ${describeZodError(parsed.error)}`);
        return;
      }
      try {
        handler(parsed.data, this);
      } catch (error) {
        log.error(`${def.method} failed: ${error instanceof Error ? error.stack : String(error)}`);
      }
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.connection.dispose();
    this.socket.destroy();
    for (const listener of this.closeListeners.splice(0)) listener();
  }
}

/**
 * After a client hangs up, how long its last messages (the connection dispatches one per event-loop
 * turn) may take to be handled before the connection is dropped anyway.
 */
const HANG_UP_DRAIN_MS = 1000;

export class RpcServer {
  readonly clients = new Set<Client>();
  private readonly server: net.Server;
  private nextId = 1;

  constructor(
    private readonly socketPath: string,
    private readonly log: Log,
    private readonly setup: (client: Client) => void,
  ) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  /** Listens on the socket (replacing a stale one) and makes it 0600. */
  async listen(): Promise<void> {
    try {
      fs.unlinkSync(this.socketPath);
    } catch {
      // No stale socket: the usual case.
    }
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.socketPath, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    fs.chmodSync(this.socketPath, 0o600);
  }

  private accept(socket: net.Socket): void {
    const reader = new SocketReader(socket);
    const writer = new SocketWriter(socket);
    const id = this.nextId++;
    // Once a client is gone, write failures for its last queued messages are expected: not logged.
    const report = (m: string) => {
      if (this.clients.has(client) && client.open) this.log.warn(`rpc client ${id}: ${oneLine(m)}`);
    };
    let dispatched = 0;
    let hungUp: (() => void) | undefined;
    const messageStrategy = {
      handleMessage: (message: Message, next: (message: Message) => void) => {
        dispatched++;
        next(message);
        if (hungUp && dispatched >= reader.delivered) hungUp();
      },
    };
    const logger = { error: report, warn: report, info: () => undefined, log: () => undefined };
    const connection = createMessageConnection(reader, writer, logger, { messageStrategy });
    const client = new Client(id, connection, socket, writer);
    this.clients.add(client);
    let framingBroken = false;
    reader.onError((error) => {
      if (error instanceof InvalidMessageError) {
        // JSON, but not a JSON-RPC message: Invalid Request for a request, nothing for a notification.
        report(`ignored an invalid message: ${error.message}`);
        if (error.id !== undefined) {
          const reply: ResponseMessage = { jsonrpc: '2.0', id: error.id, error: { code: ErrorCodes.InvalidRequest, message: `invalid request: ${error.message}` } };
          void writer.write(reply).catch(() => undefined);
        }
        return;
      }
      // A body that is not JSON: answer like JSON-RPC says (id null) and keep going. A broken header
      // means the stream can no longer be framed: answer and close.
      const framing = error instanceof FramingError;
      const message = framing
        ? `invalid JSON-RPC framing (${error.message.split('\n')[0]}); hub.sock speaks JSON-RPC with Content-Length headers (LSP base protocol). For NDJSON messages use the bus sockets.`
        : `parse error: ${error.message.split('\n')[0]}`;
      const reply: ResponseMessage = { jsonrpc: '2.0', id: null, error: { code: ErrorCodes.ParseError, message } };
      void writer.write(reply).catch(() => undefined);
      if (framing && !framingBroken) {
        framingBroken = true;
        this.log.warn(`client ${client.id}: ${message}; closing the connection`);
        setTimeout(() => client.close(), 50);
      }
    });
    // What a client sent just before hanging up (e.g. `cihub wrap`'s exit code) is still handled:
    // dropping the connection at once would discard the messages it has queued. A `$/cancelRequest`
    // is never dispatched, so the count can stay short of what was delivered; the timer bounds that.
    const hangUp = () => {
      if (hungUp) return;
      const timer = setTimeout(() => this.drop(client), HANG_UP_DRAIN_MS).unref();
      hungUp = () => {
        clearTimeout(timer);
        this.drop(client);
      };
      if (dispatched >= reader.delivered) hungUp();
    };
    connection.onClose(hangUp);
    socket.on('close', hangUp);
    socket.on('error', () => undefined);

    connection.onRequest(InitializeRequest.type, (params) => {
      client.label = params.clientInfo?.name ?? client.label;
      return { capabilities: {}, serverInfo: { name: 'cihub', version: VERSION } };
    });
    connection.onNotification(InitializedNotification.type, () => undefined);
    connection.onRequest(ShutdownRequest.type, () => undefined);
    connection.onNotification(ExitNotification.type, () => client.close());
    this.setup(client);
    connection.listen();
  }

  private drop(client: Client): void {
    if (!this.clients.delete(client)) return;
    client.close();
  }

  /** Stops accepting, closes every connection and removes the socket file. */
  async close(): Promise<void> {
    for (const client of [...this.clients]) client.close();
    this.clients.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    try {
      fs.unlinkSync(this.socketPath);
    } catch {
      // Already removed.
    }
  }
}

/** Longest client-caused text copied into the log: messages can be 64 MiB. */
const LOGGED_TEXT_CHARS = 300;

/** A log-sized, single-line version of `text` (vscode-jsonrpc pretty-prints whole messages). */
function oneLine(text: string): string {
  const flat = text.length > LOGGED_TEXT_CHARS * 4 ? text.slice(0, LOGGED_TEXT_CHARS * 4) : text;
  const line = flat.replace(/\s+/g, ' ');
  return line.length > LOGGED_TEXT_CHARS ? `${line.slice(0, LOGGED_TEXT_CHARS)}… (${text.length} characters)` : line;
}
