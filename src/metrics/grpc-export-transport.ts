// The OTLP/gRPC transport under the OTel export delegate: one grpc-js channel that retries its connection every second.
import {
  Client,
  type connectivityState,
  status,
  type ChannelCredentials,
  type ChannelOptions,
  type Metadata,
  type ServiceError,
} from '@grpc/grpc-js';
import type { ExportResponse, IExporterTransport } from '@opentelemetry/otlp-exporter-base';

/** The OTLP metrics service method (opentelemetry-proto collector/metrics/v1). */
export const METRICS_EXPORT_PATH = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';

/** Like the OTel transport: a channel whose exports keep missing their deadline may be dead; the next one is new. */
const MAX_DEADLINES_EXCEEDED = 5;

/**
 * How long a disconnected channel waits between connection attempts, first to last (grpc-js adds +-20% jitter). With
 * it, exports resume within about an export interval plus 1.2 s of the collector accepting connections.
 */
export const RECONNECT_MS = 1_000;

export interface GrpcTransportSettings {
  /** host:port, as the OTel configuration normalises the endpoint. */
  address: string;
  credentials: () => ChannelCredentials;
  /** otlp.headers merged with the OTEL_EXPORTER_OTLP_*HEADERS by the OTel configuration. */
  metadata: () => Metadata;
  compression: 'gzip' | 'none';
  userAgent: string;
}

/**
 * grpc-js channel options. The OTel transport sets only the first two, leaving grpc-js's reconnect backoff (1 s, x1.6,
 * up to 120 s): a channel whose collector was down for a minute or more fails every export at once, without trying,
 * for up to two more minutes after the collector is back. Here a down channel tries again every RECONNECT_MS, however
 * long the outage (a refused connection costs the collector nothing; exports in between fail at once, as before).
 * Replacing the channel after each failure instead would not do: a closed channel's subchannel still makes one more
 * attempt when its backoff ends, and keeps that connection if it succeeds. The local pool keeps the channel's
 * subchannel (and its backoff) its own, not shared with another client of the same target and options.
 */
export function channelOptions(settings: Pick<GrpcTransportSettings, 'compression' | 'userAgent'>): ChannelOptions {
  return {
    // grpc-js's compression algorithm numbers: 0 identity, 2 gzip.
    'grpc.default_compression_algorithm': settings.compression === 'gzip' ? 2 : 0,
    'grpc.primary_user_agent': settings.userAgent,
    'grpc.initial_reconnect_backoff_ms': RECONNECT_MS,
    'grpc.max_reconnect_backoff_ms': RECONNECT_MS,
    'grpc.use_local_subchannel_pool': 1,
  };
}

/**
 * Sends serialized OTLP requests as unary gRPC calls on one channel (no retries: the delegate reports each failure).
 * The channel reconnects by itself (channelOptions); it is replaced only after more than MAX_DEADLINES_EXCEEDED
 * exports in a row missed their deadline, as the OTel transport does.
 */
export class ReconnectingGrpcTransport implements IExporterTransport {
  private client: Client | undefined;
  private metadata: Metadata | undefined;
  private deadlinesExceeded = 0;
  private opened = 0;

  constructor(
    private readonly settings: GrpcTransportSettings,
    private readonly path: string = METRICS_EXPORT_PATH,
  ) {}

  send(data: Uint8Array, timeoutMillis: number): Promise<ExportResponse> {
    let client: Client;
    let metadata: Metadata;
    try {
      ({ client, metadata } = this.channel());
    } catch (error) {
      return Promise.resolve({ status: 'failure', error: error as Error });
    }
    const deadline = Date.now() + timeoutMillis;
    const identity = (b: Buffer): Buffer => b;
    return new Promise((resolve) => {
      client.makeUnaryRequest(
        this.path,
        identity,
        identity,
        Buffer.from(data.buffer, data.byteOffset, data.byteLength),
        metadata,
        { deadline },
        (err: ServiceError | null, response?: Buffer) => {
          if (err) {
            this.failedOn(client, err);
            resolve({ status: 'failure', error: err });
            return;
          }
          this.deadlinesExceeded = 0;
          resolve({ status: 'success', data: response });
        },
      );
    });
  }

  /** Channels opened so far (tests). */
  get channelsOpened(): number {
    return this.opened;
  }

  /** The state of the current channel, or undefined when none is open (tests). */
  state(): connectivityState | undefined {
    return this.client?.getChannel().getConnectivityState(false);
  }

  shutdown(): void {
    this.client?.close();
    this.client = undefined;
  }

  private channel(): { client: Client; metadata: Metadata } {
    if (this.client === undefined || this.metadata === undefined) {
      const metadata = this.settings.metadata();
      this.client = new Client(this.settings.address, this.settings.credentials(), channelOptions(this.settings));
      this.metadata = metadata;
      this.deadlinesExceeded = 0;
      this.opened++;
    }
    return { client: this.client, metadata: this.metadata };
  }

  private failedOn(client: Client, err: ServiceError): void {
    if (client !== this.client || err.code !== status.DEADLINE_EXCEEDED) return;
    if (++this.deadlinesExceeded <= MAX_DEADLINES_EXCEEDED) return;
    this.client = undefined;
    client.close();
  }
}
