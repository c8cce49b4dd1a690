// The chart's agent configuration must be what the config schema generates (run `npm run docs` after a change).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { configKeys } from '../../src/config/schema.js';
import { KEY_OVERRIDES } from '../tools/chart-config.js';
import { chartConfig } from '../tools/chart-model.js';
import { CONFIG_TEMPLATE, renderChartFiles } from '../tools/chart-files.js';

const CHART = fileURLToPath(new URL('../../../helm/carnx/', import.meta.url));
const read = (path: string): string => (existsSync(CHART + path) ? readFileSync(CHART + path, 'utf8') : '');

/** The value at a dotted path of a parsed YAML document. */
function at(doc: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], doc);
}

/** Every leaf path of a mapping, e.g. otlp.tls.ca. */
function leafPaths(node: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(node).flatMap(([k, v]) =>
    v !== null && typeof v === 'object' ? leafPaths(v as Record<string, unknown>, `${prefix}${k}.`) : [`${prefix}${k}`],
  );
}

test('helm/carnx holds what `npm run docs` generates from the config schema', () => {
  for (const [path, generated] of renderChartFiles(read)) {
    assert.fixture(read(path), generated, `helm/carnx/${path} is out of date: run \`npm run docs\``);
  }
});

test('every chart override names a key of the config schema', () => {
  const keys = new Set(configKeys().map((k) => k.key));
  assert.equal(
    Object.keys(KEY_OVERRIDES).filter((k) => !keys.has(k)),
    [],
  );
});

test("values.yaml reads back as the chart's defaults: the agent's, but where an override says otherwise", () => {
  const values = YAML.parse(read('values.yaml'));
  for (const value of chartConfig().values) assert.equal(at(values, value.path), value.default, value.path);
  for (const spec of configKeys()) {
    const override = KEY_OVERRIDES[spec.key] ?? {};
    if (override.value === undefined && !('default' in override)) {
      assert.equal(at(values, spec.key), spec.default, spec.key);
    }
  }
});

test('the config template writes every key of the config schema but those the chart keeps out', () => {
  // Template actions out, placeholders in: what is left is the YAML shape of the config file.
  const shape = read(CONFIG_TEMPLATE)
    .replace(/{{\/\*[\s\S]*?\*\/}}/g, '')
    .split('\n')
    .filter((line) => !/^\s*{{-? *(define|if|end)\b/.test(line))
    .join('\n')
    .replace(/{{.*?}}/g, 'x');
  const written = leafPaths(YAML.parse(shape) as Record<string, unknown>);
  const expected = configKeys()
    .map((k) => k.key)
    .filter((key) => KEY_OVERRIDES[key]?.config !== null);
  assert.equal(written, expected);
});

test.run();
