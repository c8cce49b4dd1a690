// The resource on every carnx metric: which agent on which host or node reports, plus the user's attributes.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { detectResources, envDetector, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { CarnxConfig } from '../config/schema.js';

/** Semantic-convention attribute names, copied (service.* and host.name are stable, k8s.node.name too). */
const ATTR_SERVICE_NAME = 'service.name';
const ATTR_SERVICE_VERSION = 'service.version';
const ATTR_SERVICE_INSTANCE_ID = 'service.instance.id';
const ATTR_HOST_NAME = 'host.name';
const ATTR_K8S_NODE_NAME = 'k8s.node.name';

/** Namespace of the UUIDv5 derived from /etc/machine-id: arbitrary but fixed; changing it changes every instance id. */
const MACHINE_ID_NAMESPACE = '5f0c7a1e-3d2b-4c8e-9a61-0b7d2e4f8c13';

/**
 * Precedence, lowest to highest (a later layer overwrites the same key):
 *   1. carnx's own: service.name=carnx, service.version, service.instance.id, host.name, k8s.node.name;
 *   2. OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME over it (the OTel env detector);
 *   3. resource.attributes from carnx's config (file, CARNX_RESOURCE_ATTRIBUTES, flags).
 * The env detector reads process.env, not `env`; `env` supplies K8S_NODE_NAME.
 */
export function buildResource(
  config: CarnxConfig,
  env: NodeJS.ProcessEnv,
  packageVersion: string,
  machineIdPath = '/etc/machine-id',
): Resource {
  const nodeName = nonEmpty(env.K8S_NODE_NAME);
  const own = resourceFromAttributes({
    [ATTR_SERVICE_NAME]: 'carnx',
    [ATTR_SERVICE_VERSION]: packageVersion,
    [ATTR_SERVICE_INSTANCE_ID]: instanceId(nodeName, machineIdPath),
    [ATTR_HOST_NAME]: hostname(),
    ...(nodeName === undefined ? {} : { [ATTR_K8S_NODE_NAME]: nodeName }),
  });
  // merge(): the argument's attributes win.
  return own
    .merge(detectResources({ detectors: [envDetector] }))
    .merge(resourceFromAttributes(config.resource.attributes));
}

/**
 * Stable across agent restarts, so a restarted agent continues the same series: one agent runs per node or host.
 * The node name on Kubernetes; else a UUIDv5 of /etc/machine-id (machine-id(5) asks never to send the raw ID over the
 * network, only an application-specific hash); else the host name.
 */
function instanceId(nodeName: string | undefined, machineIdPath: string): string {
  if (nodeName !== undefined) return nodeName;
  const machineId = readMachineId(machineIdPath);
  return machineId === undefined ? hostname() : uuidV5(MACHINE_ID_NAMESPACE, machineId);
}

function readMachineId(path: string): string | undefined {
  try {
    return nonEmpty(readFileSync(path, 'utf8').trim());
  } catch {
    return undefined; // absent in many containers: fall back to the host name
  }
}

/** RFC 9562 UUID version 5: SHA-1 of namespace bytes + name, with the version and variant bits set. */
export function uuidV5(namespace: string, name: string): string {
  const hash = createHash('sha1')
    .update(Buffer.from(namespace.replace(/-/g, ''), 'hex'))
    .update(name, 'utf8')
    .digest();
  hash.writeUInt8((hash.readUInt8(6) & 0x0f) | 0x50, 6);
  hash.writeUInt8((hash.readUInt8(8) & 0x3f) | 0x80, 8);
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
