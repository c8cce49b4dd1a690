// Decides which interfaces carnx counts on: included by name or glob, and not excluded (exclude wins).
import picomatch from 'picomatch';
import { GLOB_OPTIONS } from '../config/formats.js';

export type InterfaceFilter = (name: string) => boolean;

export function interfaceFilter(include: readonly string[], exclude: readonly string[]): InterfaceFilter {
  const included = picomatch([...include], GLOB_OPTIONS);
  const excluded = exclude.length > 0 ? picomatch([...exclude], GLOB_OPTIONS) : () => false;
  return (name) => included(name) && !excluded(name);
}
