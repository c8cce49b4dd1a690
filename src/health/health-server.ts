// Serves /livez and /readyz on health.listen so kubelet and systemd can see the agent's real state.
import http from 'node:http';
import { HealthListenError } from './health-listen-error.js';
import type { Readiness } from './readiness.js';

export interface HealthProbe {
  /** The agent is running (not stopping). */
  live(): boolean;
  /** Attached somewhere and exports are not failing; the reason says what is missing. */
  ready(): Readiness;
}

/** Where to listen; port 0 picks a free one (start() returns it). */
export interface ListenAddress {
  host: string;
  port: number;
}

export class HealthServer {
  readonly #server: http.Server;
  readonly #address: ListenAddress;

  constructor(address: ListenAddress, probe: HealthProbe) {
    this.#address = address;
    this.#server = http.createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      const answer = (ok: boolean, body: string) => {
        res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
        res.end(`${body}\n`);
      };
      if (path === '/livez') return answer(probe.live(), probe.live() ? 'ok' : 'stopping');
      if (path === '/readyz') {
        const { ready, reason } = probe.ready();
        return answer(ready, reason);
      }
      res.writeHead(404).end();
    });
  }

  /** Listens; a refused address (port taken, host not local) rejects with a HealthListenError naming it. */
  async start(): Promise<number> {
    const { host, port } = this.#address;
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new HealthListenError(host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`, err)),
      );
      this.#server.listen(port, host, () => resolve());
    });
    this.#server.unref();
    return (this.#server.address() as { port: number }).port;
  }

  /**
   * Stops listening and drops open connections: close() alone waits for every keep-alive client to hang up, so a
   * slow or idle prober could hold the agent's shutdown.
   */
  stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    return closed;
  }
}
