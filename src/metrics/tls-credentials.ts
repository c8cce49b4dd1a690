// gRPC TLS credentials from otlp.tls.*: the CA file given, else the system CA store, else Node's bundled roots.
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { credentials, type ChannelCredentials } from '@grpc/grpc-js';
import type { CarnxConfig } from '../config/schema.js';
import { ExportSettingsError } from './export-settings-error.js';

/** The system CA bundle of common distributions: Debian, Ubuntu and Alpine; RHEL and Fedora; macOS and BSDs. */
export const SYSTEM_CA_FILES: readonly string[] = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/cert.pem',
];

/** Node's roots, used when no CA file is given and no system store is found. */
export const BUNDLED_ROOTS = "node's bundled roots";

/** Credentials, and where the trusted CAs come from (a path or BUNDLED_ROOTS), for the log. */
export function tlsCredentials(
  config: CarnxConfig,
  env: NodeJS.ProcessEnv,
): { creds: ChannelCredentials; roots: string } {
  const { ca, cert, key } = config.otlp.tls;
  const [caPem, certPem, keyPem] = [
    readPem('otlp.tls.ca', ca),
    readPem('otlp.tls.cert', cert),
    readPem('otlp.tls.key', key),
  ];
  if (caPem !== null) checkCaCertificates('otlp.tls.ca', ca, caPem);
  const system = caPem === null ? systemRoots(env) : null;
  try {
    return {
      creds: credentials.createSsl(caPem ?? system?.pem ?? null, keyPem, certPem),
      roots: ca !== '' ? ca : (system?.source ?? BUNDLED_ROOTS),
    };
  } catch (err) {
    // OpenSSL's messages name the failing decoder, not the key material.
    throw new ExportSettingsError(
      `otlp.tls: the CA, certificate or key is not valid PEM or they do not match: ${(err as Error).message}`,
    );
  }
}

/**
 * The system store, which operators extend with their internal CAs: the file SSL_CERT_FILE names (OpenSSL's
 * variable), else the first bundle of SYSTEM_CA_FILES that exists, plus NODE_EXTRA_CA_CERTS (Node adds it only to its
 * bundled roots, so giving any CA would drop it). null when there is none: gRPC then uses Node's bundled roots.
 */
export function systemRoots(
  env: NodeJS.ProcessEnv,
  candidates: readonly string[] = SYSTEM_CA_FILES,
): { pem: Buffer; source: string } | null {
  const named = env.SSL_CERT_FILE?.trim() || undefined;
  const source = named ?? candidates.find((path) => existsSync(path));
  if (source === undefined) return null;
  const pem = readPem(named !== undefined ? 'SSL_CERT_FILE (otlp.tls.ca is empty)' : 'otlp.tls.ca', source);
  if (pem === null) return null;
  if (named !== undefined) checkCaCertificates('SSL_CERT_FILE (otlp.tls.ca is empty)', named, pem);
  const extraPath = env.NODE_EXTRA_CA_CERTS?.trim() || undefined;
  const extra = extraPath === undefined ? null : readPem('NODE_EXTRA_CA_CERTS', extraPath);
  return { pem: extra === null ? pem : Buffer.concat([pem, Buffer.from('\n'), extra]), source };
}

/**
 * gRPC takes any bytes as CA certificates and fails only at the first handshake, so a CA file that is not PEM would
 * leave carnx running without ever exporting: refuse it here, at start-up or reload.
 */
function checkCaCertificates(what: string, path: string, pem: Buffer): void {
  const blocks = pem.toString('utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  const parses = (block: string) => {
    try {
      return new X509Certificate(block) !== undefined;
    } catch {
      return false;
    }
  };
  if (blocks.length === 0 || !blocks.every(parses)) {
    throw new ExportSettingsError(`${what}: ${path} is not a PEM file of certificates`);
  }
}

function readPem(what: string, path: string): Buffer | null {
  if (path === '') return null;
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'not found' : code === 'EACCES' ? 'permission denied' : (code ?? (err as Error).message);
    throw new ExportSettingsError(`${what}: cannot read ${path}: ${why}`);
  }
}
