// The README's configuration reference must be the one the schema generates (run `npm run docs` after a change).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderConfigReference } from '../../src/config/config-reference.js';
import { COUNTER_INSTRUMENTS } from '../../src/metrics/counter-instruments.js';

const readme = readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8');

test('the configuration reference in README.md is generated from the schema', () => {
  const section = readme.split('<!-- config-reference:start -->')[1]?.split('<!-- config-reference:end -->')[0];
  assert.ok(section, 'README.md has the config-reference markers');
  assert.fixture(section!.trim(), renderConfigReference().trim());
});

test('README.md documents every exported counter metric', () => {
  for (const instrument of COUNTER_INSTRUMENTS) assert.ok(readme.includes(`\`${instrument.name}\``), instrument.name);
});

test.run();
