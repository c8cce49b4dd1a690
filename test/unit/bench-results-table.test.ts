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

test('no results: nothing to show', () => {
  assert.is(renderBenchResults([]), '');
});

test.run();
