// `carnx counters`: every metric carnx exports, with unit, attributes, meaning and the seed counter it replaces.
import { COUNTER_CATALOGUE, type CatalogueEntry } from '../metrics/counter-catalogue.js';
import { ExitCode } from './exit-codes.js';

export const COUNTERS_HELP = `usage: carnx counters [--json]

Lists every metric carnx exports: name, unit, kind, instrumentation scope, attributes with their values, what it
counts, and which of the seed's ten counters (PKT, IP, IP6, TCP, UDP, ICMP, ICMP6, ARP, ACK, SYN) it replaces.
Needs no privileges and no configuration.

  --json   one JSON document: {"metrics": [{name, unit, kind, scope, attributes, meaning, replaces}]}`;

function renderEntry(e: CatalogueEntry): string {
  const lines = [`${e.name}  ${e.unit}  ${e.kind}  (scope ${e.scope})`, `  ${e.meaning}`];
  for (const a of e.attributes) {
    lines.push(`  ${a.name}: ${a.values.length === 0 ? '<the interface name>' : a.values.join(', ')}`);
  }
  if (e.attributes.length === 0) lines.push('  no attributes');
  for (const r of e.replaces) {
    const series = r.where === '' ? 'sum of every series' : `sum of the series with ${r.where}`;
    lines.push(`  replaces seed ${r.seed}: ${series}${r.note ? ` (${r.note})` : ''}`);
  }
  return lines.join('\n');
}

/** Prints the catalogue; the exporter's tables are its source, so this is what an agent exports. */
export function countersCommand(options: { json: boolean }): number {
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ metrics: COUNTER_CATALOGUE }, null, 2)}\n`);
  } else {
    process.stdout.write(`${COUNTER_CATALOGUE.map(renderEntry).join('\n\n')}\n`);
  }
  return ExitCode.ok;
}
