// A canary in the OTLP headers never reaches stdout or stderr: at every log level, on export errors, at shutdown.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { startAgent, testBpffs } from '../fixtures/agent-process.js';
import { TestCollector, freePort } from '../fixtures/collector.js';
import { requireRoot } from '../fixtures/privileges.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { quietPair } from '../fixtures/netns.js';
import { waitFor } from '../fixtures/wait.js';
import { reported } from '../fixtures/hooks.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

const Secrets = suite('e2e: secrets in the OTLP headers');
const cleanups = new Cleanups();

Secrets.before(reported(() => requireRoot('the e2e tests')));
Secrets.after.each(() => cleanups.run());

/** /readyz of the agent's health server: its reason says whether exports are failing, at any log level. */
async function readiness(port: number): Promise<string> {
  try {
    return await (await fetch(`http://127.0.0.1:${port}/readyz`)).text();
  } catch {
    return '';
  }
}

Secrets('the canary is in no output: every log level, export errors (refused, TLS, timeout), shutdown', async () => {
  const canary = `cnry${randomBytes(12).toString('hex')}`;
  const paused = cleanups.add(await TestCollector.start(), (c) => c.destroy());
  const plaintext = cleanups.add(await TestCollector.start(), (c) => c.destroy());
  paused.pause(); // accepts connections, answers nothing: every export times out
  const refused = `http://127.0.0.1:${await freePort()}`;
  const runs: Array<{ name: string; level: string; endpoint: string; how: 'flag' | 'env' | 'otel-env' }> = [
    ...LEVELS.map((level) => ({
      name: `${level}, connection refused`,
      level,
      endpoint: refused,
      how: 'flag' as const,
    })),
    {
      name: 'trace, TLS handshake with a plaintext collector',
      level: 'trace',
      endpoint: `https://127.0.0.1:${plaintext.otlpPort}`,
      how: 'env',
    },
    { name: 'trace, deadline exceeded', level: 'trace', endpoint: paused.endpoint, how: 'otel-env' },
  ];
  const outputs: Array<{ name: string; output: string; failing: string }> = [];
  for (let i = 0; i < runs.length; i += 3) {
    await Promise.all(
      runs.slice(i, i + 3).map(async (run, j) => {
        const health = await freePort();
        const pair = quietPair(cleanups, 's'); // one interface per agent: two agents cannot both attach to one
        const bpffs = testBpffs(cleanups, `e2e-secret-${i + j}`);
        const header = `x-api-key=${canary}`;
        const agent = startAgent(
          cleanups,
          bpffs,
          pair.host,
          [
            '--otlp-endpoint',
            run.endpoint,
            '--export-interval-ms',
            '200',
            '--otlp-timeout-ms',
            '500',
            '--log-level',
            run.level,
            '--health-listen',
            `127.0.0.1:${health}`,
            '--export-shutdown-timeout-ms',
            '1000',
            ...(run.how === 'flag' ? ['--otlp-headers', header] : []),
          ],
          run.how === 'env'
            ? { CARNX_OTLP_HEADERS: header }
            : run.how === 'otel-env'
              ? { OTEL_EXPORTER_OTLP_HEADERS: header }
              : {},
        );
        const failing = await waitFor(
          `${run.name}: exports failing`,
          async () => {
            const text = await readiness(health);
            return text.includes('exports are failing') ? text : undefined;
          },
          15_000,
          100,
        );
        const exit = await agent.stop();
        assert.is(exit.code, 0, `${run.name}: clean exit`);
        outputs.push({ name: run.name, output: agent.stdout + agent.stderr, failing });
      }),
    );
  }
  for (const o of outputs) assert.not.ok(o.output.includes(canary), `${o.name}: the canary leaked:\n${o.output}`);
  // The runs did produce output where the level allows, including the failure line, and it carries the header's name.
  const traced = outputs.find((o) => o.name.startsWith('trace, connection'))!.output;
  assert.match(traced, 'metrics export failed', 'export errors were logged');
  assert.match(traced, '"headerNames":["x-api-key"]', 'the header name is logged, its value is not');
  assert.is(outputs.find((o) => o.name.startsWith('silent'))!.output, '', 'silent is silent');
  paused.resume();

  // The detector works: the same canary where it is not a secret (a resource attribute) does show up in the log.
  const control = startAgent(cleanups, testBpffs(cleanups, 'e2e-secret-control'), quietPair(cleanups, 's').host, [
    '--otlp-endpoint',
    refused,
    '--resource-attributes',
    `not.secret=${canary}`,
    '--log-level',
    'info',
  ]);
  await control.waitForMsg('started');
  assert.is((await control.stop()).code, 0);
  assert.match(control.stdout, canary, 'a non-secret value is logged, so the checks above could see a leak');
});

Secrets.run();
