// Lists the host's network interfaces (name, ifindex and link type) from sysfs, re-reading only what changed.
import { lstatSync, readdirSync, readFileSync } from 'node:fs';

export interface NetInterface {
  name: string;
  ifindex: number;
}

/** An interface as listed: also its link type (ARPHRD_*, /sys/class/net/<name>/type), which says its L2 header. */
export interface ListedInterface extends NetInterface {
  linkType: number;
}

const SYS_CLASS_NET = '/sys/class/net';

/**
 * Lists interfaces at every rescan. An entry of /sys/class/net is a kernfs node whose inode number is never reused
 * (a re-created or renamed device gets a new node), so one lstat tells whether the name still means the device read
 * last time; only new names and new devices have their ifindex and type read (two opens each). At 500 interfaces a
 * rescan costs a directory read and 500 lstats instead of 1,000 file reads. The cache holds the last listing only.
 */
export class InterfaceLister {
  readonly #dir: string;
  #known = new Map<string, { ino: bigint; iface: ListedInterface }>();

  constructor(sysClassNet = SYS_CLASS_NET) {
    this.#dir = sysClassNet;
  }

  list(): ListedInterface[] {
    const next = new Map<string, { ino: bigint; iface: ListedInterface }>();
    for (const name of readdirSync(this.#dir)) {
      try {
        const { ino } = lstatSync(`${this.#dir}/${name}`, { bigint: true });
        const known = this.#known.get(name);
        next.set(name, { ino, iface: known?.ino === ino ? known.iface : this.#read(name) });
      } catch {
        // Gone between the listing and the read: the next rescan settles it.
      }
    }
    this.#known = next;
    return [...next.values()].map(({ iface }) => ({ ...iface })).sort((a, b) => a.ifindex - b.ifindex);
  }

  #read(name: string): ListedInterface {
    const read = (file: string) => Number(readFileSync(`${this.#dir}/${name}/${file}`, 'utf8'));
    return { name, ifindex: read('ifindex'), linkType: read('type') };
  }
}

/** One listing without a cache (start-up messages, tests). */
export function listInterfaces(sysClassNet = SYS_CLASS_NET): ListedInterface[] {
  return new InterfaceLister(sysClassNet).list();
}
