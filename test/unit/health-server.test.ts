// The health endpoint: /livez and /readyz answers, and a stop that no keep-alive client can hold up.
import { request, type Agent as HttpAgent } from 'node:http';
import { connect } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HealthServer } from '../../src/health/health-server.js';
import { within } from '../fixtures/wait.js';

function get(port: number, path: string, agent?: HttpAgent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('/livez and /readyz answer from the probe; unknown paths are 404', async () => {
  let ready = { ready: false, reason: 'no export has completed yet' };
  const server = new HealthServer({ host: '127.0.0.1', port: 0 }, { live: () => true, ready: () => ready });
  const port = await server.start();
  try {
    assert.equal(await get(port, '/livez'), { status: 200, body: 'ok\n' });
    assert.equal(await get(port, '/readyz'), { status: 503, body: 'no export has completed yet\n' });
    ready = { ready: true, reason: 'counting on 1 interface(s), exporting' };
    assert.equal(await get(port, '/readyz?verbose'), { status: 200, body: 'counting on 1 interface(s), exporting\n' });
    assert.is((await get(port, '/metrics')).status, 404);
  } finally {
    await server.stop();
  }
});

test('stop() does not wait for a client that is slow to send its request', async () => {
  const server = new HealthServer(
    { host: '127.0.0.1', port: 0 },
    { live: () => true, ready: () => ({ ready: true, reason: 'ok' }) },
  );
  const port = await server.start();
  // Half a request: Node's server keeps such a connection (it is not idle) until its headers timeout, a minute.
  const slow = connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => slow.once('connect', () => resolve()));
  slow.write('GET /livez HTTP/1.1\r\nHost: carnx\r\n');
  try {
    await within(server.stop(), 1_000, 'the health server to stop with a slow client connected');
  } finally {
    slow.destroy();
  }
});

test.run();
