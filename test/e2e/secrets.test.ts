// A canary in the OTLP headers (flag, env, OTEL variables, headers file) never reaches stdout or stderr: at every log
// level, on export errors, at shutdown.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  const work = mkdtempSync(join(tmpdir(), 'carnx-e2e-secrets-'));
  cleanups.add(work, (dir) => rmSync(dir, { recursive: true, force: true }));
  // A config file with its own otlp.headers replaces the OTEL layer: the exporter still sends the OTEL variables' ones.
  const configFile = join(work, 'carnx.yaml');
  writeFileSync(configFile, 'otlp:\n  headers:\n    x-dataset: carnx\n');
  const headersFile = join(work, 'otlp-headers');
  writeFileSync(headersFile, `# keys\nx-api-key=${canary}\n`, { mode: 0o600 });
  type How = 'flag' | 'env' | 'otel-env' | 'otel-both' | 'file';
  const runs: Array<{ name: string; level: string; endpoint: string; how: How }> = [
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
    {
      name: 'trace, OTEL_EXPORTER_OTLP_[METRICS_]HEADERS beside a config file, deadline exceeded',
      level: 'trace',
      endpoint: paused.endpoint,
      how: 'otel-both',
    },
    { name: 'trace, otlp.headersFile, connection refused', level: 'trace', endpoint: refused, how: 'file' },
  ];
  const envOf: Record<How, NodeJS.ProcessEnv> = {
    flag: {},
    env: { CARNX_OTLP_HEADERS: `x-api-key=${canary}` },
    'otel-env': { OTEL_EXPORTER_OTLP_HEADERS: `x-api-key=${canary}` },
    'otel-both': {
      OTEL_EXPORTER_OTLP_METRICS_HEADERS: `x-api-key=${canary}`,
      OTEL_EXPORTER_OTLP_HEADERS: `x-team=team%20${canary}`,
    },
    file: {},
  };
  const argsOf: Record<How, string[]> = {
    flag: ['--otlp-headers', `x-api-key=${canary}`],
    env: [],
    'otel-env': [],
    'otel-both': ['--config', configFile],
    file: ['--otlp-headers-file', headersFile],
  };
  const outputs: Array<{ name: string; output: string; failing: string }> = [];
  for (let i = 0; i < runs.length; i += 3) {
    await Promise.all(
      runs.slice(i, i + 3).map(async (run, j) => {
        const health = await freePort();
        const pair = quietPair(cleanups, 's'); // one interface per agent: two agents cannot both attach to one
        const bpffs = testBpffs(cleanups, `e2e-secret-${i + j}`);
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
            ...argsOf[run.how],
          ],
          envOf[run.how],
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
  const named = (prefix: string) =>
    /"headerNames":(\[[^\]]*\])/.exec(outputs.find((o) => o.name.includes(prefix))!.output)?.[1];
  assert.is(
    named('OTEL_EXPORTER'),
    '["x-dataset","x-api-key","x-team"]',
    'both OTEL variables are sent (and redacted)',
  );
  assert.is(named('headersFile'), '["x-api-key"]', 'the headers file is read');
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
