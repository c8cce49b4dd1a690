// Why this host cannot run carnx: the errors preflight raises, mapped to exit codes in cli/ only.

/** Privileges, bpffs or libbpf are missing: fix the host, not the config. */
export class HostNotReady extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HostNotReady';
  }
}

/** The BPF object is missing, unreadable, or the kernel refused it; details carry the verifier log's tail. */
export class BpfObjectUnusable extends Error {
  readonly details: string[];

  constructor(message: string, details: string[] = []) {
    super(message);
    this.name = 'BpfObjectUnusable';
    this.details = details;
  }
}
