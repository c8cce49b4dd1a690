// Agent.reload in-process on a veth: reloads close together apply one after another, and stop waits for the current one.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { Agent } from '../../src/agent.js';
import { libbpf } from '../../src/bpf/libbpf.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { CarnxConfig } from '../../src/config/schema.js';
import { createLogger } from '../../src/log/logger.js';
import type { MetricsController } from '../../src/metrics/metrics-controller.js';
import { agentArgs, testBpffs, type TestBpffs } from '../fixtures/agent-process.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { reported } from '../fixtures/hooks.js';
import { xdpOn } from '../fixtures/kernel-objects.js';
import { vethPair } from '../fixtures/netns.js';
import { requireRoot } from '../fixtures/privileges.js';

const Reload = suite('agent reload (in-process)');
const cleanups = new Cleanups();

Reload.before(reported(() => requireRoot('the agent')));
Reload.after.each(() => cleanups.run());

/** A metrics side that records what happens to it; stopping takes `stopMs`, like a last export to a slow collector. */
function recordingMetrics(events: string[], stopMs: number) {
  let built = 0;
  return (_counting: unknown, config: CarnxConfig): MetricsController => {
    const name = `m${built++}(${config.otlp.endpoint})`;
    events.push(`create ${name}`);
    return {
      start: () => events.push(`start ${name}`),
      stop: async () => {
        events.push(`stop ${name} begins`);
        await sleep(stopMs);
        events.push(`stop ${name} ends`);
      },
      recordAttachFailure: () => undefined,
      exportState: () => 'exporting',
    };
  };
}

function configFor(bpffs: TestBpffs, iface: string, endpoint: string): CarnxConfig {
  const flags = agentArgs(bpffs, iface, ['--otlp-endpoint', endpoint, '--xdp-mode', 'generic']).slice(1);
  return loadConfig({ argv: flags, env: {} });
}

function quietLogger() {
  return createLogger('warn', new Writable({ write: (_chunk, _enc, done) => done() }));
}

/** An in-process agent on a fresh veth, generic XDP, exporting to m0 (port 9) through a recording metrics side. */
async function startedAgent(tag: string, name: string) {
  const pair = vethPair(cleanups, tag);
  const bpffs = testBpffs(cleanups, name);
  const events: string[] = [];
  const agent = new Agent(configFor(bpffs, pair.host, 'http://127.0.0.1:9'), {
    lib: libbpf(),
    logger: quietLogger(),
    createMetrics: recordingMetrics(events, 150),
  });
  cleanups.add(agent, (a) => a.stop());
  await agent.start();
  return { pair, bpffs, events, agent };
}

Reload('two reloads at once apply one after the other, each built from the running export side', async () => {
  const { pair, bpffs, events, agent } = await startedAgent('r', 'reload');
  assert.is(xdpOn(pair.host), 'xdpgeneric');

  await Promise.all([
    agent.reload(configFor(bpffs, pair.host, 'http://127.0.0.1:10')),
    agent.reload(configFor(bpffs, pair.host, 'http://127.0.0.1:11')),
  ]);
  assert.equal(events, [
    'create m0(http://127.0.0.1:9)',
    'start m0(http://127.0.0.1:9)',
    'create m1(http://127.0.0.1:10)',
    'stop m0(http://127.0.0.1:9) begins',
    'stop m0(http://127.0.0.1:9) ends',
    'start m1(http://127.0.0.1:10)',
    // Built from the running m1, never from the half-stopped m0.
    'create m2(http://127.0.0.1:11)',
    'stop m1(http://127.0.0.1:10) begins',
    'stop m1(http://127.0.0.1:10) ends',
    'start m2(http://127.0.0.1:11)',
  ]);

  await agent.stop();
  assert.equal(events.slice(-2), ['stop m2(http://127.0.0.1:11) begins', 'stop m2(http://127.0.0.1:11) ends']);
  assert.is(xdpOn(pair.host), undefined, 'detached at stop');
});

Reload('stop during a reload waits for it and stops what it started; queued reloads do nothing', async () => {
  const { pair, bpffs, events, agent } = await startedAgent('s', 'reload-stop');

  const first = agent.reload(configFor(bpffs, pair.host, 'http://127.0.0.1:10'));
  const queued = agent.reload(configFor(bpffs, pair.host, 'http://127.0.0.1:11'));
  await sleep(20); // the first reload is stopping m0
  await agent.stop();
  await Promise.all([first, queued]);
  assert.equal(events, [
    'create m0(http://127.0.0.1:9)',
    'start m0(http://127.0.0.1:9)',
    'create m1(http://127.0.0.1:10)',
    'stop m0(http://127.0.0.1:9) begins',
    'stop m0(http://127.0.0.1:9) ends',
    'start m1(http://127.0.0.1:10)',
    // The stop's last export goes through the pipeline the reload started: none is left running.
    'stop m1(http://127.0.0.1:10) begins',
    'stop m1(http://127.0.0.1:10) ends',
  ]);
  assert.is(xdpOn(pair.host), undefined, 'detached at stop');
});

Reload.run();
