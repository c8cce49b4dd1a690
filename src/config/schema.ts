// The config schema: every key carnx reads, with its doc, format, default, env variable and flag; the one place defaults live.
import type convict from 'convict';
import { durationMs, oneOf, setOf } from './formats.js';

export type XdpMode = 'auto' | 'native' | 'generic' | 'tc';
export type CountedDirection = 'receive' | 'transmit';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type LogFormatSetting = 'auto' | 'json' | 'pretty';
export type LogSummary = 'auto' | 'on' | 'off';

/** The validated configuration, as loadConfig() returns it. */
export interface CarnxConfig {
  interfaces: { include: string[]; exclude: string[]; directions: CountedDirection[]; rescanIntervalMs: number };
  xdp: { mode: XdpMode; replaceForeign: boolean; object: string; keepAttachedOnExit: boolean };
  bpffs: { path: string };
  export: { intervalMs: number; shutdownTimeoutMs: number };
  otlp: {
    endpoint: string;
    headers: Record<string, string>;
    headersFile: string;
    tls: { ca: string; cert: string; key: string; insecure: boolean };
    compression: 'gzip' | 'none';
    timeoutMs: number;
    temporality: 'cumulative' | 'delta';
  };
  resource: { attributes: Record<string, string> };
  log: { level: LogLevel; format: LogFormatSetting; summary: LogSummary };
  health: { listen: string };
}

/**
 * Devices skipped by default. Their packets also cross a physical interface (pod and container veths, bridges),
 * or arrive there encapsulated (overlays, tunnels, WireGuard), so counting them would count traffic twice;
 * the rest carry no wire traffic (loopback, dummies, monitors). Kubernetes nodes also have hundreds of pod veths.
 */
export const DEFAULT_EXCLUDE: readonly string[] = [
  'lo',
  // Container and pod plumbing: veth pairs, CNI bridges and devices (Calico, Cilium, Flannel, Weave, kube-router, OVS).
  'veth*',
  'cali*',
  'cilium*',
  'lxc*',
  'docker*',
  'br-*',
  'podman*',
  'cni*',
  'flannel*',
  'weave*',
  'genev_sys_*',
  'kube-ipvs*',
  'kube-bridge',
  'kube-dummy-if',
  'nodelocaldns',
  'ovs-system',
  // Virtual machines: libvirt bridges and taps.
  'virbr*',
  'vnet*',
  'tap*',
  // Overlays and tunnels: the outer packet is already counted on the physical device.
  'vxlan*',
  'tunl*',
  'tun*',
  'gre*',
  'gretap*',
  'erspan*',
  'ip6tnl*',
  'ip6gre*',
  'sit*',
  'wg*',
  // No wire traffic: dummies, netlink monitors, ingress shaping helpers.
  'dummy*',
  'nlmon*',
  'ifb*',
];

const ms = (min: number, max: number) => durationMs(min, max);

export const configSchema: convict.Schema<CarnxConfig> = {
  interfaces: {
    include: {
      doc: 'Interfaces to count on: names or picomatch globs. Interfaces that appear later are picked up at the next rescan.',
      format: 'glob-list',
      default: ['*'],
      env: 'CARNX_INTERFACES_INCLUDE',
      arg: 'interfaces-include',
    },
    exclude: {
      doc:
        'Interfaces never to count on, even if included (exclude wins). The default skips loopback and virtual devices ' +
        '(container veths, bridges, overlays, tunnels) whose packets are also seen on a physical interface, so counting ' +
        'them would count traffic twice. Set to [] to count everything included.',
      format: 'glob-list',
      default: [...DEFAULT_EXCLUDE],
      env: 'CARNX_INTERFACES_EXCLUDE',
      arg: 'interfaces-exclude',
    },
    directions: {
      doc:
        'Which directions to count on each interface. receive: frames arriving (the hook xdp.mode picks); transmit: ' +
        'frames the host sends, counted at TC egress as the segments that reach the wire. Transmit needs tcx ' +
        '(kernel 6.6 or later); without it carnx says so once and counts receive only.',
      format: setOf('receive', 'transmit'),
      default: ['receive', 'transmit'],
      env: 'CARNX_INTERFACES_DIRECTIONS',
      arg: 'interfaces-directions',
    },
    rescanIntervalMs: {
      doc: 'How often to look for interfaces that appeared or went away.',
      format: ms(100, 3_600_000),
      default: 5000,
      env: 'CARNX_INTERFACES_RESCAN_INTERVAL_MS',
      arg: 'interfaces-rescan-interval-ms',
    },
  },
  xdp: {
    mode: {
      doc:
        'Where the receive side counts. auto: native (driver) XDP, else a TC ingress program (tcx), with the reason ' +
        'logged; the host keeps its GRO either way. generic: generic XDP, only when asked for: the kernel turns GRO ' +
        'off on a device with a generic XDP program, which can halve TCP receive throughput. tc: TC ingress only. ' +
        '(Before carnx 0.2, auto fell back to generic; offload was accepted but never worked.)',
      format: oneOf('auto', 'native', 'generic', 'tc'),
      default: 'auto',
      env: 'CARNX_XDP_MODE',
      arg: 'xdp-mode',
    },
    replaceForeign: {
      doc: 'Whether carnx may replace an XDP program it does not own. Off by default: that program may be a firewall or load balancer.',
      format: 'strict-boolean',
      default: false,
      env: 'CARNX_XDP_REPLACE_FOREIGN',
      arg: 'xdp-replace-foreign',
    },
    object: {
      doc: 'Path to the compiled XDP object. Empty means the one shipped with carnx (<package root>/xdp/carnx.bpf.o).',
      format: 'file-path-or-empty',
      default: '',
      env: 'CARNX_XDP_OBJECT',
      arg: 'xdp-object',
    },
    keepAttachedOnExit: {
      doc:
        'On a clean exit, leave the programs attached and pinned so counting continues and the next start resumes the ' +
        'same counters. Off: exit detaches and unpins.',
      format: 'strict-boolean',
      default: false,
      env: 'CARNX_XDP_KEEP_ATTACHED_ON_EXIT',
      arg: 'xdp-keep-attached-on-exit',
    },
  },
  bpffs: {
    path: {
      doc: 'Where the BPF filesystem is mounted; carnx pins its links and maps under <path>/carnx/.',
      format: 'absolute-path',
      default: '/sys/fs/bpf',
      env: 'CARNX_BPFFS_PATH',
      arg: 'bpffs-path',
    },
  },
  export: {
    intervalMs: {
      doc: 'How often counters are read and exported.',
      format: ms(100, 3_600_000),
      default: 10000,
      env: 'CARNX_EXPORT_INTERVAL_MS',
      arg: 'export-interval-ms',
    },
    shutdownTimeoutMs: {
      doc: 'Upper bound on the last export at shutdown, so a dead collector cannot hold up exit.',
      format: ms(100, 600_000),
      default: 5000,
      env: 'CARNX_EXPORT_SHUTDOWN_TIMEOUT_MS',
      arg: 'export-shutdown-timeout-ms',
    },
  },
  otlp: {
    endpoint: {
      doc: 'OTLP/gRPC endpoint. http:// is plaintext, https:// is TLS; host:port without a scheme is TLS unless otlp.tls.insecure is set.',
      format: 'otlp-endpoint',
      default: 'http://localhost:4317',
      env: 'CARNX_OTLP_ENDPOINT',
      arg: 'otlp-endpoint',
    },
    headers: {
      doc:
        'gRPC metadata sent with every export, e.g. an API key. Secret: values are redacted in logs and errors, as are ' +
        'those of OTEL_EXPORTER_OTLP_[METRICS_]HEADERS (the exporter sends them even when a config file sets these).',
      format: 'key-value-map',
      default: {},
      sensitive: true,
      env: 'CARNX_OTLP_HEADERS',
      arg: 'otlp-headers',
    },
    headersFile: {
      doc:
        'File of more headers, one name=value per line (# comments; values literal, not percent-encoded), so API keys ' +
        'stay out of the command line and the config file. Read at start and on reload; refused when group or others ' +
        'may read it (chmod 600). A name may not also be in otlp.headers. Empty: no file.',
      format: 'file-path-or-empty',
      default: '',
      env: 'CARNX_OTLP_HEADERS_FILE',
      arg: 'otlp-headers-file',
    },
    tls: {
      ca: {
        doc:
          'PEM file of the CA(s) that signed the collector certificate. Empty: the system store, the file SSL_CERT_FILE ' +
          'names, else the first of /etc/ssl/certs/ca-certificates.crt, /etc/pki/tls/certs/ca-bundle.crt, ' +
          "/etc/ssl/cert.pem (plus NODE_EXTRA_CA_CERTS); without one, Node's bundled Mozilla roots.",
        format: 'file-path-or-empty',
        default: '',
        env: 'CARNX_OTLP_TLS_CA',
        arg: 'otlp-tls-ca',
      },
      cert: {
        doc: 'PEM client certificate for mutual TLS; give it together with otlp.tls.key.',
        format: 'file-path-or-empty',
        default: '',
        env: 'CARNX_OTLP_TLS_CERT',
        arg: 'otlp-tls-cert',
      },
      key: {
        doc: 'PEM private key of the client certificate; give it together with otlp.tls.cert.',
        format: 'file-path-or-empty',
        default: '',
        env: 'CARNX_OTLP_TLS_KEY',
        arg: 'otlp-tls-key',
      },
      insecure: {
        doc: 'Plaintext for an endpoint given without a scheme. Cannot be combined with https:// or TLS files.',
        format: 'strict-boolean',
        default: false,
        env: 'CARNX_OTLP_TLS_INSECURE',
        arg: 'otlp-tls-insecure',
      },
    },
    compression: {
      doc: 'Compression of export requests.',
      format: oneOf('gzip', 'none'),
      default: 'gzip',
      env: 'CARNX_OTLP_COMPRESSION',
      arg: 'otlp-compression',
    },
    timeoutMs: {
      doc: 'Deadline of one export request.',
      format: ms(100, 600_000),
      default: 10000,
      env: 'CARNX_OTLP_TIMEOUT_MS',
      arg: 'otlp-timeout-ms',
    },
    temporality: {
      doc: 'Aggregation temporality of the exported sums. Some backends (Datadog) want delta; cumulative survives lost exports.',
      format: oneOf('cumulative', 'delta'),
      default: 'cumulative',
      env: 'CARNX_OTLP_TEMPORALITY',
      arg: 'otlp-temporality',
    },
  },
  resource: {
    attributes: {
      doc: 'Resource attributes added to every exported metric, e.g. deployment.environment=prod.',
      format: 'key-value-map',
      default: {},
      env: 'CARNX_RESOURCE_ATTRIBUTES',
      arg: 'resource-attributes',
    },
  },
  log: {
    level: {
      doc: 'Log level (pino). silent turns logging off.',
      format: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
      default: 'info',
      env: 'CARNX_LOG_LEVEL',
      arg: 'log-level',
    },
    format: {
      doc:
        'How log lines look. auto: readable text (pino-pretty) when stdout is a terminal, JSON lines otherwise ' +
        '(pipes, files, journald, containers without a TTY). json and pretty force one. Secrets are redacted in both. ' +
        'Read at start (a reload keeps it).',
      format: oneOf('auto', 'json', 'pretty'),
      default: 'auto',
      env: 'CARNX_LOG_FORMAT',
      arg: 'log-format',
    },
    summary: {
      doc:
        'A line per counted interface at every export interval (export.intervalMs): packets and bytes counted so far ' +
        'and the rate since the last line, per direction, at info level, whether or not the export succeeds. auto: ' +
        'on when the log is pretty (a terminal), off for JSON. on / off force it. Read at start (a reload keeps it).',
      format: oneOf('auto', 'on', 'off'),
      default: 'auto',
      env: 'CARNX_LOG_SUMMARY',
      arg: 'log-summary',
    },
  },
  health: {
    listen: {
      doc: 'host:port where /livez and /readyz are served, e.g. 127.0.0.1:9400. Empty: no health server.',
      format: 'host-port-or-empty',
      default: '',
      env: 'CARNX_HEALTH_LISTEN',
      arg: 'health-listen',
    },
  },
};

/** One leaf of the schema, flattened. */
export interface ConfigKeySpec {
  key: string;
  doc: string;
  format: string;
  default: unknown;
  env: string;
  arg: string;
  sensitive: boolean;
}

/** Every leaf of the schema in declaration order. A node is a leaf when it has a default, as convict decides. */
export function configKeys(): ConfigKeySpec[] {
  const out: ConfigKeySpec[] = [];
  const walk = (node: Record<string, unknown>, prefix: string): void => {
    for (const [name, child] of Object.entries(node)) {
      const spec = child as Record<string, unknown>;
      const key = prefix + name;
      if (!('default' in spec)) walk(spec, `${key}.`);
      else {
        out.push({
          key,
          doc: String(spec.doc),
          format: String(spec.format),
          default: spec.default,
          env: String(spec.env),
          arg: String(spec.arg),
          sensitive: spec.sensitive === true,
        });
      }
    }
  };
  walk(configSchema as Record<string, unknown>, '');
  return out;
}

/** The config file path comes from this flag, else this env variable. */
export const CONFIG_FILE_FLAG = 'config';
export const CONFIG_FILE_ENV = 'CARNX_CONFIG';

/**
 * Standard OpenTelemetry variables, read below the config file. The first variable set wins (metrics-specific first).
 * `lowercase`: the OTel spec treats these values case-insensitively.
 */
export const OTEL_ENV_TRANSLATIONS: readonly { key: string; vars: readonly string[]; lowercase?: true }[] = [
  { key: 'otlp.endpoint', vars: ['OTEL_EXPORTER_OTLP_METRICS_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT'] },
  { key: 'otlp.headers', vars: ['OTEL_EXPORTER_OTLP_METRICS_HEADERS', 'OTEL_EXPORTER_OTLP_HEADERS'] },
  {
    key: 'otlp.compression',
    vars: ['OTEL_EXPORTER_OTLP_METRICS_COMPRESSION', 'OTEL_EXPORTER_OTLP_COMPRESSION'],
    lowercase: true,
  },
  { key: 'otlp.timeoutMs', vars: ['OTEL_EXPORTER_OTLP_METRICS_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT'] },
  { key: 'otlp.tls.ca', vars: ['OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE', 'OTEL_EXPORTER_OTLP_CERTIFICATE'] },
  { key: 'otlp.tls.key', vars: ['OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY', 'OTEL_EXPORTER_OTLP_CLIENT_KEY'] },
  {
    key: 'otlp.tls.cert',
    vars: ['OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE', 'OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE'],
  },
  {
    key: 'otlp.tls.insecure',
    vars: ['OTEL_EXPORTER_OTLP_METRICS_INSECURE', 'OTEL_EXPORTER_OTLP_INSECURE'],
    lowercase: true,
  },
  { key: 'otlp.temporality', vars: ['OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE'], lowercase: true },
];
