// Decides which interfaces carnx counts on: included by name or glob, and not excluded (exclude wins).
import picomatch from 'picomatch';

/**
 * Options interface globs are compiled with; config validation compiles them with the same ones, so what validates
 * there matches here. strictBrackets: "eth[0" is an error, not a literal. dot: interface names have no hidden files.
 */
export const GLOB_OPTIONS: Readonly<picomatch.PicomatchOptions> = Object.freeze({ strictBrackets: true, dot: true });

export type InterfaceFilter = (name: string) => boolean;

export function interfaceFilter(include: readonly string[], exclude: readonly string[]): InterfaceFilter {
  const included = picomatch([...include], GLOB_OPTIONS);
  const excluded = exclude.length > 0 ? picomatch([...exclude], GLOB_OPTIONS) : () => false;
  return (name) => included(name) && !excluded(name);
}

/** No present interface matches the selection: nothing to count, so the agent does not start. */
export class NoInterfaceSelected extends Error {
  constructor(present: readonly string[]) {
    super(`no interface matches interfaces.include minus interfaces.exclude (present: ${present.join(', ')})`);
    this.name = 'NoInterfaceSelected';
  }
}
