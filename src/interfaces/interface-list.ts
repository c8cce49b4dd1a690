// Lists the host's network interfaces (name and ifindex) from sysfs.
import { readdirSync, readFileSync } from 'node:fs';

export interface NetInterface {
  name: string;
  ifindex: number;
}

const SYS_CLASS_NET = '/sys/class/net';

export function listInterfaces(sysClassNet = SYS_CLASS_NET): NetInterface[] {
  const found: NetInterface[] = [];
  for (const name of readdirSync(sysClassNet)) {
    try {
      found.push({ name, ifindex: Number(readFileSync(`${sysClassNet}/${name}/ifindex`, 'utf8')) });
    } catch {
      // Gone between the listing and the read: the next rescan settles it.
    }
  }
  return found.sort((a, b) => a.ifindex - b.ifindex);
}
