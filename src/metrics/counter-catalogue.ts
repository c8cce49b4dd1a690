// Every metric carnx exports, in one table: unit, kind, attributes and their values, meaning, and the seed counters
// each replaces. `carnx counters`, the README's tables and the tests read it; the exporter's tables feed it.
import { HOOKS } from '../attach/attach-hooks.js';
import { ATTR, COUNTER_INSTRUMENTS, type CounterInstrument } from './counter-instruments.js';
import { SYSTEM_NETWORK_METRICS } from './system-network-instruments.js';

export type MetricKind = 'sum' | 'gauge' | 'histogram';

/** One attribute of a metric; `values` empty when it is free-form (an interface name). */
export interface CatalogueAttribute {
  name: string;
  values: readonly string[];
}

/** One of the seed's ten counters, and how it is read from this metric. */
export interface SeedCounter {
  seed: string;
  /** The series to sum, e.g. `network.type=ipv4`; empty: every series of the metric. */
  where: string;
  note?: string;
}

export interface CatalogueEntry {
  name: string;
  unit: string;
  kind: MetricKind;
  /** The instrumentation scope the metric is exported in. */
  scope: 'carnx' | 'carnx.kernel';
  attributes: readonly CatalogueAttribute[];
  meaning: string;
  replaces: readonly SeedCounter[];
}

const DIRECTIONS = ['receive', 'transmit'];
const interfaceAttributes: CatalogueAttribute[] = [
  { name: ATTR.interfaceName, values: [] },
  { name: ATTR.ioDirection, values: DIRECTIONS },
];

/** The seed's ten counters (PKT, IP, IP6, TCP, UDP, ICMP, ICMP6, ARP, ACK, SYN), by the metric that replaces them. */
const SEED: Readonly<Record<string, readonly SeedCounter[]>> = {
  'carnx.packets': [
    { seed: 'PKT', where: '' },
    { seed: 'IP', where: 'network.type=ipv4', note: 'the seed read every frame as IPv4; carnx does not' },
    { seed: 'IP6', where: 'network.type=ipv6' },
    { seed: 'TCP', where: 'network.transport=tcp', note: 'IPv4 and IPv6' },
    { seed: 'UDP', where: 'network.transport=udp', note: 'IPv4 and IPv6' },
    { seed: 'ICMP', where: 'network.transport=icmp' },
    { seed: 'ICMP6', where: 'network.transport=icmpv6' },
    { seed: 'ARP', where: 'network.type=arp' },
  ],
  'carnx.tcp.flags': [
    { seed: 'ACK', where: 'tcp.flag=ack' },
    { seed: 'SYN', where: 'tcp.flag=syn' },
  ],
};

/** The attribute values an instrument really exports: its points' own attributes, in first-seen order. */
function exportedAttributes(instrument: CounterInstrument): CatalogueAttribute[] {
  const values = new Map<string, Set<string>>();
  for (const attributes of instrument.attributes) {
    for (const [name, value] of Object.entries(attributes)) {
      if (!values.has(name)) values.set(name, new Set());
      values.get(name)?.add(String(value));
    }
  }
  return [...values].map(([name, set]) => ({ name, values: [...set] }));
}

const counterEntries: CatalogueEntry[] = COUNTER_INSTRUMENTS.map((instrument) => ({
  name: instrument.name,
  unit: instrument.unit,
  kind: instrument.kind,
  scope: 'carnx',
  attributes: [...interfaceAttributes, ...exportedAttributes(instrument)],
  meaning: instrument.description,
  replaces: SEED[instrument.name] ?? [],
}));

const kernelEntries: CatalogueEntry[] = SYSTEM_NETWORK_METRICS.map((m) => ({
  name: m.name,
  unit: m.unit,
  kind: 'sum',
  scope: 'carnx.kernel',
  attributes: interfaceAttributes,
  meaning: m.description,
  replaces: [],
}));

/**
 * HealthInstruments creates these inside bind(), so they are listed here; test/unit/counter-catalogue.test.ts
 * collects the real instruments and fails when name, unit, kind or meaning differ.
 */
const healthEntries: CatalogueEntry[] = [
  {
    name: 'carnx.agent.interfaces',
    unit: '{interface}',
    kind: 'gauge',
    scope: 'carnx',
    attributes: [
      { name: 'carnx.hook', values: HOOKS },
      { name: ATTR.ioDirection, values: DIRECTIONS },
      { name: 'carnx.xdp.mode', values: ['native', 'generic', 'offload'] },
    ],
    meaning: 'Interfaces carnx counts on, by hook (XDP mode or TC ingress/egress) and direction.',
    replaces: [],
  },
  {
    name: 'carnx.agent.attach.failures',
    unit: '{failure}',
    kind: 'sum',
    scope: 'carnx',
    attributes: [{ name: 'carnx.reason', values: ['foreign-program', 'mode-refused', 'pin-failed', 'attach-error'] }],
    meaning: 'Failed attempts to attach the XDP program to an interface, by reason.',
    replaces: [],
  },
  {
    name: 'carnx.agent.export.failures',
    unit: '{failure}',
    kind: 'sum',
    scope: 'carnx',
    attributes: [],
    meaning: 'Metric exports that failed: the collector was unreachable, refused them or did not answer in time.',
    replaces: [],
  },
  {
    name: 'carnx.agent.collection.duration',
    unit: 's',
    kind: 'histogram',
    scope: 'carnx',
    attributes: [],
    meaning: "Time to read every interface's counters from the kernel and build the data points.",
    replaces: [],
  },
];

/** Every exported metric, in the order `carnx counters` lists them. */
export const COUNTER_CATALOGUE: readonly CatalogueEntry[] = [...counterEntries, ...kernelEntries, ...healthEntries];

/** The seed's counters in their original order, each with the metric that replaces it. */
export function seedCounters(): Array<SeedCounter & { metric: string }> {
  return COUNTER_CATALOGUE.flatMap((e) => e.replaces.map((r) => ({ ...r, metric: e.name })));
}

/** The README table "The seed's ten counters, derived" (Markdown, generated by `npm run docs`). */
export function renderSeedTable(): string {
  const rows = seedCounters().map(({ seed, metric, where, note }) => {
    const from = where === '' ? `sum of \`${metric}\` over all attributes` : `\`${metric}{${where}}\``;
    return `| ${seed} | ${from}${note ? ` (${note})` : ''} |`;
  });
  return ['| seed counter | from carnx |', '| --- | --- |', ...rows].join('\n');
}
