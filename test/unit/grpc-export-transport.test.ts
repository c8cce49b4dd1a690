// The export transport's reconnect behaviour against real loopback gRPC servers, and the grpc-js pool behaviour it relies on.
import { test } from 'uvu';
import net from 'node:net';
import * as assert from 'uvu/assert';
import {
  Client,
  Metadata,
  connectivityState,
  Server,
  ServerCredentials,
  credentials,
  status,
  type ServiceError,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import {
  METRICS_EXPORT_PATH,
  ReconnectingGrpcTransport,
  channelOptions,
} from '../../src/metrics/grpc-export-transport.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { waitFor } from '../fixtures/wait.js';

const identity = (b: Buffer): Buffer => b;
const REQUEST = new Uint8Array([1, 2, 3]);

type Answer = 'ok' | 'unavailable' | 'never';

/** A loopback gRPC server with the OTLP metrics Export method, answering as told; its port survives stop/start. */
class ExportServer {
  answer: Answer = 'ok';
  received = 0;
  private server: Server | undefined;
  port = 0;

  async start(port = 0): Promise<number> {
    const server = new Server();
    const method = {
      path: METRICS_EXPORT_PATH,
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    };
    const handler: UntypedServiceImplementation = {
      Export: (_call: unknown, callback: (err: Partial<ServiceError> | null, value?: Buffer) => void) => {
        this.received++;
        if (this.answer === 'ok') callback(null, Buffer.alloc(0));
        else if (this.answer === 'unavailable') callback({ code: status.UNAVAILABLE, details: 'overloaded' });
      },
    };
    server.addService({ Export: method }, handler);
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, bound) =>
        err ? reject(err) : resolve(bound),
      ),
    );
    this.server = server;
    return this.port;
  }

  stop(): void {
    this.server?.forceShutdown();
    this.server = undefined;
  }
}

const cleanups = new Cleanups();
test.after.each(() => cleanups.run());

function transportTo(port: number, compression: 'gzip' | 'none' = 'none'): ReconnectingGrpcTransport {
  const transport = new ReconnectingGrpcTransport({
    address: `127.0.0.1:${port}`,
    credentials: () => credentials.createInsecure(),
    metadata: () => new Metadata(),
    compression,
    userAgent: 'carnx-test',
  });
  return cleanups.add(transport, (t) => t.shutdown());
}

/** A port nothing listens on now, that an ExportServer can take later. */
async function downServer(): Promise<ExportServer> {
  const server = cleanups.add(new ExportServer(), (s) => s.stop());
  await server.start();
  server.stop();
  return server;
}

/** One unary Export call on a plain grpc-js client: its status code (0 for OK). */
function callCode(client: Client): Promise<number> {
  return new Promise((resolve) =>
    client.makeUnaryRequest(
      METRICS_EXPORT_PATH,
      identity,
      identity,
      Buffer.from(REQUEST),
      new Metadata(),
      { deadline: Date.now() + 2_000 },
      (err) => resolve(err?.code ?? 0),
    ),
  );
}

test('grpc-js: a new client with the same options inherits the failed subchannel (global pool); a local pool does not', async () => {
  const server = await downServer();
  const target = `127.0.0.1:${server.port}`;
  const withOptions = (local: boolean) => {
    const options = { ...channelOptions({ compression: 'none', userAgent: 'carnx-test' }) };
    if (!local) delete options['grpc.use_local_subchannel_pool'];
    return cleanups.add(new Client(target, credentials.createInsecure(), options), (c) => c.close());
  };
  // What the OTel transport does: one client per exporter, from the global pool.
  assert.is(await callCode(withOptions(false)), status.UNAVAILABLE, 'nothing listens yet');
  await server.start(server.port);
  assert.is(
    await callCode(withOptions(false)),
    status.UNAVAILABLE,
    'a fresh global-pool client fails at once: it shares the subchannel in reconnect backoff',
  );
  server.stop();
  assert.is(await callCode(withOptions(true)), status.UNAVAILABLE, 'nothing listens again');
  await server.start(server.port);
  assert.is(await callCode(withOptions(true)), status.OK, 'a fresh local-pool client connects at once');
});

test('a channel that keeps failing to connect tries again about every second, and exports resume once it connects', async () => {
  const server = await downServer();
  const transport = transportTo(server.port);
  // A listener that drops every connection: each one is a failed attempt, timed.
  const attempts: number[] = [];
  const dropper = net.createServer((socket) => {
    attempts.push(performance.now());
    socket.destroy();
  });
  await new Promise<void>((resolve) => dropper.listen(server.port, '127.0.0.1', resolve));
  const closeDropper = () => new Promise<void>((resolve) => dropper.close(() => resolve()));
  cleanups.add(dropper, closeDropper);
  assert.is((await transport.send(REQUEST, 2_000)).status, 'failure', 'the first export finds no collector');
  // grpc-js's default backoff would wait 1, 1.6, then 2.56 s (+-20%): the third gap shows the difference.
  await waitFor('five connection attempts', () => attempts.length >= 5, 10_000);
  const gaps = attempts.slice(1).map((t, k) => Math.round(t - attempts[k]!));
  assert.ok(Math.max(...gaps) <= 1_800, `attempts at most ~1.2 s apart however many failed: ${gaps.join(', ')} ms`);
  await closeDropper();
  assert.is(transport.channelsOpened, 1, 'one channel throughout');

  await server.start(server.port);
  await waitFor('the channel to connect by itself', () => transport.state() === connectivityState.READY, 5_000);
  assert.is((await transport.send(REQUEST, 2_000)).status, 'success', 'the next export goes through');
  assert.is(server.received, 1);
});

test('a failure answered on a connected channel keeps the channel', async () => {
  const server = cleanups.add(new ExportServer(), (s) => s.stop());
  const transport = transportTo(await server.start(), 'gzip');
  server.answer = 'unavailable';
  for (let i = 0; i < 3; i++) assert.is((await transport.send(REQUEST, 2_000)).status, 'failure');
  server.answer = 'ok';
  assert.is((await transport.send(REQUEST, 2_000)).status, 'success');
  assert.is(server.received, 4);
  assert.is(transport.channelsOpened, 1, 'the collector answered: its connection was fine');
});

test('more than 5 exports in a row past their deadline on a connected channel: the next export opens a new one', async () => {
  const server = cleanups.add(new ExportServer(), (s) => s.stop());
  const transport = transportTo(await server.start());
  assert.is((await transport.send(REQUEST, 2_000)).status, 'success');
  server.answer = 'never';
  for (let i = 0; i < 5; i++) {
    const response = await transport.send(REQUEST, 100);
    assert.is(response.status === 'failure' && (response.error as ServiceError).code, status.DEADLINE_EXCEEDED);
  }
  assert.is(transport.channelsOpened, 1, 'five missed deadlines: still the same channel');
  assert.is((await transport.send(REQUEST, 100)).status, 'failure');
  server.answer = 'ok';
  assert.is((await transport.send(REQUEST, 2_000)).status, 'success');
  assert.is(transport.channelsOpened, 2, 'the sixth missed deadline replaced the channel');
});

test('channel options: compression, user agent, a reconnect backoff of 1 s at most, a local subchannel pool', () => {
  assert.equal(channelOptions({ compression: 'gzip', userAgent: 'ua' }), {
    'grpc.default_compression_algorithm': 2,
    'grpc.primary_user_agent': 'ua',
    'grpc.initial_reconnect_backoff_ms': 1_000,
    'grpc.max_reconnect_backoff_ms': 1_000,
    'grpc.use_local_subchannel_pool': 1,
  });
  assert.is(channelOptions({ compression: 'none', userAgent: 'ua' })['grpc.default_compression_algorithm'], 0);
});

test('unusable metadata or credentials: a failed export, not a throw', async () => {
  const transport = cleanups.add(
    new ReconnectingGrpcTransport({
      address: '127.0.0.1:1',
      credentials: () => credentials.createInsecure(),
      metadata: () => {
        throw new Error('bad header');
      },
      compression: 'none',
      userAgent: 'carnx-test',
    }),
    (t) => t.shutdown(),
  );
  const response = await transport.send(REQUEST, 100);
  assert.is(response.status === 'failure' && response.error.message, 'bad header');
});

test.run();
