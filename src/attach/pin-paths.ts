// Where carnx pins its objects in bpffs: <bpffs>/carnx/v<layout>/<encoded interface>/{link,prog,counters,meta}.
import { join } from 'node:path';
import { LAYOUT_VERSION } from '../bpf/counter-layout.js';

/** The layout version is part of the path: a pinned map is only reused by an agent that knows its layout. */
export function carnxPinRoot(bpffs: string): string {
  return join(bpffs, 'carnx');
}

export function layoutPinDir(bpffs: string): string {
  return join(carnxPinRoot(bpffs), `v${LAYOUT_VERSION}`);
}

/**
 * The directory name of an interface: bpffs refuses names with a dot (EPERM), which Linux allows in interface names
 * (eth0.100). '%' and '.' are percent-encoded, nothing else, so a name without them keeps the path of carnx 0.1.
 */
export function pinDirName(ifname: string): string {
  return ifname.replace(/[%.]/g, (c) => (c === '%' ? '%25' : '%2E'));
}

/** The interface name of a pin directory: pinDirName() undone. */
export function ifnameOfPinDir(dirName: string): string {
  return dirName.replace(/%(25|2E)/g, (_, hex: string) => (hex === '25' ? '%' : '.'));
}

/** One direction's objects of one interface. The receive side keeps the names of carnx 0.1 (adopted on upgrade). */
export interface InterfacePins {
  dir: string;
  /** Pinned last: a directory without it is an interrupted attach and is swept away. */
  link: string;
  /** The program behind the link: opening it by pin needs no CAP_SYS_ADMIN, unlike by id. */
  prog: string;
  /** Where an upgraded program is pinned before it is renamed to `prog` (bpffs names cannot contain dots). */
  progNext: string;
  counters: string;
  meta: string;
}

/** Receive pins are `link`, `prog`, ...; transmit pins the same names with a `tx_` prefix, in the same directory. */
export function interfacePins(
  bpffs: string,
  ifname: string,
  direction: 'receive' | 'transmit' = 'receive',
): InterfacePins {
  const dir = join(layoutPinDir(bpffs), pinDirName(ifname));
  const name = (base: string) => join(dir, direction === 'transmit' ? `tx_${base}` : base);
  return {
    dir,
    link: name('link'),
    prog: name('prog'),
    progNext: name('prog_next'),
    counters: name('counters'),
    meta: name('meta'),
  };
}
