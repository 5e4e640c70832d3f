/**
 * The wire under protocol.ts: JSON-RPC messages framed as in the LSP base protocol
 * (`Content-Length: N\r\n\r\n<N bytes of JSON>`) over a Unix socket, as a `vscode-jsonrpc`
 * MessageReader/MessageWriter pair for `createMessageConnection` (and `vscode-languageclient`'s
 * `MessageTransports`).
 *
 * vscode-jsonrpc's own socket reader/writer decode through promise chains and write each header and body
 * separately; on the keystroke-echo path that cost ~55 µs per round trip here (0.195 → 0.140 ms p50 for a
 * notification ping-pong). These parse synchronously and write each message in one call. Framing is
 * otherwise identical, so either side may use the stock classes.
 */
import type { Socket } from 'node:net';
import { AbstractMessageReader, AbstractMessageWriter, type DataCallback, type Disposable, type Message } from 'vscode-jsonrpc';

/** Largest message accepted; a bigger Content-Length is a framing error (the stream cannot be trusted). */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** Longest header block accepted before its blank line. */
const MAX_HEADER_BYTES = 8 * 1024;
const HEADER_END = Buffer.from('\r\n\r\n');

/** An error in the byte stream itself, after which no further message can be framed. */
export class FramingError extends Error {}

export class SocketReader extends AbstractMessageReader {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Body length of the message being read, once its header is parsed. */
  private need = -1;
  private broken = false;

  constructor(private readonly socket: Socket) {
    super();
  }

  listen(callback: DataCallback): Disposable {
    const onData = (data: Buffer) => this.received(data, callback);
    const onClose = () => this.fireClose();
    const onError = (error: Error) => this.fireError(error);
    this.socket.on('data', onData);
    this.socket.on('close', onClose);
    this.socket.on('error', onError);
    return {
      dispose: () => {
        this.socket.off('data', onData);
        this.socket.off('close', onClose);
        this.socket.off('error', onError);
      },
    };
  }

  private received(data: Buffer, callback: DataCallback): void {
    if (this.broken) return;
    this.chunks.push(data);
    this.size += data.length;
    for (;;) {
      if (this.size === 0 && this.need !== 0) {
        this.chunks = [];
        return;
      }
      let buffer = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size);
      if (this.need < 0) {
        const end = buffer.indexOf(HEADER_END);
        if (end < 0) {
          if (buffer.length > MAX_HEADER_BYTES) this.fail('no end of header within 8 KiB');
          else this.chunks = [buffer];
          return;
        }
        const length = contentLength(buffer.toString('ascii', 0, end));
        if (typeof length === 'string') return this.fail(length);
        this.need = length;
        buffer = buffer.subarray(end + HEADER_END.length);
      }
      if (buffer.length < this.need) {
        this.chunks = [buffer];
        this.size = buffer.length;
        return;
      }
      const body = buffer.subarray(0, this.need);
      const rest = buffer.subarray(this.need);
      this.chunks = rest.length ? [rest] : [];
      this.size = rest.length;
      this.need = -1;
      let message: Message;
      try {
        message = JSON.parse(body.toString('utf8'));
      } catch (error) {
        // A body that is not JSON is one bad message; the framing is intact, so keep reading.
        this.fireError(error instanceof Error ? error : new Error(String(error)));
        continue;
      }
      callback(message);
    }
  }

  private fail(reason: string): void {
    this.broken = true;
    this.chunks = [];
    this.size = 0;
    this.fireError(new FramingError(reason));
  }
}

/** The Content-Length of a header block, or why there is none. */
function contentLength(header: string): number | string {
  const match = /(?:^|\r\n)content-length:[ \t]*(\d+)[ \t]*(?:\r\n|$)/i.exec(header);
  if (!match) return 'header must provide a Content-Length';
  const length = Number(match[1]);
  if (length > MAX_MESSAGE_BYTES) return `Content-Length ${length} exceeds the ${MAX_MESSAGE_BYTES}-byte limit`;
  return length;
}

export class SocketWriter extends AbstractMessageWriter {
  constructor(private readonly socket: Socket) {
    super();
    socket.on('error', (error) => this.fireError(error));
    socket.on('close', () => this.fireClose());
  }

  /** Writes one message; resolves once the socket has taken it. */
  write(message: Message): Promise<void> {
    return this.writeJson(JSON.stringify(message));
  }

  /**
   * Writes a message already serialized to JSON (the hub builds terminal output notifications around
   * text it has escaped once for the capture too). Header and body go out in one writev.
   */
  writeJson(body: string): Promise<void> {
    if (this.socket.destroyed) return Promise.reject(new Error('socket closed'));
    const bytes = Buffer.from(body, 'utf8');
    return new Promise((resolve, reject) => {
      this.socket.cork();
      this.socket.write(`Content-Length: ${bytes.length}\r\n\r\n`, 'ascii');
      this.socket.write(bytes, (error) => (error ? reject(error) : resolve()));
      this.socket.uncork();
    });
  }

  end(): void {
    this.socket.end();
  }
}
