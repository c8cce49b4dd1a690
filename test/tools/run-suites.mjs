// Runs every test layer with uvu (unit, kernel, e2e, deploy), each in its own process, and prints one summed line for CI.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';

const root = fileURLToPath(new URL('../..', import.meta.url));
const requested = process.argv.slice(2);
const ORDER = ['unit', 'kernel', 'e2e', 'deploy'];
/** Folders of test/ that hold no layer: shared helpers, and the scripts that build and fetch the test tools. */
const NOT_LAYERS = ['fixtures', 'tools'];
/** Layers that need the kernel, root and the test tools. */
const PRIVILEGED = ['kernel', 'e2e', 'deploy'];
// Every other folder of test/ with *.test.ts files is a layer; a layer whose compiled tests are missing fails.
const layers =
  requested.length > 0
    ? requested
    : readdirSync(`${root}/test`, { withFileTypes: true })
        .filter(
          (d) =>
            d.isDirectory() &&
            !NOT_LAYERS.includes(d.name) &&
            readdirSync(`${root}/test/${d.name}`).some((f) => f.endsWith('.test.ts')),
        )
        .map((d) => d.name)
        .sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b));
const uvu = fileURLToPath(new URL('../../node_modules/uvu/bin.js', import.meta.url));

let passed = 0;
let failed = 0;
let skipped = 0;
for (const layer of layers) {
  const dir = `dist/test/${layer}`;
  if (!existsSync(`${root}/${dir}`)) {
    console.log(`[${layer}] no compiled tests in ${dir}`);
    failed++;
    continue;
  }
  console.log(`\n== ${layer} ==`);
  const run = spawnSync(process.execPath, [uvu, dir, '\\.test\\.js$'], {
    cwd: root,
    env: { ...process.env, NO_COLOR: '1' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  const out = stripVTControlCharacters(`${run.stdout}${run.stderr}`);
  process.stdout.write(out);
  const count = (label) => Number(out.match(new RegExp(`^\\s*${label}:\\s+(\\d+)`, 'm'))?.[1] ?? NaN);
  const total = count('Total');
  const ok = count('Passed');
  const skip = count('Skipped');
  if (Number.isNaN(total) || Number.isNaN(ok)) {
    // The layer crashed before uvu could summarise it: that is a failure, never a pass.
    console.log(`[${layer}] exited with ${run.status ?? run.signal} and no summary`);
    failed++;
    continue;
  }
  const skips = Number.isNaN(skip) ? 0 : skip;
  passed += ok;
  skipped += skips;
  // Tests that neither passed nor were skipped failed, or never ran (a before hook threw: fixtures/hooks.ts prints
  // why). A non-zero exit with nothing counted still fails the layer once.
  // uvu's Total leaves skipped tests out.
  const notPassed = total - ok;
  failed += Math.max(notPassed, run.status !== 0 ? 1 : 0);
  if (notPassed > 0 && !/FAIL/.test(out))
    console.log(`[${layer}] ${notPassed} test(s) never ran: see the hook error above`);
  // The privileged layers never skip in CI: a missing kernel feature or privilege there is a failure.
  if (process.env.CI === 'true' && PRIVILEGED.includes(layer) && skips > 0) {
    console.log(`[${layer}] ${skips} test(s) skipped, which CI does not allow in this layer`);
    failed += skips;
  }
}
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
