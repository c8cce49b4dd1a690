// The Helm chart with the real helm: lint, render, and assertions on the manifests a cluster would receive.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { DEFAULT_EXCLUDE } from '../../src/config/schema.js';
import { parseKeyValueList } from '../../src/config/formats.js';
import { checkConfig } from '../fixtures/agent-process.js';
import { helmBinary } from '../fixtures/built-tools.js';
import { PROVEN as PROVEN_CAPS } from '../fixtures/capabilities.js';
import { commandResult, type CommandResult } from '../fixtures/command.js';
import { PACKAGE_VERSION, readDoc, repoPath, type Doc } from '../fixtures/repo.js';
import { reported } from '../fixtures/hooks.js';

const CHART = repoPath('helm/carnx');
const CI_VALUES = readdirSync(join(CHART, 'ci'))
  .filter((f) => f.endsWith('-values.yaml'))
  .sort();
/** The proven capabilities as the chart spells them, without CAP_. */
const PROVEN = PROVEN_CAPS.map((c) => c.replace(/^CAP_/, '')).sort();

let work = '';

/** helm with no cluster to reach. */
function helm(args: string[]): CommandResult {
  return commandResult(helmBinary(), args, { KUBECONFIG: '/nonexistent' });
}

/** helm template with these values files and --set flags; fails the test with helm's message if it does not render. */
function render(files: string[] = [], sets: string[] = [], chart = CHART): Doc[] {
  const args = [
    'template',
    'rel',
    chart,
    '--namespace',
    'monitoring',
    ...files.flatMap((f) => ['-f', f]),
    ...sets.flatMap((s) => ['--set', s]),
  ];
  const run = helm(args);
  assert.is(run.status, 0, `helm ${args.join(' ')}\n${run.stderr}`);
  return YAML.parseAllDocuments(run.stdout)
    .map((d) => d.toJS() as Doc)
    .filter((d) => d !== null);
}

function renderFails(sets: string[]): string {
  const run = helm(['template', 'rel', CHART, ...sets.flatMap((s) => ['--set', s])]);
  assert.is.not(run.status, 0, `expected helm template to fail with ${sets.join(' ')}`);
  return run.stderr;
}

const kind = (docs: Doc[], k: string): Doc | undefined => docs.find((d) => d.kind === k);
const daemonSet = (docs: Doc[]): Doc => kind(docs, 'DaemonSet')!;
const container = (docs: Doc[]): Doc => daemonSet(docs).spec.template.spec.containers[0];
const agentConfig = (docs: Doc[]): Doc => YAML.parse(kind(docs, 'ConfigMap')!.data['carnx.yaml']);
const envVar = (docs: Doc[], name: string): Doc | undefined =>
  (container(docs).env as Doc[]).find((e) => e.name === name);

/**
 * The environment the agent would see in the pod: plain values with $(VAR) expanded as the kubelet does, the downward
 * API filled in with sample values, and Secret keys with the chart's own Secret or a sample for an existing one.
 */
function podEnv(docs: Doc[]): Record<string, string> {
  const env: Record<string, string> = {};
  const secret = kind(docs, 'Secret');
  for (const e of container(docs).env as Doc[]) {
    if (e.value !== undefined)
      env[e.name] = String(e.value).replace(/\$\(([A-Z0-9_]+)\)/g, (_m, v: string) => env[v] ?? `$(${v})`);
    else if (e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName') env[e.name] = 'node-a';
    else if (e.valueFrom?.fieldRef?.fieldPath === 'status.hostIP') env[e.name] = '10.0.0.7';
    else if (e.valueFrom?.secretKeyRef) {
      const ref = e.valueFrom.secretKeyRef;
      env[e.name] = secret?.metadata.name === ref.name ? secret!.stringData[ref.key] : 'x-api-key=sample';
    } else throw new Error(`env ${e.name}: a source podEnv() does not know`);
  }
  return env;
}

/** `carnx check --config <the ConfigMap's file>` with the pod's environment: the agent's own validation. */
function carnxCheck(docs: Doc[], name: string): { status: number | null; output: string } {
  const file = join(work, `${name}.carnx.yaml`);
  writeFileSync(file, kind(docs, 'ConfigMap')!.data['carnx.yaml']);
  return checkConfig(file, podEnv(docs));
}

const Chart = suite('helm chart');

Chart.before(
  reported(() => {
    helmBinary();
    work = mkdtempSync(join(tmpdir(), 'carnx-helm-'));
  }),
);

Chart.after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

Chart('helm lint --strict passes for the defaults and every ci/*-values.yaml', () => {
  assert.ok(CI_VALUES.length >= 3, `only ${CI_VALUES.length} ci values files`);
  for (const args of [[], ...CI_VALUES.map((f) => ['-f', join(CHART, 'ci', f)])]) {
    const run = helm(['lint', '--strict', CHART, ...args]);
    assert.is(run.status, 0, `helm lint --strict ${args.join(' ')}\n${run.stdout}${run.stderr}`);
  }
});

Chart("Chart.yaml: name carnx, appVersion is package.json's version, and the image tag defaults to it", () => {
  const chart = readDoc('helm/carnx/Chart.yaml');
  assert.is(chart.name, 'carnx');
  assert.is(chart.appVersion, PACKAGE_VERSION);
  assert.is(container(render()).image, `ghcr.io/carnx/carnx:${PACKAGE_VERSION}`);
});

Chart('defaults: least privilege, exactly the proven capabilities', () => {
  const docs = render();
  const sc = container(docs).securityContext;
  assert.is(sc.privileged, false);
  assert.is(sc.allowPrivilegeEscalation, false);
  assert.is(sc.readOnlyRootFilesystem, true);
  assert.equal(sc.capabilities.drop, ['ALL']);
  assert.equal([...sc.capabilities.add].sort(), PROVEN);
  assert.is(sc.runAsUser, 0);
  assert.is(sc.seccompProfile.type, 'RuntimeDefault');
  const pod = daemonSet(docs).spec.template.spec;
  assert.is(pod.automountServiceAccountToken, false);
  assert.is(kind(docs, 'ServiceAccount')!.automountServiceAccountToken, false);
  assert.is(pod.serviceAccountName, kind(docs, 'ServiceAccount')!.metadata.name);
  assert.not.ok(pod.hostPID, 'hostPID');
  assert.not.ok(pod.hostIPC, 'hostIPC');
});

Chart('defaults: every Linux node, host network with cluster DNS, rolling update, a priority class', () => {
  const docs = render();
  const ds = daemonSet(docs);
  const pod = ds.spec.template.spec;
  assert.is(pod.hostNetwork, true);
  assert.is(pod.dnsPolicy, 'ClusterFirstWithHostNet');
  assert.equal(pod.tolerations, [{ operator: 'Exists' }]);
  assert.equal(pod.nodeSelector, { 'kubernetes.io/os': 'linux' });
  assert.is(ds.spec.updateStrategy.type, 'RollingUpdate');
  assert.is(ds.spec.updateStrategy.rollingUpdate.maxSurge, 0);
  const pc = kind(docs, 'PriorityClass')!;
  assert.is(pod.priorityClassName, pc.metadata.name);
  assert.ok(pc.value > 0 && pc.value < 1_000_000_000, `priority ${pc.value}`);
  assert.equal(ds.spec.selector.matchLabels, {
    'app.kubernetes.io/name': 'carnx',
    'app.kubernetes.io/instance': 'rel',
  });
  const { requests, limits } = container(docs).resources;
  assert.ok(requests.cpu && requests.memory && limits.memory, 'requests and a memory limit');
});

Chart("defaults: the node's bpffs is mounted read-write where the config points, the config read-only", () => {
  const docs = render();
  const pod = daemonSet(docs).spec.template.spec;
  const mounts = container(docs).volumeMounts as Doc[];
  const bpffs = pod.volumes.find((v: Doc) => v.name === 'bpffs');
  assert.equal(bpffs.hostPath, { path: '/sys/fs/bpf', type: 'Directory' });
  const bpffsMount = mounts.find((m) => m.name === 'bpffs')!;
  assert.is(bpffsMount.readOnly, undefined);
  assert.is(bpffsMount.mountPropagation, 'HostToContainer');
  assert.is(agentConfig(docs).bpffs.path, bpffsMount.mountPath);
  // The runtimes' default AppArmor profile denies writes below /sys/fs/ (but cgroup): pins must be made elsewhere.
  assert.not.match(bpffsMount.mountPath, /^\/sys\//);
  const config = mounts.find((m) => m.name === 'config')!;
  assert.is(config.readOnly, true);
  assert.equal(container(docs).args, ['run', '--config', `${config.mountPath}/carnx.yaml`]);
  assert.is(pod.volumes.filter((v: Doc) => v.hostPath).length, 1, 'hostPath volumes other than bpffs');
});

Chart('defaults: node name from the downward API, exports to the collector on the node (status.hostIP)', () => {
  const docs = render();
  assert.equal(envVar(docs, 'K8S_NODE_NAME')!.valueFrom, { fieldRef: { fieldPath: 'spec.nodeName' } });
  assert.equal(envVar(docs, 'HOST_IP')!.valueFrom, { fieldRef: { fieldPath: 'status.hostIP' } });
  assert.is(envVar(docs, 'CARNX_OTLP_ENDPOINT')!.value, 'http://$(HOST_IP):4317');
  const names = (container(docs).env as Doc[]).map((e) => e.name);
  assert.ok(names.indexOf('HOST_IP') < names.indexOf('CARNX_OTLP_ENDPOINT'), 'HOST_IP must precede its use');
  assert.is(agentConfig(docs).otlp.endpoint, undefined, 'the node endpoint must not be in the shared ConfigMap');
  assert.is(envVar(docs, 'CARNX_OTLP_HEADERS'), undefined);
  assert.is(kind(docs, 'Secret'), undefined);
});

Chart('probes: /livez and /readyz on exactly the address the agent is told to listen on', () => {
  for (const args of [[], ['-f', join(CHART, 'ci/service-endpoint-values.yaml')]]) {
    const docs = render(args.length ? [args[1]!] : []);
    const [host, port] = (agentConfig(docs).health.listen as string).split(':');
    const c = container(docs);
    assert.equal(c.livenessProbe.httpGet, { host, path: '/livez', port: Number(port) });
    assert.equal(c.readinessProbe.httpGet, { host, path: '/readyz', port: Number(port) });
    assert.is(host, '127.0.0.1');
  }
});

Chart('the rendered config passes `carnx check` for the defaults and every ci values file', () => {
  for (const file of ['', ...CI_VALUES]) {
    const docs = render(file ? [join(CHART, 'ci', file)] : []);
    const run = carnxCheck(docs, file || 'defaults');
    assert.is(run.status, 0, `${file || 'defaults'}: ${run.output}`);
    assert.match(run.output, /configuration OK/);
  }
});

Chart("values.yaml excludes exactly the agent's built-in default list", () => {
  const values = readDoc('helm/carnx/values.yaml');
  assert.equal(values.interfaces.exclude, [...DEFAULT_EXCLUDE]);
  assert.equal(agentConfig(render()).interfaces.exclude, [...DEFAULT_EXCLUDE]);
});

Chart('checksum/config changes with the config and only with it', () => {
  const checksum = (sets: string[]) =>
    daemonSet(render([], sets)).spec.template.metadata.annotations['checksum/config'];
  const base = checksum([]);
  assert.match(base, /^[0-9a-f]{64}$/);
  assert.is.not(checksum(['export.intervalMs=20000']), base);
  assert.is.not(checksum(['xdp.mode=generic']), base);
  assert.is(checksum(['resources.requests.cpu=50m']), base);
});

Chart('headers: a Secret the chart creates, percent-encoded so the agent reads back exactly the values given', () => {
  const headers = { 'x-honeycomb-team': 'k3y+with/odd=chars, and space%', 'x-honeycomb-dataset': 'carnx' };
  const docs = render(
    [],
    Object.entries(headers).map(([k, v]) => `otlp.headers.${k}=${v.replace(/,/g, '\\,')}`),
  );
  const secret = kind(docs, 'Secret')!;
  assert.is(secret.type, 'Opaque');
  const parsed = parseKeyValueList(secret.stringData.headers);
  assert.ok('map' in parsed, JSON.stringify(parsed));
  assert.equal((parsed as { map: Record<string, string> }).map, headers);
  assert.equal(envVar(docs, 'CARNX_OTLP_HEADERS')!.valueFrom, {
    secretKeyRef: { name: secret.metadata.name, key: 'headers' },
  });
  assert.not.match(kind(docs, 'ConfigMap')!.data['carnx.yaml'], /k3y/);
  assert.match(daemonSet(docs).spec.template.metadata.annotations['checksum/headers'], /^[0-9a-f]{64}$/);
});

Chart('ci/existing-secrets: headers and TLS files from Secrets the user manages', () => {
  const docs = render([join(CHART, 'ci/existing-secrets-values.yaml')]);
  assert.is(kind(docs, 'Secret'), undefined);
  assert.equal(envVar(docs, 'CARNX_OTLP_HEADERS')!.valueFrom, {
    secretKeyRef: { name: 'carnx-otlp-headers', key: 'otel-headers' },
  });
  const pod = daemonSet(docs).spec.template.spec;
  assert.equal(pod.volumes.find((v: Doc) => v.name === 'tls').secret, {
    secretName: 'carnx-otlp-tls',
    defaultMode: 256,
  });
  const mount = (container(docs).volumeMounts as Doc[]).find((m) => m.name === 'tls')!;
  assert.equal(mount, { name: 'tls', mountPath: '/etc/carnx/tls', readOnly: true });
  assert.equal(agentConfig(docs).otlp.tls, {
    ca: '/etc/carnx/tls/ca.crt',
    cert: '/etc/carnx/tls/tls.crt',
    key: '/etc/carnx/tls/tls.key',
    insecure: false,
  });
  assert.is(envVar(docs, 'HOST_IP'), undefined);
  assert.equal(pod.imagePullSecrets, [{ name: 'regcred' }]);
});

Chart(
  'ci/service-endpoint: a collector Service, an existing priority class, cluster name under user attributes',
  () => {
    const docs = render([join(CHART, 'ci/service-endpoint-values.yaml')]);
    const config = agentConfig(docs);
    assert.is(config.otlp.endpoint, 'http://otel-collector.observability.svc.cluster.local:4317');
    assert.is(config.otlp.temporality, 'delta');
    assert.equal(config.resource.attributes, {
      'deployment.environment': 'prod',
      'k8s.cluster.name': 'overridden-by-resource-attributes',
    });
    assert.is(envVar(docs, 'CARNX_OTLP_ENDPOINT'), undefined);
    assert.is(kind(docs, 'PriorityClass'), undefined);
    assert.is(daemonSet(docs).spec.template.spec.priorityClassName, 'system-node-critical');
    assert.is(kind(docs, 'ServiceAccount'), undefined);
    assert.is(daemonSet(docs).spec.template.spec.serviceAccountName, 'default');
    assert.is(config.xdp.keepAttachedOnExit, false);
    assert.equal(agentConfig(render([], ['clusterName=c1'])).resource.attributes, { 'k8s.cluster.name': 'c1' });
  },
);

Chart('`fail` with guidance on combinations that cannot work', () => {
  const cases: Array<[string[], RegExp]> = [
    [['otlp.headers.a=b', 'otlp.existingSecret.name=s'], /otlp.headers and otlp.existingSecret.name are both set/],
    [['otlp.tls.ca=ca.crt', 'otlp.nodeCollector.scheme=https'], /otlp.tls.existingSecret is empty/],
    [['otlp.tls.existingSecret=s', 'otlp.tls.cert=tls.crt', 'otlp.endpoint=https://c:4317'], /must be set together/],
    [['otlp.tls.existingSecret=s', 'otlp.tls.ca=ca.crt'], /exports are plaintext/],
    [['otlp.tls.insecure=true'], /only applies to an endpoint without a scheme/],
    [['export.shutdownTimeoutMs=30000'], /shorter than terminationGracePeriodSeconds/],
  ];
  for (const [sets, message] of cases) assert.match(renderFails(sets), message, sets.join(' '));
});

Chart('values.schema.json is strict: unknown keys, bad enums and out-of-range numbers are refused', () => {
  assert.match(renderFails(['colour=blue']), /additional properties 'colour' not allowed/);
  assert.match(renderFails(['otlp.endpont=http://x:4317']), /additional properties 'endpont' not allowed/);
  assert.match(renderFails(['xdp.mode=turbo']), /\/xdp\/mode/);
  assert.match(renderFails(['otlp.temporality=both']), /\/otlp\/temporality/);
  assert.match(renderFails(['export.intervalMs=50']), /\/export\/intervalMs/);
  assert.match(renderFails(['otlp.endpoint=http://collector:4317/v1/metrics']), /\/otlp\/endpoint/);
});

Chart('values.schema.json: every object closed (additionalProperties false) and every key described', () => {
  const schema = readDoc('helm/carnx/values.schema.json');
  const walk = (node: Doc, path: string): void => {
    if (node.properties) {
      assert.is(node.additionalProperties, false, `${path || '(root)'} is open`);
      for (const [key, child] of Object.entries(node.properties as Record<string, Doc>)) {
        assert.ok(
          typeof child.description === 'string' && child.description.length > 5,
          `${path}${key} has no description`,
        );
        walk(child, `${path}${key}.`);
      }
    }
  };
  walk(schema, '');
  // And every key of values.yaml is in the schema (helm would refuse the chart's own defaults otherwise).
  assert.is(helm(['template', 'rel', CHART]).status, 0);
});

/** Every leaf key path of values.yaml, e.g. otlp.tls.ca (maps of free-form entries count as one key). */
function valueKeys(node: Doc, prefix = ''): string[] {
  return Object.entries(node).flatMap(([k, v]) =>
    v !== null &&
    typeof v === 'object' &&
    !Array.isArray(v) &&
    Object.keys(v).length > 0 &&
    !['resources', 'nodeSelector', 'securityContext', 'probes'].includes(prefix + k)
      ? valueKeys(v as Doc, `${prefix}${k}.`)
      : [`${prefix}${k}`],
  );
}

Chart('README.md documents every value', () => {
  const readme = readFileSync(join(CHART, 'README.md'), 'utf8');
  const values = readDoc('helm/carnx/values.yaml');
  const missing = valueKeys(values).filter((key) => !readme.includes(`\`${key}\``));
  assert.equal(missing, [], `README.md lacks ${missing.join(', ')}`);
});

Chart('NOTES.txt renders and tells how to clean up when programs are kept attached', () => {
  // helm template never renders NOTES.txt: render a copy of it as an ordinary template of a copy of the chart.
  const copy = join(work, 'chart-with-notes');
  cpSync(CHART, copy, { recursive: true });
  const notes = readFileSync(join(copy, 'templates/NOTES.txt'), 'utf8');
  writeFileSync(join(copy, 'templates/_notes.tpl'), `{{- define "test.notes" -}}\n${notes}\n{{- end }}\n`);
  writeFileSync(join(copy, 'templates/notes.yaml'), 'notes: {{ include "test.notes" . | toJson }}\n');
  const text = (sets: string[]) => render([], sets, copy).find((d) => 'notes' in d)!.notes as string;
  assert.match(text([]), /--set xdp.keepAttachedOnExit=false --wait/);
  assert.match(text([]), /http:\/\/<node IP>:4317/);
  assert.not.match(text(['xdp.keepAttachedOnExit=false']), /keepAttachedOnExit=false/);
});

Chart.run();
