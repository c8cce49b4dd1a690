// `npm run docs`: writes what is generated from the config schema: the configuration reference into README.md between
// its markers (and the seed counters' table, from the metric catalogue), and the chart's agent configuration (values.yaml, values.schema.json, its config template, its README).
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderConfigReference } from '../dist/src/config/config-reference.js';
import { renderSeedTable } from '../dist/src/metrics/counter-catalogue.js';
import { renderChartFiles } from '../dist/test/tools/chart-files.js';

const readme = fileURLToPath(new URL('../README.md', import.meta.url));
const START = '<!-- config-reference:start -->';
const END = '<!-- config-reference:end -->';
const text = readFileSync(readme, 'utf8');
const [before, rest] = text.split(START);
const [, after] = rest.split(END);
writeFileSync(readme, `${before}${START}\n${renderConfigReference().trim()}\n${END}${after}`);

// The seed's ten counters, from the metric catalogue that `carnx counters` prints.
const SEED_START = '<!-- seed-counters:start -->';
const SEED_END = '<!-- seed-counters:end -->';
const SEED_NOTE = '<!-- Generated from src/metrics/counter-catalogue.ts by renderSeedTable(); edit the catalogue. -->';
const withConfig = readFileSync(readme, 'utf8');
const [seedBefore, seedRest] = withConfig.split(SEED_START);
const [, seedAfter] = seedRest.split(SEED_END);
writeFileSync(readme, `${seedBefore}${SEED_START}\n${SEED_NOTE}\n\n${renderSeedTable()}\n${SEED_END}${seedAfter}`);

const chart = fileURLToPath(new URL('../helm/carnx/', import.meta.url));
const current = (path) => {
  try {
    return readFileSync(chart + path, 'utf8');
  } catch (err) {
    if (err.code === 'ENOENT') return '';
    throw err;
  }
};
for (const [path, generated] of renderChartFiles(current)) {
  if (current(path) !== generated) {
    writeFileSync(chart + path, generated);
    console.log(`updated helm/carnx/${path}`);
  }
}
