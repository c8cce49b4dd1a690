// Lists the host's network interfaces (name, ifindex and link type) from sysfs.
import { readdirSync, readFileSync } from 'node:fs';

export interface NetInterface {
  name: string;
  ifindex: number;
}

/** An interface as listed: also its link type (ARPHRD_*, /sys/class/net/<name>/type), which says its L2 header. */
export interface ListedInterface extends NetInterface {
  linkType: number;
}

const SYS_CLASS_NET = '/sys/class/net';

export function listInterfaces(sysClassNet = SYS_CLASS_NET): ListedInterface[] {
  const found: ListedInterface[] = [];
  for (const name of readdirSync(sysClassNet)) {
    try {
      const read = (file: string) => Number(readFileSync(`${sysClassNet}/${name}/${file}`, 'utf8'));
      found.push({ name, ifindex: read('ifindex'), linkType: read('type') });
    } catch {
      // Gone between the listing and the read: the next rescan settles it.
    }
  }
  return found.sort((a, b) => a.ifindex - b.ifindex);
}
