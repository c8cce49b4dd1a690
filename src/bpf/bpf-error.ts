// Errors from libbpf and the bpf syscall, carrying the call, the errno name and what it was about.
import { constants } from 'node:os';

const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([name, value]) => [value, name]));

/** The symbolic name of an errno value (`EPERM`), or `errno N` when unknown. */
export function errnoName(errno: number): string {
  return errnoNames.get(Math.abs(errno)) ?? `errno ${Math.abs(errno)}`;
}

export class BpfError extends Error {
  readonly call: string;
  readonly errno: number;
  readonly code: string;
  /** Tail of libbpf's log (the verifier's, for a failed load), when there was one. */
  readonly logTail: string[];

  constructor(call: string, errno: number, context: string, logTail: string[] = []) {
    const code = errnoName(errno);
    super(`${call} failed for ${context}: ${code}`);
    this.name = 'BpfError';
    this.call = call;
    this.errno = Math.abs(errno);
    this.code = code;
    this.logTail = logTail;
  }
}
