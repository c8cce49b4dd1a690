// The health endpoint could not listen on health.listen (port taken, address not on this host): a configuration error.

const REASONS: Record<string, string> = {
  EADDRINUSE: 'address in use',
  EADDRNOTAVAIL: 'address not available on this host',
  EACCES: 'permission denied',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found',
};

/** Names the key and the address; cli/ maps it to the config exit code. */
export class HealthListenError extends Error {
  readonly code: string | undefined;

  constructor(address: string, cause: NodeJS.ErrnoException) {
    const reason = cause.code ? `${REASONS[cause.code] ?? cause.message} (${cause.code})` : cause.message;
    super(`health.listen ${address}: ${reason}`);
    this.name = 'HealthListenError';
    this.code = cause.code;
  }
}
