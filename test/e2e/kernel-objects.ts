// The kernel side of the e2e checks: carnx's XDP links, programs, maps and pins, counted with bpftool, ip and the pin tree.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { libbpf } from '../../src/bpf/libbpf.js';
import { ip } from '../fixtures/netns.js';

/** XDP links whose interface is `ifindex`, found by bpftool and each link's own info (bpftool omits the ifindex here). */
export function xdpLinksOn(ifindex: number): number[] {
  const links = JSON.parse(execFileSync('bpftool', ['-j', 'link', 'show'], { encoding: 'utf8' })) as Array<{
    id: number;
    type: string;
  }>;
  return links
    .filter((l) => l.type === 'xdp')
    .filter((l) => {
      let fd: number;
      try {
        fd = libbpf().linkFdById(l.id);
      } catch {
        return false; // went away meanwhile
      }
      try {
        return libbpf().linkInfo(fd, `link ${l.id}`).ifindex === ifindex;
      } finally {
        libbpf().closeFd(fd);
      }
    })
    .map((l) => l.id);
}

/** Every file and directory under a pin root, relative to it, sorted. */
export function pinTree(root: string): string[] {
  if (!existsSync(root)) return [];
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
      out.push(entry.isDirectory() ? `${path}/` : path);
      if (entry.isDirectory()) walk(join(dir, entry.name), path);
    }
  };
  walk(root, '');
  return out.sort();
}

/** The pins of one attached interface as pinTree lists them (the README's lifecycle: counters, meta, prog, link). */
export function pinSet(ifname: string): string[] {
  return [`carnx/v1/${ifname}/`, ...['counters', 'link', 'meta', 'prog'].map((p) => `carnx/v1/${ifname}/${p}`)];
}

/** The XDP program on an interface as `ip link` names its mode, or undefined. */
export function xdpOn(ifname: string): string | undefined {
  return /\b(xdpgeneric|xdpdrv|xdpoffload|xdp)\b/.exec(ip('-o', 'link', 'show', 'dev', ifname))?.[1];
}

/** Highest BPF object ids now: objects created later have higher ids (the kernel allocates them cyclically upwards). */
export interface BpfIdMark {
  prog: number;
  map: number;
  link: number;
}

function bpftool<T>(what: 'prog' | 'map' | 'link'): T[] {
  return JSON.parse(execFileSync('bpftool', ['-j', what, 'show'], { encoding: 'utf8', maxBuffer: 1 << 26 })) as T[];
}

export function bpfIdMark(): BpfIdMark {
  const max = (list: Array<{ id: number }>) => list.reduce((m, o) => Math.max(m, o.id), 0);
  return { prog: max(bpftool('prog')), map: max(bpftool('map')), link: max(bpftool('link')) };
}

/** Which processes hold an fd of each BPF object ("prog:12" -> pids), from /proc/<pid>/fdinfo (this bpftool lists no pids). */
function bpfFdHolders(): Map<string, Set<number>> {
  const holders = new Map<string, Set<number>>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fdinfo`);
    } catch {
      continue; // gone, or a kernel thread
    }
    for (const fd of fds) {
      let info: string;
      try {
        info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
      } catch {
        continue;
      }
      const id = /^(link_id|map_id|prog_id):\s+(\d+)/m.exec(info);
      if (!id) continue;
      const key = `${id[1]!.replace('_id', '')}:${id[2]}`;
      if (!holders.has(key)) holders.set(key, new Set());
      holders.get(key)!.add(Number(pid));
    }
  }
  return holders;
}

/** carnx's kernel objects created since `since`, split into those of `ours` (interfaces and agent pids) and the rest. */
export interface CarnxObjects {
  /** XDP links on our interfaces. */
  links: Array<{ id: number; progId: number; ifindex: number }>;
  /** carnx_count programs nobody else holds or attached elsewhere. */
  progs: Array<{ id: number; btfId: number }>;
  /** carnx_counters / carnx_meta maps nobody else holds, not of a program attached elsewhere. */
  maps: Array<{ id: number; name: string; btfId: number }>;
}

/**
 * carnx's programs (carnx_count), maps (carnx_counters, carnx_meta) and XDP links created since `since`, counted with
 * bpftool. Other engineers' tests may run at the same time: objects an fd of another process holds, and links on
 * other interfaces (with their programs and those programs' maps, which share the object's BTF), are theirs. What
 * nobody holds and no other interface uses can only be ours: pinned by us, attached by us, or leaked by us.
 */
export function carnxObjects(
  since: BpfIdMark,
  ifindexes: readonly number[],
  agentPids: readonly number[],
): CarnxObjects {
  const holders = bpfFdHolders();
  const foreign = (kind: string, id: number) =>
    [...(holders.get(`${kind}:${id}`) ?? [])].some((pid) => !agentPids.includes(pid));
  const links = bpftool<{ id: number; type: string; prog_id: number }>('link')
    .filter((l) => l.type === 'xdp' && l.id > since.link)
    .flatMap((l) => {
      try {
        const fd = libbpf().linkFdById(l.id);
        try {
          return [{ id: l.id, progId: l.prog_id, ifindex: libbpf().linkInfo(fd, `link ${l.id}`).ifindex }];
        } finally {
          libbpf().closeFd(fd);
        }
      } catch {
        return []; // went away meanwhile
      }
    });
  const theirLinks = links.filter((l) => !ifindexes.includes(l.ifindex) || foreign('link', l.id));
  const progs = bpftool<{ id: number; name: string; btf_id: number }>('prog').filter(
    (p) => p.name === 'carnx_count' && p.id > since.prog,
  );
  const theirProgs = new Set(
    progs.filter((p) => foreign('prog', p.id) || theirLinks.some((l) => l.progId === p.id)).map((p) => p.id),
  );
  const theirBtf = new Set(progs.filter((p) => theirProgs.has(p.id)).map((p) => p.btf_id));
  const maps = bpftool<{ id: number; name: string; btf_id: number }>('map').filter(
    (m) => (m.name === 'carnx_counters' || m.name === 'carnx_meta') && m.id > since.map,
  );
  return {
    links: links.filter((l) => !theirLinks.includes(l)),
    progs: progs.filter((p) => !theirProgs.has(p.id)).map((p) => ({ id: p.id, btfId: p.btf_id })),
    maps: maps
      .filter((m) => !foreign('map', m.id) && !theirBtf.has(m.btf_id))
      .map((m) => ({ id: m.id, name: m.name, btfId: m.btf_id })),
  };
}

/** The problems with `objects` for exactly one live set per interface (empty when it is exactly that). */
export function liveSetProblems(objects: CarnxObjects, ifindexes: readonly number[]): string[] {
  const problems: string[] = [];
  for (const ifindex of ifindexes) {
    const n = objects.links.filter((l) => l.ifindex === ifindex).length;
    if (n !== 1) problems.push(`${n} carnx links on ifindex ${ifindex}`);
  }
  const linked = new Set(objects.links.map((l) => l.progId));
  const progs = objects.progs.map((p) => p.id).sort();
  if (JSON.stringify(progs) !== JSON.stringify([...linked].sort()))
    problems.push(`programs ${progs.join(',')} but linked ${[...linked].join(',')}`);
  const btf = new Set(objects.progs.filter((p) => linked.has(p.id)).map((p) => p.btfId));
  for (const name of ['carnx_counters', 'carnx_meta']) {
    const mine = objects.maps.filter((m) => m.name === name);
    if (mine.length !== ifindexes.length || !mine.every((m) => btf.has(m.btfId))) {
      problems.push(
        `${name}: ${mine.length} maps (${mine.map((m) => `${m.id}/btf ${m.btfId}`).join(', ')}) for ${ifindexes.length} interfaces`,
      );
    }
  }
  return problems;
}
