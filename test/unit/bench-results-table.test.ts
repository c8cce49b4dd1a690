// The README's benchmark tables: each section from the newest results file that has it, under that file's machine.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { renderBenchResults } from '../bench/results-table.js';
import type { ResultsDoc } from '../bench/results.js';

const machine = (host: string): ResultsDoc['machine'] => ({
  host,
  nproc: 2,
  cpu: 'AMD EPYC',
  kernel: '6.18.44',
  node: 'v20.20.2',
  loadavg: { start: [1.5, 1, 1], end: [2.5, 1, 1] },
});
const row = (hook: string, median: number, ratio: number) => ({ hook, median, ratio, paired: { min: 0.9, max: 1.1 } });
const target = { hook: 'carnx XDP native', ratio: 0.97, measured: 0.98, met: true };
const live = (noProgramPps: number) => ({
  rounds: 5,
  sends: 3,
  frames: 1e6,
  rows: [row('no program', noProgramPps, 1), row('carnx XDP native', noProgramPps * 0.98, 0.98)],
  target,
});
const throughput = {
  rounds: 7,
  seconds: 3,
  rows: [row('no program', 4, 1), { hook: 'carnx XDP native', skipped: 'ERANGE', runs: [] }],
  target: { hook: 'carnx TC ingress (tcx)', ratio: 0.95, measured: 0.9, met: false },
};

test('each section comes from the newest file that has it, headed by that file and its machine', () => {
  const docs = [
    {
      file: 'new.json',
      doc: { date: '2026-12-02T10:00:00.000Z', machine: machine('b'), livePps: live(2e6), unknown: 1 },
    },
    {
      file: 'old.json',
      doc: { date: '2026-12-01T10:00:00.000Z', machine: machine('a'), livePps: live(1e6), throughput },
    },
  ];
  const text = renderBenchResults(docs);
  const newAt = text.indexOf('From [new.json](test/bench/results/new.json), 2026-12-02 10:00 UTC on b: 2 CPUs');
  const oldAt = text.indexOf('From [old.json](test/bench/results/old.json), 2026-12-01 10:00 UTC on a: 2 CPUs');
  assert.ok(newAt >= 0 && oldAt > newAt, text);
  assert.ok(text.includes('| carnx XDP native | 1.960 | 98% | 90%-110% |'), 'the newer live row');
  assert.not.ok(text.includes('| carnx XDP native | 0.980 |'), 'not the older live row');
  assert.ok(text.includes('no program: 2.00 Mpps'), text);
  assert.ok(text.includes('load average 1.5 at the start, 2.5 at the end'), text);
  assert.ok(text.includes('carnx TC ingress (tcx) >= 95%: 90%, missed'), text);
  assert.ok(text.includes('| carnx XDP native | not measured | | ERANGE |'), text);
  assert.not.ok(text.includes('unknown'), 'a section without a renderer is left out');
});

test('collection and start-up: each row with its target verdict and its baseline', () => {
  const cost = (interfaces: number, ms: number, bareMs: number, rss: number, bareRss: number) => ({
    interfaces,
    carnx: { cpuMsPerExport: ms, rssMb: rss },
    bare: { cpuMsPerExport: bareMs, rssMb: bareRss },
    cpuRatio: ms / bareMs,
    rssRatio: rss / bareRss,
    percentOfCore: ms / 100,
  });
  const collection = {
    readSum: {
      interfaces: 500,
      cpus: 256,
      carnx: { cpuMedianMs: 8.04 },
      copyOnly: { cpuMedianMs: 6 },
      bigintPerWord: { cpuMedianMs: 100 },
      met: true,
    },
    wire: [{ interfaces: 500, perInterface: 12_300, gzipPerInterface: 577.5, points: 43_000, met: true }],
    exportCost: [cost(500, 60, 400, 130, 180)],
    rescan: { interfaces: 500, listing: { cpuMedianMs: 9.2 }, uncached: { cpuMedianMs: 28 } },
  };
  const startup = [
    { interfaces: 100, fresh: { bootMs: 300, attachMs: 2000, totalMs: 2300, cpuMs: 3000 } },
    { interfaces: 200, error: 'did not start in 60 s' },
  ];
  const text = renderBenchResults([
    { file: 'r.json', doc: { date: '2026-12-02T10:00:00.000Z', machine: machine('b'), collection, startup } },
  ]);
  assert.ok(
    text.includes('| 8.0 ms, met | copying the same values only: 6.0 ms; one bigint per word: 100.0 ms |'),
    text,
  );
  assert.ok(text.includes('| 578 B gzip, 12.3 KB without, met | 86 points per interface |'), text);
  assert.ok(
    text.includes('| 60 ms (0.60% of a core), missed | bare OpenTelemetry SDK, same series: 400 ms (0.15x) |'),
    text,
  );
  assert.ok(text.includes('| 130 MB, met | bare SDK: 180 MB (0.72x) |'), text);
  assert.ok(text.includes('| 100 | 2.30 s (boot 300 ms, attach 2000 ms, CPU 3.0 s) | - |'), text);
  assert.ok(text.includes('| 200 | did not start in 60 s | |'), text);
});

test('no results: nothing to show', () => {
  assert.is(renderBenchResults([]), '');
});

test.run();
