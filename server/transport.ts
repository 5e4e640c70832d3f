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
import { asError, errorMessage } from './errors';

/** Largest message accepted; a bigger Content-Length is a framing error (the stream cannot be trusted). */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** Longest header block accepted before its blank line. */
const MAX_HEADER_BYTES = 8 * 1024;
const HEADER_END = Buffer.from('\r\n\r\n');

/** An error in the byte stream itself, after which no further message can be framed. */
export class FramingError extends Error {}

/**
 * A well-framed JSON body that is not a JSON-RPC message (JSON-RPC 2.0 §5: Invalid Request). `id` is
 * the request id to answer with (null when it has none usable), or undefined for a notification, which
 * gets no answer.
 */
export class InvalidMessageError extends Error {
  constructor(
    message: string,
    readonly id: string | number | null | undefined,
  ) {
    super(message);
  }
}

export class SocketReader extends AbstractMessageReader {
  /** Received bytes not yet consumed. A body is joined only once all of it is here (linear time). */
  private chunks: Buffer[] = [];
  private size = 0;
  /** Body length of the message being read, once its header is parsed. */
  private need = -1;
  private broken = false;
  /** Messages handed to the connection so far. */
  delivered = 0;

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
    while (!this.broken) {
      if (this.need < 0) {
        // A header is at most 8 KiB: joining what is here to find its end stays cheap.
        if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.size)];
        const buffer = this.chunks[0];
        if (!buffer) return;
        const end = buffer.indexOf(HEADER_END);
        if (end < 0) {
          if (buffer.length > MAX_HEADER_BYTES) this.fail('no end of header within 8 KiB');
          return;
        }
        const length = contentLength(buffer.toString('ascii', 0, end));
        if (typeof length === 'string') return this.fail(length);
        this.take(end + HEADER_END.length);
        this.need = length;
      }
      if (this.size < this.need) return;
      const body = this.take(this.need);
      this.need = -1;
      this.deliver(body, callback);
    }
  }

  /** Removes and answers the first `n` received bytes (copied only when they span chunks). */
  private take(n: number): Buffer {
    const first = this.chunks[0];
    const out = first && first.length >= n ? first.subarray(0, n) : Buffer.concat(this.chunks, n);
    let left = n;
    let drop = 0;
    while (left > 0) {
      const chunk = this.chunks[drop];
      if (chunk.length <= left) {
        left -= chunk.length;
        drop++;
      } else {
        this.chunks[drop] = chunk.subarray(left);
        left = 0;
      }
    }
    this.chunks.splice(0, drop);
    this.size -= n;
    return out;
  }

  /** Hands one body on as a message; a bad one is reported and the stream goes on (its framing is intact). */
  private deliver(body: Buffer, callback: DataCallback): void {
    let value: unknown;
    try {
      value = JSON.parse(body.toString('utf8'));
    } catch (error) {
      this.fireError(asError(error));
      return;
    }
    const invalid = invalidMessage(value);
    if (invalid) {
      this.fireError(invalid);
      return;
    }
    try {
      // Checked above to be a request, notification or response.
      this.delivered++;
      callback(value as Message);
    } catch (error) {
      // One message the connection choked on must not stop the messages after it from being read.
      this.fireError(new InvalidMessageError(`a message could not be handled: ${errorMessage(error)}`, undefined));
    }
  }

  private fail(reason: string): void {
    this.broken = true;
    this.chunks = [];
    this.size = 0;
    this.fireError(new FramingError(reason));
  }
}

const isId = (id: unknown): id is string | number => typeof id === 'string' || typeof id === 'number';

/** Why `value` is not a JSON-RPC request, notification or response; undefined when it is one. */
function invalidMessage(value: unknown): InvalidMessageError | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return new InvalidMessageError('a JSON-RPC message must be an object (batches are not supported)', null);
  }
  const id: unknown = Reflect.get(value, 'id');
  const method: unknown = Reflect.get(value, 'method');
  const params: unknown = Reflect.get(value, 'params');
  const hasId = Reflect.has(value, 'id');
  if (Reflect.has(value, 'method')) {
    const replyId = hasId ? (isId(id) ? id : null) : undefined;
    if (typeof method !== 'string') return new InvalidMessageError('"method" must be a string', replyId);
    if (hasId && !isId(id)) return new InvalidMessageError('"id" must be a string or a number', null);
    // vscode-jsonrpc reads params.id of a cancellation without checking it.
    if (method === '$/cancelRequest' && !(typeof params === 'object' && params !== null && isId(Reflect.get(params, 'id')))) return new InvalidMessageError('$/cancelRequest needs params.id', undefined);
    return undefined;
  }
  if (hasId && (id === null || isId(id)) && (Reflect.has(value, 'result') || Reflect.has(value, 'error'))) return undefined;
  return new InvalidMessageError('neither a request, a notification nor a response', hasId && isId(id) ? id : null);
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
    return this.writeJson([JSON.stringify(message)]);
  }

  /**
   * Writes a message already serialized to JSON, given in parts that make it up in order (the hub builds
   * terminal output notifications around text it has escaped once for the capture too). Header and parts
   * go out in one writev.
   */
  writeJson(body: readonly string[]): Promise<void> {
    if (this.socket.destroyed) return Promise.reject(new Error('socket closed'));
    let length = 0;
    for (const part of body) length += Buffer.byteLength(part, 'utf8');
    // Written as strings, part by part: the socket encodes them into memory it frees once written (a
    // Buffer would linger until the next GC: after 100 MiB of output, ~10 MB of them still waited for
    // one), and joining them first would copy each flood batch once more on the heap.
    return new Promise((resolve, reject) => {
      this.socket.cork();
      this.socket.write(`Content-Length: ${length}\r\n\r\n`, 'ascii');
      const last = body.length - 1;
      for (let i = 0; i < last; i++) this.socket.write(body[i], 'utf8');
      this.socket.write(body[last] ?? '', 'utf8', (error) => (error ? reject(error) : resolve()));
      this.socket.uncork();
    });
  }

  end(): void {
    this.socket.end();
  }
}
