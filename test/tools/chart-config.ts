// How the Helm chart departs from carnx's config schema: the keys it renames, sets itself or keeps out, and why.
/** A JSON-schema fragment, as values.schema.json holds it. */
export type JsonSchema = Record<string, unknown>;

/** A value of the chart that is no agent key (a Secret's name, the node collector's port). */
export interface ChartOnlyValue {
  path: string;
  doc: string;
  default: unknown;
  schema: JsonSchema;
}

/** How the chart departs from passing a key through (same path, default, meaning and JSON schema). */
export interface KeyOverride {
  /** The value's path when it differs from the key; null: no value, the chart decides alone. */
  value?: string | null;
  /** Replaces the agent's doc: the value means something else in the chart. */
  doc?: string;
  /** Follows the agent's doc: what the chart adds, and why a chart default differs. */
  note?: string;
  /** The chart's default when it differs from the agent's (the doc or note says why). */
  default?: unknown;
  /** The value's JSON schema, from the one the key's format gives. */
  schema?: (fromFormat: JsonSchema) => JsonSchema;
  /** The template expression written for the key in the config file; null: the key is not written there. */
  config?: string | null;
  /** A template condition the key is written under. */
  configIf?: string;
  /** For the README: how the chart sets the key, when it is not simply the value of the same name. */
  how?: string;
  /** Chart-only values written next to this key's value in values.yaml. */
  before?: ChartOnlyValue[];
  after?: ChartOnlyValue[];
}

/** Where the node's bpffs appears in the container: outside /sys, see bpffs.hostPath. */
export const CONTAINER_BPFFS = '/host/sys/fs/bpf';

const PORT: JsonSchema = { type: 'integer', minimum: 1, maximum: 65535 };

/** Every departure from the schema. A key not listed here reaches the chart as it is. */
export const KEY_OVERRIDES: Readonly<Record<string, KeyOverride>> = {
  'interfaces.include': { note: "The pod runs in the node's network namespace, so these are the node's interfaces." },
  'interfaces.exclude': {
    note:
      'The list is spelled out so you can see it and copy it when you change it; a Kubernetes node has hundreds of ' +
      'pod veths.',
  },
  'interfaces.rescanIntervalMs': {
    note: '5 s: a new NIC is counted within seconds, and a rescan is one sysfs listing.',
  },
  'xdp.replaceForeign': { note: "On a Kubernetes node it may also be the CNI's (Cilium)." },
  'xdp.object': { value: null, config: null, how: 'not set: the object shipped in the image' },
  'xdp.keepAttachedOnExit': {
    default: true,
    note:
      "On in the chart, so counting goes on in the node's bpffs while a pod restarts or upgrades, and the next pod " +
      'resumes the same counters. The cost: after `helm uninstall` the programs stay attached until you clean up ' +
      '(README.md, "Restarts, upgrades and uninstall"). false: every pod exit detaches, and counters restart from ' +
      'zero.',
  },
  'bpffs.path': {
    value: 'bpffs.hostPath',
    doc:
      "Where the node's BPF filesystem is mounted; carnx pins its programs under <hostPath>/carnx/. Mounting it from " +
      'the host (not a pod-local tmpfs) is what lets counting continue across pod restarts and upgrades. The ' +
      `container sees it at ${CONTAINER_BPFFS} (the agent's bpffs.path): outside /sys, which the runtimes' default ` +
      'AppArmor profile makes unwritable below /sys/fs/ (except cgroup).',
    config: CONTAINER_BPFFS,
    how: `always \`${CONTAINER_BPFFS}\`, where the container sees the node's \`bpffs.hostPath\``,
  },
  'export.intervalMs': { note: '10 s matches the usual scrape interval of the backends.' },
  'export.shutdownTimeoutMs': {
    note: 'Must be shorter than terminationGracePeriodSeconds: the chart refuses otherwise.',
  },
  'otlp.endpoint': {
    default: '',
    doc:
      'Where to send metrics (OTLP/gRPC). Empty: the collector on the same node, at ' +
      '<otlp.nodeCollector.scheme>://<status.hostIP>:<otlp.nodeCollector.port> (an OpenTelemetry Collector DaemonSet ' +
      'with a hostPort, the usual layout: no cross-node traffic, no Service). Otherwise http://host:port ' +
      '(plaintext), https://host:port or host:port (TLS), e.g. ' +
      'http://otel-collector.observability.svc.cluster.local:4317 (cluster DNS works: the pod uses dnsPolicy ' +
      'ClusterFirstWithHostNet) or api.honeycomb.io:443.',
    schema: (s) => ({ ...s, pattern: `^$|${String(s.pattern)}` }),
    configIf: 'not (include "carnx.nodeEndpoint" .)',
    how: 'the value when set; empty: `CARNX_OTLP_ENDPOINT`, built in the pod from `status.hostIP`',
    after: [
      {
        path: 'otlp.nodeCollector.port',
        doc: "The collector's OTLP/gRPC port on the node (its hostPort), used when otlp.endpoint is empty.",
        default: 4317,
        schema: PORT,
      },
      {
        path: 'otlp.nodeCollector.scheme',
        doc:
          'http: plaintext, as a collector listening on the node normally is; https: TLS (set otlp.tls.* for its ' +
          'CA).',
        default: 'http',
        schema: { type: 'string', enum: ['http', 'https'] },
      },
    ],
  },
  'otlp.headers': {
    note:
      'The chart keeps them in a Secret it creates (never in the ConfigMap). Prefer otlp.existingSecret for real ' +
      'keys, so they stay out of your values files.',
    schema: (s) => ({ ...s, propertyNames: { pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' } }),
    config: null,
    how: '`otlp.headers` or `otlp.existingSecret`, passed as `CARNX_OTLP_HEADERS` from a Secret',
    after: [
      {
        path: 'otlp.existingSecret.name',
        doc:
          'A Secret you manage whose key holds the headers as name1=value1,name2=value2 (values percent-encoded), ' +
          'the OTEL_EXPORTER_OTLP_HEADERS format. Cannot be combined with otlp.headers. Empty: not used.',
        default: '',
        schema: { type: 'string' },
      },
      {
        path: 'otlp.existingSecret.key',
        doc: 'The key of that Secret.',
        default: 'headers',
        schema: { type: 'string' },
      },
    ],
  },
  'otlp.headersFile': {
    value: null,
    config: null,
    how: 'not set: headers come from a Secret as `CARNX_OTLP_HEADERS` (`otlp.headers` or `otlp.existingSecret`)',
  },
  'otlp.tls.ca': {
    doc:
      "Key in otlp.tls.existingSecret of the CA bundle for the collector's certificate, e.g. ca.crt. Empty: the " +
      'system roots.',
    config: tlsFile('ca'),
    how: '`/etc/carnx/tls/<otlp.tls.ca>`, a file of `otlp.tls.existingSecret`',
    before: [
      {
        path: 'otlp.tls.existingSecret',
        doc: 'A Secret you manage holding PEM files, mounted read-only at /etc/carnx/tls. Needed for ca, cert and key.',
        default: '',
        schema: { type: 'string' },
      },
    ],
  },
  'otlp.tls.cert': {
    doc:
      'Key in otlp.tls.existingSecret of the client certificate for mutual TLS, e.g. tls.crt; give it with ' +
      'otlp.tls.key.',
    config: tlsFile('cert'),
    how: '`/etc/carnx/tls/<otlp.tls.cert>`, a file of `otlp.tls.existingSecret`',
  },
  'otlp.tls.key': {
    doc:
      'Key in otlp.tls.existingSecret of the private key of the client certificate, e.g. tls.key; give it with ' +
      'otlp.tls.cert.',
    config: tlsFile('key'),
    how: '`/etc/carnx/tls/<otlp.tls.key>`, a file of `otlp.tls.existingSecret`',
  },
  'otlp.tls.insecure': { note: 'Prefer writing http:// in the endpoint.' },
  'otlp.compression': {
    note: 'gzip: node-to-collector bandwidth is small either way; gzip costs a little CPU and saves most of it.',
  },
  'otlp.temporality': { note: 'cumulative suits Prometheus-like backends.' },
  'resource.attributes': {
    value: 'resourceAttributes',
    note:
      'k8s.node.name is set from the downward API and k8s.cluster.name from clusterName; set them here only to ' +
      'override.',
    config: '{{ include "carnx.resourceAttributes" . }}',
    how: '`resourceAttributes` over `k8s.cluster.name` from `clusterName`; `k8s.node.name` comes from `K8S_NODE_NAME`',
  },
  'log.level': { note: 'info: start, attach and detach events, export failures.' },
  'health.listen': {
    value: 'health.port',
    doc:
      "Port of the agent's /livez and /readyz on the node's loopback (127.0.0.1; the pod shares the node's network). " +
      'Loopback only: nothing outside the node can reach it, and the kubelet probes from the node itself. Must be ' +
      'free on every node, because the pod uses the host network.',
    default: 9400,
    schema: () => PORT,
    config: '{{ printf "127.0.0.1:%d" (int64 .Values.health.port) | toJson }}',
    how: '`127.0.0.1:<health.port>`, where the probes look (carnx\'s default, `""`, serves no health endpoints)',
  },
};

function tlsFile(name: string): string {
  const v = `.Values.otlp.tls.${name}`;
  return `{{ ternary (printf "/etc/carnx/tls/%s" ${v}) "" (ne ${v} "") | toJson }}`;
}

/** Descriptions of the mappings that hold values; a section not listed gets a generic one. */
export const SECTION_DOCS: Readonly<Record<string, string>> = {
  interfaces: 'Which node interfaces carnx counts on (agent config interfaces.*).',
  xdp: 'How the XDP program is attached (agent config xdp.*).',
  bpffs: "The node's BPF filesystem.",
  export: 'Collection and export timing (agent config export.*).',
  otlp: 'Where and how metrics are sent (agent config otlp.*).',
  'otlp.nodeCollector': 'The collector on the node, used when otlp.endpoint is empty.',
  'otlp.existingSecret': 'A Secret you manage that holds the headers instead of otlp.headers.',
  'otlp.tls': 'TLS files and options (agent config otlp.tls.*).',
  log: 'Logging (agent config log.*).',
  health: "The agent's health endpoints (agent config health.listen = 127.0.0.1:<port>).",
};
