// Export settings that cannot work (unreadable or non-PEM TLS files, headers gRPC cannot send): a configuration error.

/** The message names the config key and never holds a header value. cli/ maps it to the config exit code. */
export class ExportSettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportSettingsError';
  }
}
