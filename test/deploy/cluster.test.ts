// The Helm chart on a real one-node Kubernetes cluster: from `helm install` to exact counts at a collector, across a pod restart, to a clean uninstall.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';
import { sum } from '../../src/bpf/counter-layout.js';
import { TestCollector, freePort, type Point } from '../fixtures/collector.js';
import { classIndex } from '../fixtures/frames.js';
import { HOST_V6, type VethPair, quietPair, up } from '../fixtures/netns.js';
import { requireRoot } from '../fixtures/privileges.js';
import { pinSet, pinTree, xdpOn, xdpOnRealInterfaces } from '../fixtures/kernel-objects.js';
import { helmBinary, imageArchive, startCluster, stopCluster } from '../fixtures/built-tools.js';
import { command } from '../fixtures/command.js';
import { repoPath, type Doc } from '../fixtures/repo.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { exportedCounters, settle, type Settled } from '../fixtures/exported-counters.js';
import { ping, sendUdp, tcpConnections } from '../fixtures/traffic.js';
import { waitFor } from '../fixtures/wait.js';
import { reported } from '../fixtures/hooks.js';

const CHART = repoPath('helm/carnx');
const IMAGE = { repository: 'ghcr.io/carnx/carnx', tag: 'ci' };
const NAMESPACE = 'carnx-ci';
const RELEASE = 'carnx';
const CLUSTER_NAME = 'carnx-ci-cluster';
/** The node's bpffs, where the chart's pods pin (bpffs.hostPath). */
const HOST_PINS = '/sys/fs/bpf';
const ETH_HEADER = 14n;

const Cluster = suite('deploy: the chart on a real one-node cluster');
const cleanups = new Cleanups();
let work = '';
let env: Record<string, string> = {};
let pair: VethPair;
let collector: TestCollector;
let healthPort = 0;
let headerValue = '';

/** A command with the cluster's environment (KUBECONFIG and the rest of start.sh's env file). */
const run = (cmd: string, args: string[]): string => command(cmd, args, env);
const kubectl = (...args: string[]): string => run(join(env.CARNX_CLUSTER_BIN!, 'kubectl'), args);
const helm = (...args: string[]): string => run(helmBinary(), args);
const getJson = (...args: string[]): Doc => JSON.parse(kubectl('get', '-o', 'json', ...args)) as Doc;

/** The release's pods (on a one-node cluster: zero, one, or two while one replaces another). */
function pods(): Doc[] {
  return getJson('pods', '-n', NAMESPACE, '-l', `app.kubernetes.io/instance=${RELEASE}`).items as Doc[];
}

const readyCondition = (pod: Doc): string | undefined =>
  (pod.status?.conditions as Doc[] | undefined)?.find((c) => c.type === 'Ready')?.status;
const running = (pod: Doc): boolean =>
  pod.status?.containerStatuses?.[0]?.state?.running !== undefined && !pod.metadata.deletionTimestamp;

/** The agent's log lines from the kubelet's pod log files (CRI format: time, stream, tag, then the line). */
function podLog(pod: Doc): Array<Record<string, unknown>> {
  const dir = join(env.CARNX_CLUSTER_POD_LOGS!, `${NAMESPACE}_${pod.metadata.name}_${pod.metadata.uid}`, 'carnx');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n'))
    .map((line) => line.replace(/^\S+ (stdout|stderr) [PF] /, ''))
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The release's pods, their agent logs and the namespace's events: for failure messages. */
function clusterState(): string {
  try {
    const state = pods().map(
      (p) =>
        `${p.metadata.name}: ${JSON.stringify(p.status)}\n${podLog(p)
          .map((l) => JSON.stringify(l))
          .join('\n')}`,
    );
    return `\n${state.join('\n')}\nevents:\n${kubectl('get', 'events', '-n', NAMESPACE)}`;
  } catch (err) {
    return `\n(could not describe the pods: ${(err as Error).message})`;
  }
}

async function waitForPod(what: string, check: (pod: Doc) => boolean, timeoutMs = 90_000): Promise<Doc> {
  try {
    return await waitFor(what, () => pods().find(check), timeoutMs, 500);
  } catch (err) {
    throw new Error(`${(err as Error).message}${clusterState()}`);
  }
}

/** GET /readyz of the agent, which listens on the node's loopback (the pod shares the node's network). */
async function readyz(): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${healthPort}/readyz`);
  return { status: response.status, body: (await response.text()).trim() };
}

/** The interfaces carnx has pins for in the node's bpffs. */
const pinnedInterfaces = (): string[] =>
  pinTree(join(HOST_PINS, 'carnx/v1'))
    .filter((p) => /^[^/]+\/$/.test(p))
    .map((p) => p.slice(0, -1));

/** A values file for the release: the image under test, the test veth only, the test collector, short intervals. */
function values(): string {
  const file = join(work, `values-${Date.now()}.yaml`);
  writeFileSync(
    file,
    YAML.stringify({
      // Never: the image was imported into the node's containerd, and no registry is reachable.
      image: { ...IMAGE, pullPolicy: 'Never' },
      clusterName: CLUSTER_NAME,
      // Only the test's veth: the pod is on the host network, where the machine's real interfaces are. The receive
      // side, against rx statistics; transmit is proven in test/kernel/tc-hooks.test.ts.
      interfaces: { include: [pair.host], directions: ['receive'], rescanIntervalMs: 1000 },
      // 2 s: short for the test, and long enough that the first export comes well after the health server is up.
      export: { intervalMs: 2000, shutdownTimeoutMs: 2000 },
      otlp: {
        endpoint: collector.endpoint,
        timeoutMs: 2000,
        existingSecret: { name: 'carnx-ci-headers', key: 'headers' },
      },
      health: { port: healthPort },
      probes: { readiness: { initialDelaySeconds: 1, periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 1 } },
    }),
  );
  return file;
}

function rmdirIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // not there, or not empty: not ours to remove
  }
}

/** The pins of the test interface in the node's bpffs, named from the bpffs root as pinSet names them. */
const hostPins = (): string[] =>
  pinTree(join(HOST_PINS, 'carnx'))
    .map((p) => `carnx/${p}`)
    .filter((p) => p.startsWith(`carnx/v1/${pair.host}/`));

/**
 * Set-up runs in `before`, where an exception would end the whole uvu process (and the other deploy suites with it)
 * without a summary: it is kept here instead, and every test fails with it.
 */
let setupFailure: Error | undefined;

function setUp(): void {
  if (setupFailure) throw new Error(`the cluster could not be set up: ${setupFailure.stack ?? setupFailure.message}`);
}

Cluster.before(
  reported(async () => {
    try {
      await setUpCluster();
    } catch (err) {
      setupFailure = err as Error;
    }
  }),
);

async function setUpCluster(): Promise<void> {
  requireRoot('the cluster test');
  work = mkdtempSync(join(tmpdir(), 'carnx-cluster-'));
  helmBinary();
  // The image first: if it cannot be built, no cluster is started for nothing. Never skipped, in CI or not.
  const archive = imageArchive();
  collector = cleanups.add(await TestCollector.start(), (c) => c.destroy());
  pair = quietPair(cleanups, 'c');
  // Whatever happens, the test's pins go (the chart keeps programs attached on exit, in the node's own bpffs), and
  // the pin root if this test made it. Run after the cluster is stopped: no agent is left to pin anew.
  const hadPinRoot = existsSync(join(HOST_PINS, 'carnx'));
  cleanups.defer(() => {
    rmSync(join(HOST_PINS, 'carnx/v1', pair.host), { recursive: true, force: true });
    if (!hadPinRoot) for (const dir of ['carnx/v1', 'carnx']) rmdirIfEmpty(join(HOST_PINS, dir));
  });
  cleanups.defer(stopCluster);
  const envFile = startCluster();
  env = Object.fromEntries(
    [...readFileSync(envFile, 'utf8').matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]),
  );
  delete env.PATH;
  run('ctr', ['--address', env.CARNX_CLUSTER_CONTAINERD!, '-n', 'k8s.io', 'images', 'import', archive]);
  assert.ok(
    run('ctr', ['--address', env.CARNX_CLUSTER_CONTAINERD!, '-n', 'k8s.io', 'images', 'ls', '-q'])
      .split('\n')
      .includes(`${IMAGE.repository}:${IMAGE.tag}`),
    `the archive ${archive} holds ${IMAGE.repository}:${IMAGE.tag}`,
  );
  healthPort = await freePort();
  headerValue = randomBytes(12).toString('hex');
  kubectl('create', 'namespace', NAMESPACE);
  // The chart README's requirement: hostNetwork, a hostPath and added capabilities are beyond the baseline level.
  kubectl('label', 'namespace', NAMESPACE, 'pod-security.kubernetes.io/enforce=privileged');
  kubectl(
    'create',
    'secret',
    'generic',
    'carnx-ci-headers',
    '-n',
    NAMESPACE,
    `--from-literal=headers=x-carnx-ci=${headerValue}`,
  );
}

Cluster.after(async () => {
  if (env.KUBECONFIG) {
    try {
      helm('uninstall', RELEASE, '-n', NAMESPACE, '--wait', '--timeout', '60s');
    } catch {
      // not installed (the last test uninstalls it)
    }
  }
  await cleanups.run();
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * A stage of the scenario, run once per file by the first test that needs it: each test awaits the stages it builds
 * on, so it also runs alone (`.only`), and the whole file still installs, counts and restarts only once.
 */
function stage<T>(run: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => {
    result ??= run();
    return result;
  };
}

Cluster('the node registers, with the label the chart selects nodes by', () => {
  setUp();
  const node = getJson('node', env.CARNX_CLUSTER_NODE!);
  assert.is(node.metadata.name, env.CARNX_CLUSTER_NODE);
  assert.is(node.metadata.labels['kubernetes.io/os'], 'linux', "the chart's nodeSelector matches");
});

/** What /readyz and the kubelet said while the collector was down, from the install on. */
interface OutageWatch {
  readyzOk: number[];
  podReady: number[];
  firstFailure: number | undefined;
}

/**
 * Polls /readyz (every 100 ms) and the pod's Ready condition (every 250 ms) until `stop` resolves, noting each
 * moment either said ready, and when the agent logged its first failed export.
 */
async function watchOutage(stop: Promise<unknown>): Promise<OutageWatch> {
  const watch: OutageWatch = { readyzOk: [], podReady: [], firstFailure: undefined };
  let done = false;
  void stop.finally(() => {
    done = true;
  });
  const readyzLoop = (async () => {
    while (!done) {
      const answer = await readyz().catch(() => undefined); // not listening yet
      if (answer?.status === 200) watch.readyzOk.push(Date.now());
      await sleep(100);
    }
  })();
  while (!done) {
    const pod = pods().find(running);
    if (pod && readyCondition(pod) === 'True') watch.podReady.push(Date.now());
    const failed =
      pod && watch.firstFailure === undefined
        ? podLog(pod).find((l) => /^metrics export failed/.test(String(l.msg)))
        : undefined;
    if (failed) watch.firstFailure = Date.parse(String(failed.time)); // the agent's own clock: this machine's
    await sleep(250);
  }
  await readyzLoop;
  return watch;
}

/** The first install, made while the collector is down, and what the node, the agent and the kubelet showed. */
interface Install {
  /** The pod, once Ready. */
  pod: Doc;
  outage: OutageWatch;
  /** While exports failed: the pins and XDP programs on the node, and the interfaces the agent logged it attached to. */
  hostPins: string[];
  realXdp: string[];
  pinnedInterfaces: string[];
  attachedTo: unknown[];
  /** /readyz's first answer, before any export had completed. */
  early: { status: number; body: string };
  /** The pod's Ready condition once a second for four readiness periods while exports failed. */
  readyWhileFailing: Array<string | undefined>;
  /** The kubelet's Unhealthy events for the pod. */
  unhealthy: string[];
  /** After the collector came up. */
  readyzAfter: { status: number; body: string };
}

/**
 * helm install with the collector down (its port closed), so the agent attaches but cannot export; then the collector
 * comes up, the next export succeeds, and the pod turns Ready.
 */
const installDuringOutage = stage(async (): Promise<Install> => {
  await collector.kill();
  helm('install', RELEASE, CHART, '-n', NAMESPACE, '-f', values());
  let endWatch!: () => void;
  const watching = watchOutage(
    new Promise<void>((resolve) => {
      endWatch = resolve;
    }),
  );
  try {
    const pod = await waitForPod('the carnx container to run', running);
    await waitFor(
      'the attachment on the test veth',
      () => hostPins().length > 0 && xdpOn(pair.host) !== undefined,
      30_000,
      200,
    ).catch((err: Error) => {
      throw new Error(`${err.message}${clusterState()}`);
    });
    const attachedPins = { hostPins: hostPins(), realXdp: xdpOnRealInterfaces(), pinnedInterfaces: pinnedInterfaces() };
    const attachedTo = podLog(pod)
      .filter((l) => /attached/.test(String(l.msg)))
      .map((l) => l.interface);
    // Before the first export: 503 "no export has completed yet"; after it failed: 503 "exports are failing".
    const early = await waitFor('/readyz to answer', () => readyz().catch(() => undefined), 20_000, 200);
    await waitFor(
      '/readyz to report the failing exports',
      async () => {
        const answer = await readyz();
        return answer.status === 503 && /exports are failing/.test(answer.body);
      },
      20_000,
      200,
    );
    const readyWhileFailing: Array<string | undefined> = [];
    for (let i = 0; i < 4; i++) {
      await sleep(1_000); // four readiness periods
      readyWhileFailing.push(readyCondition(pods().find((p) => p.metadata.uid === pod.metadata.uid)!));
    }
    const unhealthy = getJson(
      'events',
      '-n',
      NAMESPACE,
      '--field-selector',
      `involvedObject.name=${pod.metadata.name},reason=Unhealthy`,
    );
    endWatch();
    const outage = await watching;

    await collector.restart();
    const ready = await waitForPod(
      'the pod to turn Ready',
      (p) => p.metadata.uid === pod.metadata.uid && readyCondition(p) === 'True',
      30_000,
    );
    return {
      pod: ready,
      outage,
      ...attachedPins,
      attachedTo,
      early,
      readyWhileFailing,
      unhealthy: (unhealthy.items as Doc[]).map((e) => String(e.message)),
      readyzAfter: await readyz(),
    };
  } finally {
    endWatch();
    await watching;
  }
});

Cluster('helm install: the pod attaches to the test veth only; while exports fail it is not Ready', async () => {
  setUp();
  const install = await installDuringOutage();
  assert.equal(
    install.hostPins,
    pinSet(pair.host, ['receive']),
    "counters, link, meta and prog pinned in the node's bpffs",
  );
  assert.equal(install.realXdp, [], "no XDP program on the machine's own interfaces");
  assert.equal(install.pinnedInterfaces, [pair.host], 'pins for the test veth only');
  assert.equal([...new Set(install.attachedTo)], [pair.host], 'the agent attached to the test veth only');
  // Attached, exports failing: the agent says so, and the kubelet keeps the pod out of Ready.
  assert.is(install.early.status, 503, `not ready before an export has succeeded: ${install.early.body}`);
  assert.equal(
    install.readyWhileFailing,
    ['False', 'False', 'False', 'False'],
    `Ready while exports fail${clusterState()}`,
  );
  assert.ok(
    install.unhealthy.some((m) => /Readiness probe failed.*503/.test(m)),
    'the kubelet saw /readyz answer 503',
  );
  // The collector came up: the next export succeeded and the pod turned Ready.
  assert.equal(install.readyzAfter, { status: 200, body: 'counting on 1 interface(s), exporting' });
  assert.is(install.pod.status.containerStatuses[0].restartCount, 0, 'the container never restarted');
});

Cluster(
  'the pod is not Ready before its first export has succeeded (values.yaml: "a rollout that breaks exporting stops")',
  async () => {
    setUp();
    const { outage } = await installDuringOutage();
    assert.ok(outage.firstFailure, 'the outage was watched up to the first failed export');
    // A DaemonSet rollout moves to the next node as soon as the new pod is Ready (minReadySeconds 0), and helm's --wait
    // counts Ready pods: a pod that is Ready before any export has been tried lets a broken endpoint roll everywhere.
    const early = (moments: number[]) => moments.filter((t) => t < outage.firstFailure!).length;
    assert.equal(
      { readyzAnswered200: early(outage.readyzOk), kubeletSawReady: early(outage.podReady) },
      { readyzAnswered200: 0, kubeletSawReady: 0 },
      'polls that found the agent ready before its first export (which failed)',
    );
  },
);

const SENT = { udp4: 50, udp6: 20, pings: 5, tcp4: 4 };

/** Known traffic on the test veth once the pod is Ready: the quiet moments before (`attached`) and after it. */
const counted = stage(async (): Promise<{ attached: Settled; beforeRestart: Settled }> => {
  await installDuringOutage();
  const attached = await settle(pair, collector, pair.host);
  up(pair);
  sendUdp(pair, pair.hostAddress, SENT.udp4, 200);
  sendUdp(pair, `${HOST_V6}%${pair.peer}`, SENT.udp6, 60);
  ping(pair, pair.hostAddress, SENT.pings);
  await tcpConnections(pair, pair.hostAddress, SENT.tcp4, 300);
  return { attached, beforeRestart: await settle(pair, collector, pair.host) };
});

Cluster("counts at the collector equal the kernel's rx statistics, with the node and cluster names", async () => {
  setUp();
  const { pod } = await installDuringOutage();
  const { attached, beforeRestart } = await counted();
  const start = exportedCounters(attached.points, pair.host, 'cumulative');
  assert.is(sum(start.packets), 0n, 'nothing counted while the namespace side was down');
  const exported = exportedCounters(beforeRestart.points, pair.host, 'cumulative');

  const rxPackets = beforeRestart.rx.packets - attached.rx.packets;
  const rxBytes = beforeRestart.rx.bytes - attached.rx.bytes;
  assert.ok(rxPackets > BigInt(SENT.udp4 + SENT.udp6), `the traffic arrived (${rxPackets} frames)`);
  assert.is(sum(exported.packets), rxPackets, 'carnx.packets over all classes = rx_packets delta');
  // veth's rx_bytes leave out the Ethernet header; generic XDP sees whole frames, native XDP on veth as well, but
  // veth then counts what is left after the header is pulled (test/e2e/traffic-totals.test.ts).
  const mode = xdpOn(pair.host);
  assert.is(
    sum(exported.bytes),
    rxBytes + (mode === 'xdpgeneric' ? 0n : ETH_HEADER * rxPackets),
    `carnx.bytes = rx_bytes delta (${mode})`,
  );
  assert.is(exported.packets[classIndex('ipv4', 'udp')], BigInt(SENT.udp4), 'IPv4 UDP datagrams sent');
  assert.is(exported.bytes[classIndex('ipv4', 'udp')], BigInt(SENT.udp4 * (14 + 20 + 8 + 200)), 'IPv4 UDP bytes');
  assert.is(exported.packets[classIndex('ipv6', 'udp')], BigInt(SENT.udp6), 'IPv6 UDP datagrams sent');
  assert.is(exported.packets[classIndex('ipv4', 'icmp')], BigInt(SENT.pings), 'echo requests');
  assert.is(exported.tcpSyn[0], BigInt(SENT.tcp4), 'one SYN per connection');

  const resource = beforeRestart.points.find((p) => p.attributes['network.interface.name'] === pair.host)!.resource;
  assert.is(resource['k8s.node.name'], env.CARNX_CLUSTER_NODE, 'k8s.node.name from the downward API');
  assert.is(resource['k8s.cluster.name'], CLUSTER_NAME, 'k8s.cluster.name from clusterName');
  assert.is(resource['service.name'], 'carnx');
  assert.is(resource['host.name'], hostname(), "host.name: the pod shares the node's UTS namespace (hostNetwork)");

  // The header came from the Secret: the agent names it, and its value never reaches the log.
  const log = podLog(pod);
  const exporting = log.find((l) => l.msg === 'exporting metrics over OTLP/gRPC');
  assert.equal(exporting?.headerNames, ['x-carnx-ci'], 'CARNX_OTLP_HEADERS from the Secret');
  assert.not.ok(JSON.stringify(log).includes(headerValue), 'the header value is not logged');
});

Cluster('a deleted pod is replaced, adopts the pinned attachment, and the counts carry on with no reset', async () => {
  setUp();
  const { pod: firstPod } = await installDuringOutage();
  const { attached, beforeRestart } = await counted();
  const series = (points: Point[]) =>
    points.filter((p) => p.metric === 'carnx.packets' && p.attributes['network.interface.name'] === pair.host);
  const startTimes = new Set(series(beforeRestart.points).map((p) => p.start));
  const instance = series(beforeRestart.points)[0]!.resource['service.instance.id'];

  kubectl('delete', 'pod', '-n', NAMESPACE, firstPod.metadata.name, '--wait=false');
  // Traffic while the old pod stops and the new one starts: the kernel counts it, whoever is running.
  sendUdp(pair, pair.hostAddress, 30, 100);
  const second = await waitForPod(
    'the replacement pod to turn Ready',
    (p) => p.metadata.uid !== firstPod.metadata.uid && readyCondition(p) === 'True',
    90_000,
  );
  sendUdp(pair, pair.hostAddress, 20, 100);
  const after = await settle(pair, collector, pair.host);
  const exported = exportedCounters(after.points, pair.host, 'cumulative');

  assert.ok(
    podLog(second).some((l) => l.msg === 'adopted pinned attachment'),
    `the new pod adopted the pins:\n${JSON.stringify(podLog(second))}`,
  );
  assert.is(
    sum(exported.packets),
    after.rx.packets - attached.rx.packets,
    'cumulative since the first attach = rx_packets delta',
  );
  const before = exportedCounters(beforeRestart.points, pair.host, 'cumulative');
  assert.is(
    exported.packets[classIndex('ipv4', 'udp')]! - before.packets[classIndex('ipv4', 'udp')]!,
    50n,
    'every datagram of the restart counted',
  );
  const newSeries = series(after.points).filter(
    (p) => p.resource['service.instance.id'] === instance && p.time > beforeRestart.points.at(-1)!.time,
  );
  assert.ok(newSeries.length > 0, 'the new pod exports under the same service.instance.id');
  assert.equal(new Set(newSeries.map((p) => p.start)), startTimes, 'the same start time: no reset for the backend');
});

/** Uninstalls the release if a test before left it installed, and waits for its pods to go. */
async function notInstalled(): Promise<void> {
  const releases = JSON.parse(helm('list', '-n', NAMESPACE, '-o', 'json')) as Doc[];
  if (!releases.some((r) => r.name === RELEASE)) return;
  helm('uninstall', RELEASE, '-n', NAMESPACE, '--wait', '--timeout', '120s');
  await waitFor('the pods to go', () => pods().length === 0, 60_000, 200);
}

/** Waits until no pod of the release is left, keeping the last log read of `pod` (the kubelet deletes it with the pod). */
async function podsGone(pod: Doc): Promise<Array<Record<string, unknown>>> {
  let last: Array<Record<string, unknown>> = [];
  await waitFor(
    'the pods to go',
    () => {
      const now = podLog(pod);
      if (now.length > 0) last = now;
      return pods().length === 0;
    },
    60_000,
    200,
  );
  return last;
}

Cluster(
  'uninstall, option 1 of the chart README: keepAttachedOnExit=false, roll, uninstall: no XDP program, no pins',
  async () => {
    setUp();
    await installDuringOutage();
    assert.ok(hostPins().length > 0, 'attached before');
    helm(
      'upgrade',
      RELEASE,
      CHART,
      '-n',
      NAMESPACE,
      '--reuse-values',
      '--set',
      'xdp.keepAttachedOnExit=false',
      '--wait',
      '--timeout',
      '120s',
    );
    // Not in the README: helm's --wait accepts a DaemonSet with (nodes - maxUnavailable) Ready pods, zero on one node,
    // so it can return before the new pod has adopted the pins; an uninstall then may stop a pod that never held them.
    kubectl('rollout', 'status', `daemonset/${RELEASE}`, '-n', NAMESPACE, '--timeout', '120s');
    const rolled = pods().filter(running);
    assert.is(rolled.length, 1);
    assert.ok(
      podLog(rolled[0]!).some((l) => l.msg === 'adopted pinned attachment'),
      'the rolled pod adopted the pins',
    );
    helm('uninstall', RELEASE, '-n', NAMESPACE, '--wait', '--timeout', '120s');
    // The DaemonSet is gone when helm returns; its pod may still be stopping (it detaches in its SIGTERM handler).
    const last = await podsGone(rolled[0]!);
    assert.is(xdpOn(pair.host), undefined, 'no XDP program on the test veth');
    assert.equal(pinTree(join(HOST_PINS, 'carnx')), [], "nothing of carnx left in the node's bpffs");
    assert.ok(
      last.some((l) => l.msg === 'stopped' && l.keptAttached === false),
      `the last pod detached on its way out:\n${JSON.stringify(last)}`,
    );
    assert.equal(xdpOnRealInterfaces(), [], "no XDP program on the machine's own interfaces");
  },
);

Cluster(
  'uninstall, option 2 of the chart README: helm uninstall leaves the programs; kubectl debug + carnx detach removes them',
  async () => {
    setUp();
    await notInstalled();
    helm('install', RELEASE, CHART, '-n', NAMESPACE, '-f', values());
    kubectl('rollout', 'status', `daemonset/${RELEASE}`, '-n', NAMESPACE, '--timeout', '120s');
    const pod = pods().find(running)!;
    helm('uninstall', RELEASE, '-n', NAMESPACE, '--wait', '--timeout', '120s');
    const last = await podsGone(pod);
    assert.ok(
      last.some((l) => l.msg === 'stopped' && l.keptAttached === true),
      `the pod kept its programs on exit:\n${JSON.stringify(last)}`,
    );
    assert.equal(hostPins(), pinSet(pair.host, ['receive']), 'as documented, uninstall leaves the pins');
    assert.ok(xdpOn(pair.host), 'and the program attached');

    // The README's loop, for this one node, without -it (no terminal here) and with the image under test.
    const node = env.CARNX_CLUSTER_NODE!;
    const created = kubectl(
      'debug',
      `node/${node}`,
      '--profile=sysadmin',
      `--image=${IMAGE.repository}:${IMAGE.tag}`,
      '--',
      'node',
      '/opt/carnx/dist/src/main.js',
      'detach',
      '--bpffs-path',
      '/host/sys/fs/bpf',
    );
    const debugPod = /pod (node-debugger-\S+)/.exec(created)?.[1];
    assert.ok(debugPod, `kubectl debug named its pod: ${created}`);
    const phase = await waitFor(
      'the debug pod to finish',
      () => {
        const p = getJson('pod', '-n', 'default', debugPod!).status?.phase as string;
        return p === 'Succeeded' || p === 'Failed' ? p : undefined;
      },
      60_000,
      500,
    );
    assert.is(phase, 'Succeeded', `carnx detach in the debug pod: ${kubectl('get', 'events', '-n', 'default')}`);
    kubectl('delete', 'pod', '-n', 'default', debugPod!, '--wait=true');
    assert.is(xdpOn(pair.host), undefined, 'no XDP program on the test veth');
    assert.equal(pinTree(join(HOST_PINS, 'carnx')), [], "nothing of carnx left in the node's bpffs");
  },
);

Cluster.run();
