// The imports of src/ follow the pipeline the README draws: a module imports only from its own layer or lower ones.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

/**
 * Lowest first. Foundations (the libbpf binding, logging, host facts, the health endpoint) know nothing of carnx's
 * pipeline; then the pipeline itself (config -> preflight -> attach -> read -> metrics); then the running agent that
 * wires it, the CLI that maps its errors to exit codes, and main, the composition root.
 */
const LAYERS = [
  'bpf',
  'log',
  'interfaces',
  'health',
  'config',
  'host',
  'attach',
  'reader',
  'metrics',
  'agent.ts',
  'cli',
  'main.ts',
];

function layerOf(file: string): string {
  const [first = ''] = relative(SRC, file).split('/');
  return first;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Relative imports (static, `import type` and re-exports alike), resolved to the .ts file they name. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)].map((m) => m[1] ?? '');
  return specs.map((spec) => resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
}

const files = sourceFiles(SRC);

test('every src/ file belongs to a known layer', () => {
  const unknown = files.map((f) => relative(SRC, f)).filter((f) => !LAYERS.includes(layerOf(join(SRC, f))));
  assert.equal(unknown, [], 'add new top-level folders to LAYERS in this test, at their place in the pipeline');
});

test('no module imports from a higher layer', () => {
  const violations: string[] = [];
  for (const file of files) {
    const from = LAYERS.indexOf(layerOf(file));
    for (const target of importsOf(file)) {
      const to = LAYERS.indexOf(layerOf(target));
      if (to > from) violations.push(`${relative(SRC, file)} -> ${relative(SRC, target)}`);
    }
  }
  assert.equal(violations, []);
});

test('the check sees imports at all (it would pass vacuously otherwise)', () => {
  const agentImports = importsOf(join(SRC, 'agent.ts')).map(layerOf);
  assert.ok(agentImports.includes('attach') && agentImports.includes('metrics'), agentImports.join(', '));
  assert.ok(files.length > 20, `${files.length} source files`);
});

test.run();
