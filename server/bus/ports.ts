/**
 * Tekton-compatible ports (opt-in: `ports.enabled` in the hub config, off by default): each CI that
 * belongs to a project also listens on `127.0.0.1:<base + index>` (base 42100), as in the seeds'
 * projects-chat-architecture.md: a line `{"content": "..."}` in, the CI's reply line
 * `{"content": "...", "from": "<ci>", "id": "..."}` out. Only loopback is ever bound; a CI's port is
 * released when it goes.
 */
import * as net from 'node:net';
import type { HubConfig } from '../protocol';
import type { Log } from '../log';
import { errorMessage } from '../errors';
import { lineContent } from './lines';
import type { Bus, BusCi } from './bus';

/** How long a port client waits for the CI's reply. */
const PORT_REPLY_TIMEOUT_MS = 300_000;
/** Longest line a port client may send. */
const PORT_LINE_LIMIT = 1024 * 1024;

interface Listening {
  port: number;
  server: net.Server;
}

export class Ports {
  private readonly listening = new Map<string, Listening>();
  private base = 0;

  constructor(
    private readonly bus: Bus,
    private readonly log: Log,
  ) {}

  portOf(name: string): number | undefined {
    return this.listening.get(name)?.port;
  }

  /** Opens ports for project CIs that lack one, and closes those no longer wanted. */
  update(config: HubConfig, cis: readonly BusCi[]): void {
    const wanted = config.ports.enabled ? cis.filter((ci) => ci.project) : [];
    if (config.ports.base !== this.base) {
      for (const name of [...this.listening.keys()]) this.release(name);
      this.base = config.ports.base;
    }
    const names = new Set(wanted.map((ci) => ci.name));
    for (const name of [...this.listening.keys()]) if (!names.has(name)) this.release(name);
    const taken = new Set([...this.listening.values()].map((l) => l.port));
    for (const ci of wanted) {
      if (this.listening.has(ci.name)) continue;
      let port = this.base;
      while (taken.has(port)) port++;
      taken.add(port);
      this.open(ci.name, port);
    }
  }

  private open(name: string, port: number): void {
    const server = net.createServer((socket) => this.serve(socket, name, port));
    server.on('error', (error) => {
      this.log.warn(`ports: ${name} cannot listen on 127.0.0.1:${port}: ${error.message}`);
      if (this.listening.get(name)?.server === server) this.listening.delete(name);
    });
    server.listen(port, '127.0.0.1', () => this.log.info(`ports: ${name} listens on 127.0.0.1:${port}`));
    this.listening.set(name, { port, server });
  }

  private release(name: string): void {
    this.listening.get(name)?.server.close();
    this.listening.delete(name);
  }

  private serve(socket: net.Socket, ci: string, port: number): void {
    let buffer = '';
    let chain = Promise.resolve();
    socket.setEncoding('utf8');
    socket.on('error', () => undefined); // the client went away
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      if (buffer.length > PORT_LINE_LIMIT && !buffer.includes('\n')) {
        socket.write(`${JSON.stringify({ error: `line exceeds ${PORT_LINE_LIMIT} bytes` })}\n`);
        buffer = '';
        return;
      }
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (!line) continue;
        // One question at a time per connection, answers in order.
        chain = chain.then(() => this.answer(socket, ci, port, line));
      }
    });
  }

  private async answer(socket: net.Socket, ci: string, port: number, line: string): Promise<void> {
    try {
      const reply = await this.bus.ask({ from: `port-${port}`, to: ci, content: lineContent(line) }, {}, PORT_REPLY_TIMEOUT_MS);
      socket.write(`${JSON.stringify({ content: reply.content, from: reply.from, id: reply.id })}\n`);
    } catch (error) {
      socket.write(`${JSON.stringify({ error: errorMessage(error) })}\n`);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.listening.values()].map((l) => new Promise<void>((r) => l.server.close(() => r()))));
    this.listening.clear();
  }
}
