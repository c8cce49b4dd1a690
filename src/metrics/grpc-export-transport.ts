// The OTLP/gRPC transport under the OTel export delegate: one grpc-js channel, replaced when an export failed on it unconnected.
import {
  Client,
  connectivityState,
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
 * grpc-js channel options. The OTel transport sets only the first two; its channel shares a subchannel from grpc-js's
 * global pool, whose reconnect backoff (1 s, x1.6, up to 120 s) keeps every export failing fast for up to two minutes
 * after a collector is back. A local pool gives each channel its own subchannel, so a replacement starts without it.
 */
export function channelOptions(settings: Pick<GrpcTransportSettings, 'compression' | 'userAgent'>): ChannelOptions {
  return {
    // grpc-js's compression algorithm numbers: 0 identity, 2 gzip.
    'grpc.default_compression_algorithm': settings.compression === 'gzip' ? 2 : 0,
    'grpc.primary_user_agent': settings.userAgent,
    'grpc.use_local_subchannel_pool': 1,
  };
}

/** Whether a failed export leaves the channel worth keeping: connected, and not missing deadline after deadline. */
function keepsChannel(state: connectivityState, deadlinesExceeded: number): boolean {
  return state === connectivityState.READY && deadlinesExceeded <= MAX_DEADLINES_EXCEEDED;
}

/**
 * Sends serialized OTLP requests as unary gRPC calls (no retries: the delegate reports each failure). After a failed
 * export the channel is kept only if it is still connected; otherwise it is closed and the next export opens a new
 * one that connects at once. During an outage carnx so makes one connection attempt per export, and the first export
 * after the collector accepts connections again goes through.
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
    if (client !== this.client) return; // an older channel's late outcome
    if (err.code === status.DEADLINE_EXCEEDED) this.deadlinesExceeded++;
    if (keepsChannel(client.getChannel().getConnectivityState(false), this.deadlinesExceeded)) return;
    this.client = undefined;
    client.close();
  }
}
