// TLS to a collector with a self-signed CA: the right CA exports, a wrong CA fails closed, and no byte goes out in plaintext.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestBpffs, startAgent, testBpffs } from '../fixtures/agent-process.js';
import { TestCollector } from '../fixtures/collector.js';
import { requireRoot } from '../fixtures/privileges.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { quietPair } from '../fixtures/netns.js';
import { waitFor } from '../fixtures/wait.js';
import { reported } from '../fixtures/hooks.js';
import { EXPORT_FAILED } from '../../src/metrics/otlp-exporter.js';

const TLS_HANDSHAKE = 0x16; // the first byte of every TLS record that opens a connection
const HTTP2_PREFACE = 'PRI * HTTP/2.0';

const Tls = suite('e2e: TLS to the collector');
const cleanups = new Cleanups();
let work = '';
let pki: { ca: string; wrongCa: string; cert: string; key: string };

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA, a server certificate it signs for 127.0.0.1 and localhost, and an unrelated CA. */
function makePki(): typeof pki {
  for (const name of ['ca', 'wrong-ca']) {
    openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-subj',
      `/CN=carnx test ${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
    );
  }
  openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
    '-subj',
    '/CN=carnx test collector',
  );
  writeFileSync(join(work, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'server.ext',
  );
  return {
    ca: join(work, 'ca.pem'),
    wrongCa: join(work, 'wrong-ca.pem'),
    cert: join(work, 'server.pem'),
    key: join(work, 'server.key'),
  };
}

/** A TCP relay in front of the collector that keeps the first bytes the agent sends on each connection. */
async function recordingRelay(
  targetPort: number,
): Promise<{ port: number; openings: Buffer[]; close: () => Promise<void> }> {
  const openings: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(upstream);
    let first = true;
    client.on('data', (chunk: Buffer) => {
      if (first) openings.push(Buffer.from(chunk.subarray(0, 32)));
      first = false;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    openings,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

Tls.before(
  reported(() => {
    requireRoot('the e2e tests');
    work = mkdtempSync(join(tmpdir(), 'carnx-e2e-tls-'));
    pki = makePki();
  }),
);
Tls.after.each(() => cleanups.run());
Tls.after(() => rmSync(work, { recursive: true, force: true }));

Tls(
  'the right CA: exports arrive over TLS (https:// and host:port); a wrong CA: fails closed, never plaintext',
  async () => {
    const pair = quietPair(cleanups, 't');
    const collector = cleanups.add(await TestCollector.start({ tls: { cert: pki.cert, key: pki.key } }), (c) =>
      c.destroy(),
    );
    const relay = cleanups.add(await recordingRelay(collector.otlpPort), (r) => r.close());
    const fromRun = (run: string) => collector.points().filter((p) => p.resource['carnx.test.run'] === run);
    const run = (name: string, endpoint: string, ca: string, bpffs: TestBpffs) =>
      startAgent(cleanups, bpffs, pair.host, [
        '--otlp-endpoint',
        endpoint,
        '--otlp-tls-ca',
        ca,
        '--export-interval-ms',
        '300',
        '--otlp-timeout-ms',
        '1000',
        '--resource-attributes',
        `carnx.test.run=${name}`,
        '--log-level',
        'info',
      ]);

    const right = run('right-ca', `https://127.0.0.1:${relay.port}`, pki.ca, testBpffs(cleanups, 'e2e-tls-1'));
    await waitFor('exports with the right CA', () => fromRun('right-ca').length > 0, 15_000);
    assert.is(right.lines.filter((l) => l.msg.startsWith('metrics export failed')).length, 0, 'no export failed');
    assert.is((await right.stop()).code, 0);

    const schemeless = run('no-scheme', `127.0.0.1:${relay.port}`, pki.ca, testBpffs(cleanups, 'e2e-tls-2'));
    await waitFor('exports to host:port (TLS by default)', () => fromRun('no-scheme').length > 0, 15_000);
    assert.is((await schemeless.stop()).code, 0);
    const connectionsSoFar = relay.openings.length;
    assert.ok(connectionsSoFar >= 2, 'both agents connected through the relay');

    const wrong = run('wrong-ca', `https://127.0.0.1:${relay.port}`, pki.wrongCa, testBpffs(cleanups, 'e2e-tls-3'));
    const failed = await wrong.waitForMsg(EXPORT_FAILED, {}, 15_000);
    // Keep it failing for a while: many export attempts, reconnections included.
    await waitFor(
      'several connection attempts with the wrong CA',
      () => relay.openings.length >= connectionsSoFar + 3,
      15_000,
    );
    assert.is((await wrong.stop()).code, 0);
    const openings = relay.openings.map((b) => ({ first: b[0], text: b.toString('latin1') }));
    assert.not.ok(
      openings.some((o) => o.text.startsWith(HTTP2_PREFACE)),
      'no plaintext HTTP/2 connection, ever',
    );
    assert.ok(
      openings.every((o) => o.first === TLS_HANDSHAKE),
      `every connection opened with a TLS handshake: ${openings.map((o) => o.first).join(',')}`,
    );
    assert.equal(fromRun('wrong-ca'), [], 'nothing from the wrong-CA agent reached the collector');
    assert.is(wrong.lines.filter((l) => l.msg === 'export recovered').length, 0, 'it never recovered');
    assert.match(String(failed.error), /certificate|self.signed|unable to verify|handshake/i, 'the failure says why');
  },
);

Tls(
  'no otlp.tls.ca: the system store (SSL_CERT_FILE, a temporary file here) is trusted, with its source logged',
  async () => {
    const pair = quietPair(cleanups, 't');
    const collector = cleanups.add(await TestCollector.start({ tls: { cert: pki.cert, key: pki.key } }), (c) =>
      c.destroy(),
    );
    const agent = startAgent(
      cleanups,
      testBpffs(cleanups, 'e2e-tls-system'),
      pair.host,
      [
        '--otlp-endpoint',
        `https://127.0.0.1:${collector.otlpPort}`,
        '--export-interval-ms',
        '300',
        '--resource-attributes',
        'carnx.test.run=system-store',
      ],
      { SSL_CERT_FILE: pki.ca },
    );
    await waitFor(
      'exports trusted through the system store',
      () => collector.points().some((p) => p.resource['carnx.test.run'] === 'system-store'),
      15_000,
    );
    assert.is((await agent.stop()).code, 0);
    assert.is(agent.lines.find((l) => l.msg === 'exporting metrics over OTLP/gRPC')?.trustedRoots, pki.ca);
  },
);

Tls.run();
