// The metric catalogue against what the exporter really creates, the documented list, the README and `carnx counters`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { createLogger } from '../../src/log/logger.js';
import { COUNTER_CATALOGUE, renderSeedTable, seedCounters } from '../../src/metrics/counter-catalogue.js';
import { COUNTER_INSTRUMENTS } from '../../src/metrics/counter-instruments.js';
import { HealthInstruments } from '../../src/metrics/health-instruments.js';
import { SYSTEM_NETWORK_METRICS } from '../../src/metrics/system-network-instruments.js';
import { MAIN } from '../fixtures/agent-process.js';
import { readDoc, repoPath } from '../fixtures/repo.js';

interface Documented {
  name: string;
  unit: string;
  kind: string;
  attributes: string[];
}
const DOCUMENTED: Documented[] = readDoc('test/deploy/exported-metrics.json').metrics;
const byName = new Map(COUNTER_CATALOGUE.map((e) => [e.name, e]));

/** The health instruments as the SDK exports them: created on a real MeterProvider and collected once. */
async function healthMetrics(): Promise<Array<{ name: string; unit: string; kind: string; description: string }>> {
  const reader = new PeriodicExportingMetricReader({
    exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
    exportIntervalMillis: 3_600_000,
  });
  const provider = new MeterProvider({ readers: [reader] });
  const health = new HealthInstruments(() => ({ 'xdp-native': 1 }), createLogger('silent'));
  health.bind(provider.getMeter('carnx'));
  health.recordAttachFailure('foreign-program');
  health.recordCollection(0.001);
  const { resourceMetrics } = await reader.collect();
  await provider.shutdown();
  const kinds: Record<number, string> = {
    [DataPointType.SUM]: 'sum',
    [DataPointType.GAUGE]: 'gauge',
    [DataPointType.HISTOGRAM]: 'histogram',
  };
  return resourceMetrics.scopeMetrics
    .flatMap((s) => s.metrics)
    .map((m) => ({
      name: m.descriptor.name,
      unit: m.descriptor.unit,
      kind: kinds[m.dataPointType] ?? '?',
      description: m.descriptor.description,
    }));
}

test('the catalogue lists exactly the metrics the exporter creates, with their units, kinds and meanings', async () => {
  const created = [
    ...COUNTER_INSTRUMENTS.map((i) => ({ name: i.name, unit: i.unit, kind: i.kind, description: i.description })),
    ...SYSTEM_NETWORK_METRICS.map((m) => ({ name: m.name, unit: m.unit, kind: 'sum', description: m.description })),
    ...(await healthMetrics()),
  ];
  const key = (m: { name: string; unit: string; kind: string; description: string }) =>
    `${m.name} ${m.unit} ${m.kind}: ${m.description}`;
  assert.equal(COUNTER_CATALOGUE.map((e) => key({ ...e, description: e.meaning })).sort(), created.map(key).sort());
});

test('test/deploy/exported-metrics.json lists every metric of the catalogue, unit, kind and attributes alike', () => {
  assert.equal(DOCUMENTED.map((d) => d.name).sort(), [...byName.keys()].sort());
  for (const doc of DOCUMENTED) {
    const entry = byName.get(doc.name);
    assert.ok(entry, `${doc.name} is missing from the catalogue`);
    assert.is(entry?.unit, doc.unit, doc.name);
    assert.is(entry?.kind, doc.kind, doc.name);
    const names = entry?.attributes.map((a) => a.name) ?? [];
    assert.equal([...doc.attributes].sort(), [...names].sort(), `${doc.name}: attributes`);
  }
});

test('attribute values are the ones the instruments export', () => {
  const packets = byName.get('carnx.packets');
  const values = (name: string) => packets?.attributes.find((a) => a.name === name)?.values;
  assert.equal(values('network.type'), ['ipv4', 'ipv6', 'arp', 'other']);
  assert.equal([...(values('network.transport') ?? [])].sort(), ['icmp', 'icmpv6', 'none', 'other', 'tcp', 'udp']);
  assert.equal(values('network.io.direction'), ['receive', 'transmit']);
  assert.equal(byName.get('carnx.tcp.flags')?.attributes.find((a) => a.name === 'tcp.flag')?.values, [
    'fin',
    'syn',
    'rst',
    'psh',
    'ack',
    'urg',
    'ece',
    'cwr',
  ]);
  assert.equal(byName.get('carnx.packet.size')?.attributes.length, 2, 'interface name and direction only');
});

test("the seed's ten counters, each read from a series its metric has", () => {
  const seeds = seedCounters();
  assert.equal(
    seeds.map((s) => s.seed),
    ['PKT', 'IP', 'IP6', 'TCP', 'UDP', 'ICMP', 'ICMP6', 'ARP', 'ACK', 'SYN'],
  );
  for (const { seed, metric, where } of seeds) {
    if (where === '') continue;
    const [name, value] = where.split('=');
    const attribute = byName.get(metric)?.attributes.find((a) => a.name === name);
    assert.ok(attribute?.values.includes(value ?? ''), `${seed}: ${metric} has no series ${where}`);
  }
});

test("README.md's seed table is generated from the catalogue (npm run docs)", () => {
  const readme = readFileSync(repoPath('README.md'), 'utf8');
  const section = readme.split('<!-- seed-counters:start -->')[1]?.split('<!-- seed-counters:end -->')[0];
  assert.ok(section, 'README.md has the seed-counters markers');
  assert.ok(section?.includes(renderSeedTable()), 'run npm run docs');
});

function carnx(...args: string[]): { status: number | null; stdout: string } {
  const run = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  return { status: run.status, stdout: run.stdout };
}

test('`carnx counters --json` prints the catalogue; the text names every metric with its unit and seed', () => {
  const json = carnx('counters', '--json');
  assert.is(json.status, 0);
  assert.equal(JSON.parse(json.stdout).metrics, JSON.parse(JSON.stringify(COUNTER_CATALOGUE)));
  const text = carnx('counters');
  assert.is(text.status, 0);
  for (const e of COUNTER_CATALOGUE) assert.ok(text.stdout.includes(`${e.name}  ${e.unit}  ${e.kind}`), e.name);
  for (const doc of DOCUMENTED) assert.ok(text.stdout.includes(`${doc.name}  ${doc.unit}`), doc.name);
  assert.match(text.stdout, 'replaces seed ICMP6: sum of the series with network.transport=icmpv6');
  const help = carnx('counters', '--help');
  assert.is(help.status, 0);
  assert.match(help.stdout, /^usage: carnx counters \[--json\]/);
  assert.is(carnx('counters', '--bogus').status, 2, 'anything but --json is refused');
});

test.run();
