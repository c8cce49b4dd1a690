// The README's configuration reference must be the one the schema generates (run `npm run docs` after a change).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderConfigReference } from '../../src/config/config-reference.js';
import { COUNTER_INSTRUMENTS } from '../../src/metrics/counter-instruments.js';
import { renderBenchResults } from '../bench/results-table.js';
import { readAllResults } from '../bench/results.js';

const readme = readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8');

test('the configuration reference in README.md is generated from the schema', () => {
  const section = readme.split('<!-- config-reference:start -->')[1]?.split('<!-- config-reference:end -->')[0];
  assert.ok(section, 'README.md has the config-reference markers');
  assert.fixture(section!.trim(), renderConfigReference().trim());
});

test('README.md documents every exported counter metric', () => {
  for (const instrument of COUNTER_INSTRUMENTS) assert.ok(readme.includes(`\`${instrument.name}\``), instrument.name);
});

test('the Benchmarks tables in README.md are the newest results (npm run docs after npm run bench)', () => {
  const section = readme.split('<!-- bench-results:start -->')[1]?.split('<!-- bench-results:end -->')[0];
  assert.ok(section, 'README.md has the bench-results markers');
  const tables = section!.replace(/^<!--.*-->$/m, '').trim();
  const stale = 'stale: run `npm run docs`, then `git add -f` the test/bench/results/ file the README quotes';
  assert.fixture(tables, renderBenchResults(readAllResults()), stale);
});

test.run();
