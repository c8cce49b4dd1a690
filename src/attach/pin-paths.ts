// Where carnx pins its objects in bpffs: <bpffs>/carnx/v<layout>/<interface>/{link,prog,counters,meta}.
import { join } from 'node:path';
import { LAYOUT_VERSION } from '../bpf/counter-layout.js';

/** The layout version is part of the path: a pinned map is only reused by an agent that knows its layout. */
export function carnxPinRoot(bpffs: string): string {
  return join(bpffs, 'carnx');
}

export function layoutPinDir(bpffs: string): string {
  return join(carnxPinRoot(bpffs), `v${LAYOUT_VERSION}`);
}

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

export function interfacePins(bpffs: string, ifname: string): InterfacePins {
  const dir = join(layoutPinDir(bpffs), ifname);
  return {
    dir,
    link: join(dir, 'link'),
    prog: join(dir, 'prog'),
    progNext: join(dir, 'prog_next'),
    counters: join(dir, 'counters'),
    meta: join(dir, 'meta'),
  };
}
