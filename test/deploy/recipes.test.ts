// Collector recipes against the real collector, and the Grafana dashboard against the metric names carnx really exports.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { ValueType, type Attributes } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { collectorBinary } from '../fixtures/built-tools.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { freePort } from '../fixtures/collector.js';
import { command, commandResult } from '../fixtures/command.js';
import { readDoc, repoPath, type Doc } from '../fixtures/repo.js';
import { waitFor } from '../fixtures/wait.js';
import { reported } from '../fixtures/hooks.js';

const RECIPES = repoPath('config/collector');
interface ExportedMetric {
  name: string;
  unit: string;
  kind: 'sum' | 'gauge' | 'histogram';
  attributes: string[];
}
const EXPORTED: ExportedMetric[] = readDoc('test/deploy/exported-metrics.json').metrics;

/**
 * Components carnx's test collector lacks, that recipes may still use. Recipes using them are validated with those
 * exporters swapped for `debug`, so everything else in them (receivers, processors, pipelines) is still checked.
 */
const NOT_IN_TEST_COLLECTOR = new Set(['exporter datadog', 'exporter otlp_grpc', 'exporter otlp']);
/** Sample values for the environment variables the recipes read. */
const RECIPE_ENV = { DD_API_KEY: '0123456789abcdef0123456789abcdef', HONEYCOMB_API_KEY: 'ci-not-a-real-key' };

let otelcol = '';
let work = '';
const cleanups = new Cleanups();

/** "exporter datadog", "processor batch", ... for every component a collector config defines. */
function componentsOf(config: Doc): string[] {
  return (['receivers', 'processors', 'exporters', 'extensions', 'connectors'] as const).flatMap((section) =>
    Object.keys(config[section] ?? {}).map((id) => `${section.slice(0, -1)} ${id.split('/')[0]}`),
  );
}

function validate(file: string): { status: number | null; output: string } {
  const run = commandResult(otelcol, ['validate', '--config', file], RECIPE_ENV);
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

const Recipes = suite('collector recipes and dashboard');

Recipes.before(
  reported(() => {
    otelcol = collectorBinary();
    work = mkdtempSync(join(tmpdir(), 'carnx-recipes-'));
  }),
);

Recipes.after(async () => {
  await cleanups.run();
  if (work) rmSync(work, { recursive: true, force: true });
});

Recipes(
  'every recipe passes `validate`; components the test collector lacks are swapped for debug, nothing else',
  () => {
    const available = YAML.parse(command(otelcol, ['components'])) as Doc;
    const known = new Set(
      (['receivers', 'processors', 'exporters', 'extensions', 'connectors'] as const).flatMap((section) =>
        (available[section] ?? []).map((c: Doc) => `${section.slice(0, -1)} ${c.name}`),
      ),
    );
    const files = readdirSync(RECIPES)
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    for (const want of ['debug.yaml', 'datadog.yaml', 'honeycomb.yaml', 'prometheus.yaml', 'compose.yaml'])
      assert.ok(files.includes(want), want);
    const report: string[] = [];
    for (const file of files) {
      const config = readDoc('config/collector', file);
      const missing = componentsOf(config).filter((c) => !known.has(c));
      const unexpected = missing.filter((c) => !NOT_IN_TEST_COLLECTOR.has(c));
      assert.equal(unexpected, [], `${file} uses components neither in the test collector nor allowed to be missing`);
      let target = join(RECIPES, file);
      if (missing.length > 0) {
        const reduced = structuredClone(config);
        for (const id of Object.keys(reduced.exporters)) {
          if (!missing.includes(`exporter ${id.split('/')[0]}`)) continue;
          delete reduced.exporters[id];
          for (const pipeline of Object.values(reduced.service.pipelines) as Doc[]) {
            pipeline.exporters = [...new Set(pipeline.exporters.map((e: string) => (e === id ? 'debug' : e)))];
          }
        }
        reduced.exporters.debug ??= {};
        target = join(work, file);
        writeFileSync(target, YAML.stringify(reduced));
        report.push(`${file}: validated without ${missing.join(', ')} (not in the test collector)`);
      }
      const run = validate(target);
      assert.is(run.status, 0, `${file}: ${run.output}`);
    }
    if (report.length > 0) console.log(`\n  ${report.join('\n  ')}`);
  },
);

/** How a collector config reads an environment variable: `${env:NAME}`, expanded by the collector, not here. */
const collectorEnv = (name: string) => `\${env:${name}}`;

Recipes('recipes: Datadog gets deltas and its key from the environment; Honeycomb gets TLS and both headers', () => {
  const datadog = readDoc('config/collector', 'datadog.yaml');
  assert.is(datadog.exporters.datadog.api.key, collectorEnv('DD_API_KEY'));
  assert.ok(datadog.service.pipelines.metrics.processors.includes('cumulative_to_delta'));
  const honeycomb = readDoc('config/collector', 'honeycomb.yaml');
  const [id, exporter] = Object.entries(honeycomb.exporters as Doc)[0]!;
  assert.match(id, /^otlp_grpc\b/);
  assert.match(exporter.endpoint, /api\.honeycomb\.io:443/);
  assert.not.match(exporter.endpoint, /^http:/, 'plaintext to Honeycomb');
  assert.is(exporter.tls?.insecure, undefined);
  assert.equal(Object.keys(exporter.headers).sort(), ['x-honeycomb-dataset', 'x-honeycomb-team']);
  assert.is(exporter.headers['x-honeycomb-team'], collectorEnv('HONEYCOMB_API_KEY'));
});

/** carnx's Prometheus families: its own (carnx_*) and the kernel's interface counters it exports (system_network_*). */
const CARNX_FAMILY = /^# TYPE ((?:carnx|system_network)_\S+) (\S+)$/gm;

/** The Prometheus families and label names the compose stack's collector makes of one point of every exported metric. */
async function prometheusNames(): Promise<{ families: Map<string, string>; labels: Set<string> }> {
  const [otlpPort, promPort] = [await freePort(), await freePort()];
  // The compose stack's own collector config, moved to loopback test ports.
  const collector = spawn(
    otelcol,
    [
      '--config',
      join(RECIPES, 'compose.yaml'),
      '--set',
      `receivers::otlp::protocols::grpc::endpoint=127.0.0.1:${otlpPort}`,
      '--set',
      `exporters::prometheus::endpoint=127.0.0.1:${promPort}`,
      '--set',
      'service::telemetry::metrics::level=none',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  cleanups.add(collector, async (child) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  });
  let collectorLog = '';
  collector.stderr!.setEncoding('utf8').on('data', (c: string) => {
    collectorLog += c;
  });

  const resource = resourceFromAttributes({
    'service.name': 'carnx',
    'service.instance.id': 'node-a',
    'host.name': 'node-a',
  });
  const reader = new PeriodicExportingMetricReader({
    exporter: new OTLPMetricExporter({ url: `http://127.0.0.1:${otlpPort}` }),
    exportIntervalMillis: 3_600_000,
  });
  const provider = new MeterProvider({ resource, readers: [reader] });
  const meter = provider.getMeter('carnx');
  for (const m of EXPORTED) {
    const attributes: Attributes = Object.fromEntries(m.attributes.map((a) => [a, 'x']));
    const options = { unit: m.unit, valueType: ValueType.INT };
    if (m.kind === 'sum') meter.createObservableCounter(m.name, options).addCallback((r) => r.observe(1, attributes));
    else if (m.kind === 'gauge')
      meter.createObservableGauge(m.name, options).addCallback((r) => r.observe(1, attributes));
    else meter.createHistogram(m.name, { unit: m.unit }).record(1, attributes);
  }
  let body = '';
  const familiesIn = (text: string) => [...text.matchAll(CARNX_FAMILY)].length;
  const text = await waitFor(
    `the collector to expose all ${EXPORTED.length} metrics`,
    async () => {
      await reader.forceFlush().catch(() => undefined); // the collector may still be starting: send again
      body = await fetch(`http://127.0.0.1:${promPort}/metrics`).then(
        (r) => r.text(),
        () => '',
      );
      return familiesIn(body) >= EXPORTED.length && body;
    },
    20_000,
    100,
  ).catch((err: Error) => {
    throw new Error(`${err.message}: it exposed ${familiesIn(body)}\n${body}\n${collectorLog}`);
  });
  await provider.shutdown();
  const families = new Map<string, string>();
  for (const [, name, type] of text.matchAll(CARNX_FAMILY)) families.set(name!, type!);
  const labels = new Set<string>();
  for (const [, inner] of text.matchAll(/^(?:carnx|system_network)_\S*?\{([^}]*)\}/gm))
    for (const [, l] of inner!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(l!);
  return { families, labels };
}

/** Metric and label names one PromQL expression (or Grafana label_values query) refers to. */
function promqlRefs(expr: string): { metrics: string[]; labels: string[] } {
  const labelValues = /^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(expr.trim());
  if (labelValues) {
    const inner = promqlRefs(labelValues[1]!);
    return { metrics: inner.metrics, labels: [...inner.labels, labelValues[2]!] };
  }
  const labels: string[] = [];
  let s = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  s = s.replace(/\{([^}]*)\}/g, (_m, inner: string) => {
    for (const [, l] of inner.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) labels.push(l!);
    return ' ';
  });
  s = s.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_m, inner: string) => {
    labels.push(
      ...inner
        .split(',')
        .map((l) => l.trim())
        .filter((l) => l !== ''),
    );
    return ' ';
  });
  s = s.replace(/\[[^\]]*\]/g, ' ').replace(/\$\{?\w+\}?/g, ' ');
  const keywords = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);
  const metrics = [...s.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)]
    .map((m) => m[1]!)
    .filter((m) => !keywords.has(m.toLowerCase()));
  return { metrics, labels };
}

Recipes('promqlRefs finds metrics and labels, not functions or Grafana variables', () => {
  assert.equal(promqlRefs('8 * sum by (instance, le) (rate(carnx_bytes_total{a=~"$x",b!="y"}[$__rate_interval]))'), {
    metrics: ['carnx_bytes_total'],
    labels: ['a', 'b', 'instance', 'le'],
  });
  assert.equal(promqlRefs('label_values(carnx_packets_total{instance=~"$instance"}, network_interface_name)'), {
    metrics: ['carnx_packets_total'],
    labels: ['instance', 'network_interface_name'],
  });
});

Recipes(
  'every dashboard query names metrics and labels carnx really exports, and every metric is on the dashboard',
  async () => {
    const { families, labels } = await prometheusNames();
    assert.is(families.size, EXPORTED.length, `families: ${[...families.keys()].join(', ')}`);
    const series = new Set(
      [...families].flatMap(([name, type]) =>
        type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name],
      ),
    );
    const dashboard = readDoc('config/grafana/dashboards/carnx.json');
    const queries: Array<{ where: string; expr: string }> = [
      ...(dashboard.templating.list as Doc[]).map((v) => ({
        where: `variable ${v.name}`,
        expr: v.query.query ?? v.query,
      })),
      ...(dashboard.panels as Doc[])
        .filter((p) => p.type !== 'row')
        .flatMap((p) => {
          assert.ok((p.targets ?? []).length > 0, `panel "${p.title}" has no query`);
          return (p.targets as Doc[]).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr as string }));
        }),
    ];
    const used = new Set<string>();
    for (const { where, expr } of queries) {
      const refs = promqlRefs(expr);
      assert.ok(refs.metrics.length > 0, `${where}: no metric in ${expr}`);
      for (const m of refs.metrics) {
        assert.ok(series.has(m), `${where}: ${m} is not a series carnx exports (${[...series].join(', ')})`);
        used.add(m.replace(/_(bucket|sum|count)$/, ''));
      }
      for (const l of refs.labels)
        assert.ok(labels.has(l) || l === 'le', `${where}: label ${l} is not on any exported series`);
    }
    const unused = [...families.keys()].filter((f) => !used.has(f));
    assert.equal(unused, [], 'metrics missing from the dashboard');
    // Every panel reads the provisioned datasource.
    const datasource = readDoc('config/grafana/provisioning/datasources/prometheus.yaml').datasources[0];
    for (const panel of (dashboard.panels as Doc[]).filter((p) => p.type !== 'row'))
      assert.is(panel.datasource.uid, datasource.uid, panel.title);
  },
);

Recipes('the compose stack is wired end to end: collector port, Prometheus target, Grafana provisioning paths', () => {
  const compose = readDoc('docker-compose.yml');
  const collector = readDoc('config/collector', 'compose.yaml');
  const prometheus = readDoc('config/prometheus/prometheus.yml');
  const exporterPort = (collector.exporters.prometheus.endpoint as string).split(':').pop();
  assert.equal(prometheus.scrape_configs[0].static_configs[0].targets, [`otel-collector:${exporterPort}`]);
  assert.is(prometheus.scrape_configs[0].honor_labels, true);
  assert.ok(compose.services['otel-collector'], 'an otel-collector service');
  assert.ok(
    (compose.services['otel-collector'].volumes as string[]).some((v) =>
      v.startsWith('./config/collector/compose.yaml:'),
    ),
  );
  assert.ok(
    (compose.services.prometheus.volumes as string[]).some((v) => v.startsWith('./config/prometheus/prometheus.yml:')),
  );
  const datasource = readDoc('config/grafana/provisioning/datasources/prometheus.yaml').datasources[0];
  assert.is(datasource.url, 'http://prometheus:9090');
  const provider = readDoc('config/grafana/provisioning/dashboards/carnx.yaml').providers[0];
  const grafanaVolumes = compose.services.grafana.volumes as string[];
  assert.ok(
    grafanaVolumes.includes(`./config/grafana/dashboards:${provider.options.path}:ro`),
    'dashboards mounted where the provider looks',
  );
  assert.ok(grafanaVolumes.includes('./config/grafana/provisioning:/etc/grafana/provisioning:ro'));
  // carnx (host network) sends to the port the collector publishes on the host's loopback.
  const agent = readDoc('config/carnx.compose.yaml');
  const receiverPort = (collector.receivers.otlp.protocols.grpc.endpoint as string).split(':').pop();
  assert.ok(
    (compose.services['otel-collector'].ports as string[]).includes(
      `127.0.0.1:${new URL(agent.otlp.endpoint).port}:${receiverPort}`,
    ),
  );
});

Recipes.run();
