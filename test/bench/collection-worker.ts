// One process of the collection benchmark: carnx's metrics pipeline over synthetic counters, libbpf loaded (mode carnx),
// or a bare OpenTelemetry SDK exporting the same series (mode bare), each exporting to the sink N times; prints CPU, RSS.
import { readFileSync } from 'node:fs';
import { ValueType, type Attributes } from '@opentelemetry/api';
import { credentials } from '@grpc/grpc-js';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { SIZE_BUCKET_BOUNDS } from '../../src/bpf/counter-layout.js';
import { libbpf } from '../../src/bpf/libbpf.js';
import { loadConfig } from '../../src/config/load-config.js';
import { createLogger } from '../../src/log/logger.js';
import { COUNTER_INSTRUMENTS } from '../../src/metrics/counter-instruments.js';
import { MetricsPipeline } from '../../src/metrics/metrics-pipeline.js';
import { SYSTEM_NETWORK_METRICS } from '../../src/metrics/system-network-instruments.js';
import { readSnapshots } from '../../src/reader/counter-reader.js';
import { benchName, fakeAttachments, fakeLibbpf, perCpuValue } from './collection-data.js';

export interface WorkerArgs {
  mode: 'carnx' | 'bare';
  interfaces: number;
  /** Exports measured, after WARMUP ones. */
  exports: number;
  port: number;
  compression: 'gzip' | 'none';
  /** Possible CPUs of the synthetic per-CPU values (carnx mode). */
  cpus: number;
  /** The /proc/net/dev that lists the bench interfaces (carnx mode). */
  netDev: string;
}

export interface WorkerResult {
  mode: WorkerArgs['mode'];
  interfaces: number;
  exports: number;
  /** User + system CPU of the whole process per collection + export. */
  cpuMsPerExport: number;
  rssMb: number;
  /** Peak RSS (VmHWM). */
  peakRssMb: number;
}

const WARMUP = 5;
const DIRECTIONS = ['receive', 'transmit'] as const;

/** Collects and exports once, resolving when the export has an outcome. */
type ExportOnce = () => Promise<void>;

function carnx(args: WorkerArgs): { exportOnce: ExportOnce; done: () => Promise<void> } {
  // The agent has libbpf loaded through koffi: so does this process, for a fair RSS (its reads stay synthetic).
  libbpf().possibleCpus();
  const lib = fakeLibbpf(
    Array.from({ length: args.interfaces }, (_, i) => perCpuValue(args.cpus, i)),
    args.cpus,
  );
  const attachments = fakeAttachments(args.interfaces, DIRECTIONS);
  const names = Array.from({ length: args.interfaces }, (_, i) => benchName(i));
  const logger = createLogger('warn', { write: () => {} });
  const config = loadConfig({
    argv: [
      '--otlp-endpoint',
      `http://127.0.0.1:${args.port}`,
      '--otlp-compression',
      args.compression,
      '--export-interval-ms',
      '3600000',
    ],
    env: {},
  });
  const pipeline = new MetricsPipeline({
    config,
    logger,
    source: () => readSnapshots(lib, attachments, logger),
    packageVersion: '0.1.0',
    attachedByHook: () => ({ 'xdp-native': args.interfaces, 'tc-egress': args.interfaces }),
    countedInterfaces: () => names,
    procNetDev: args.netDev,
    env: {},
  });
  pipeline.start();
  return {
    exportOnce: () => pipeline.forceCollectAndExport(),
    done: async () => {
      await pipeline.stop(2000);
    },
  };
}

/** The same series from observable counters (values fixed) and one histogram, the way an SDK user would write it. */
function bare(args: WorkerArgs): { exportOnce: ExportOnce; done: () => Promise<void> } {
  const exporter = new OTLPMetricExporter({
    url: `http://127.0.0.1:${args.port}`,
    credentials: credentials.createInsecure(),
    compression: args.compression as never,
  });
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': 'bare', 'host.name': 'bench' }),
    readers: [reader],
  });
  const meter = provider.getMeter('bare', '0.1.0');
  const series = Array.from({ length: args.interfaces }, (_, i) =>
    DIRECTIONS.map((direction) => ({ 'network.interface.name': benchName(i), 'network.io.direction': direction })),
  ).flat();
  for (const instrument of COUNTER_INSTRUMENTS) {
    if (instrument.kind === 'histogram') {
      const histogram = meter.createHistogram(instrument.name, {
        unit: instrument.unit,
        description: instrument.description,
        valueType: ValueType.INT,
        advice: { explicitBucketBoundaries: [...SIZE_BUCKET_BOUNDS] },
      });
      for (const attributes of series) histogram.record(600, attributes);
      continue;
    }
    const attributeSets: Attributes[] = series.flatMap((s) => instrument.attributes.map((own) => ({ ...s, ...own })));
    meter
      .createObservableCounter(instrument.name, {
        unit: instrument.unit,
        description: instrument.description,
        valueType: ValueType.INT,
      })
      .addCallback((result) => {
        for (const attributes of attributeSets) result.observe(123_456_789, attributes);
      });
  }
  for (const m of SYSTEM_NETWORK_METRICS) {
    meter
      .createObservableCounter(m.name, { unit: m.unit, description: m.description, valueType: ValueType.INT })
      .addCallback((result) => {
        for (const attributes of series) result.observe(987_654_321, attributes);
      });
  }
  return { exportOnce: () => provider.forceFlush(), done: () => provider.shutdown() };
}

function peakRssMb(): number {
  const kb = Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? Number.NaN);
  return kb / 1024;
}

export async function runWorker(args: WorkerArgs): Promise<WorkerResult> {
  const side = args.mode === 'carnx' ? carnx(args) : bare(args);
  for (let i = 0; i < WARMUP; i++) await side.exportOnce();
  const before = process.cpuUsage();
  for (let i = 0; i < args.exports; i++) await side.exportOnce();
  const used = process.cpuUsage(before);
  const result: WorkerResult = {
    mode: args.mode,
    interfaces: args.interfaces,
    exports: args.exports,
    cpuMsPerExport: (used.user + used.system) / 1000 / args.exports,
    rssMb: process.memoryUsage().rss / 1024 / 1024,
    peakRssMb: peakRssMb(),
  };
  await side.done();
  return result;
}

if (process.argv[2] !== undefined) {
  const result = await runWorker(JSON.parse(process.argv[2]) as WorkerArgs);
  console.log(JSON.stringify(result));
}
