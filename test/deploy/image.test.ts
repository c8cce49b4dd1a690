// The container image, built by buildah from the unmodified Dockerfile (test/tools/image/build-image.sh), run by podman the way
// docker-compose.yml runs it (the chart's securityContext is the same set): it holds what it needs and nothing else, and it
// counts exactly with a read-only root, three capabilities, no new privileges and the runtime's seccomp filter.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { sum } from '../../src/bpf/counter-layout.js';
import { testBpffs } from '../fixtures/agent-process.js';
import { imageArchive } from '../fixtures/built-tools.js';
import { PROVEN, capMask } from '../fixtures/capabilities.js';
import { TestCollector, freePort } from '../fixtures/collector.js';
import { classIndex } from '../fixtures/frames.js';
import { Container, podman, podmanResult, ulimitArgs } from '../fixtures/podman.js';
import { requireRoot } from '../fixtures/privileges.js';
import { readProfile, verdict, withoutSyscall, type SeccompProfile } from '../fixtures/seccomp.js';
import { pinTree, xdpLinksOn, xdpOn } from '../fixtures/kernel-objects.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { HOST_V6, quietPair, up } from '../fixtures/netns.js';
import { PACKAGE_VERSION, readDoc, repoPath, type Doc } from '../fixtures/repo.js';
import { capSet, procStatus } from '../fixtures/proc-status.js';
import { command } from '../fixtures/command.js';
import { exportedCounters, settle } from '../fixtures/exported-counters.js';
import { ping, sendUdp, tcpConnections } from '../fixtures/traffic.js';
import { reported } from '../fixtures/hooks.js';
import { waitFor } from '../fixtures/wait.js';

const IMAGE = 'ghcr.io/carnx/carnx:ci';
/**
 * Measured 270 MB: the debian stand-in 82 MB, Node 24 148 MB (the binary alone 121 MB; npm's bytes stay in that base
 * layer although the runtime stage deletes the files), node_modules 38 MB, libbpf1 1.5 MB. 300 MB leaves room for Node
 * and Debian point releases; a compiler (clang and llvm add hundreds of MB) or the build stages cannot fit under it.
 * Dev dependencies are checked one by one below.
 */
const MAX_IMAGE_BYTES = 300_000_000;
const ETH_HEADER = 14n;

const Image = suite('container image: built by buildah, run by podman');
const cleanups = new Cleanups();
let archive = '';
let work = '';

Image.before(
  reported(() => {
    requireRoot('building and running the image');
    work = mkdtempSync(join(tmpdir(), 'carnx-image-'));
    const started = Date.now();
    // About a minute cold (debootstrap, the apt and npm steps), well under a second when nothing changed.
    try {
      archive = imageArchive();
    } catch (err) {
      // uvu does not print what a before hook throws: say here why every test of this suite fails (the script's own
      // output is above).
      console.error(`test/tools/image/build-image.sh failed: ${(err as Error).message}`);
      throw err;
    }
    console.log(`  build-image.sh: ${((Date.now() - started) / 1000).toFixed(1)} s, ${archive}`);
  }),
);
Image.after.each(() => cleanups.run());
Image.after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function inspect(ref: string): Doc {
  return (JSON.parse(podman('image', 'inspect', ref)) as Doc[])[0]!;
}

/** `podman run` flags for a throw-away container with no network, no capability and a read-only root. */
const BARE = [
  'run',
  '--rm',
  '--pull=never',
  '--network',
  'none',
  '--read-only',
  '--read-only-tmpfs=false',
  '--cap-drop=ALL',
];

/** Output lines of a shell script run in the image: no network, no capability, read-only root. */
function inImage(script: string): string[] {
  return podman(...BARE, ...ulimitArgs(), '--entrypoint', 'sh', IMAGE, '-c', script)
    .split('\n')
    .filter((l) => l !== '');
}

Image('the docker-archive the cluster test imports holds this image, tagged ghcr.io/carnx/carnx:ci', () => {
  const manifest = JSON.parse(execFileSync('tar', ['-xOf', archive, 'manifest.json'], { encoding: 'utf8' })) as Array<{
    Config: string;
    RepoTags: string[];
  }>;
  assert.is(manifest.length, 1);
  assert.equal(manifest[0]!.RepoTags, [IMAGE]);
  const id = String(inspect(IMAGE).Id);
  assert.is(manifest[0]!.Config.replace(/^sha256:|\.json$/g, ''), id, 'the archive holds the image podman runs');
  assert.is(readFileSync(`${archive}.id`, 'utf8').trim(), id);
});

Image(
  'the image: Node 24 and libbpf1, the agent as entrypoint; no compiler, build headers, npm or dev dependency',
  () => {
    const image = inspect(IMAGE);
    assert.equal(image.Config.Entrypoint, ['node', '/opt/carnx/dist/src/main.js']);
    assert.equal(image.Config.Cmd, ['run']);
    assert.is(image.Config.User, '0:0');
    assert.is(image.Config.WorkingDir, '/opt/carnx');
    assert.ok((image.Config.Env as string[]).includes('NODE_ENV=production'));

    const lock = readDoc('package-lock.json') as {
      packages: Record<string, { dev?: boolean; optional?: boolean }>;
    };
    const modules = Object.keys(lock.packages).filter((p) => p.startsWith('node_modules/'));
    const lines = inImage(
      [
        'node --version',
        'for c in clang gcc cc c++ cpp ld as make llvm-config tsc npm npx corepack yarn; do command -v "$c" >/dev/null && echo "tool $c"; done',
        'for p in /usr/include/bpf /usr/include/linux /usr/include/asm /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack; do [ -e "$p" ] && echo "path $p"; done',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format fields, for the shell as written
        "dpkg-query -W -f '${db:Status-Abbrev}${Package} ${Version}\\n' | sed -n 's/^ii  */deb /p'",
        `cd /opt/carnx && for m in ${modules.join(' ')}; do [ -e "$m/package.json" ] && echo "module $m"; done`,
        'ls /opt/carnx',
      ].join('; '),
    );
    assert.match(lines[0]!, /^v24\.\d+\.\d+$/, 'Node 24');
    const tagged = (tag: string) => lines.filter((l) => l.startsWith(`${tag} `)).map((l) => l.slice(tag.length + 1));
    assert.equal(tagged('tool'), [], 'compilers, npm, npx, corepack, yarn, tsc');
    assert.equal(tagged('path'), [], "kernel and libbpf headers, npm's and corepack's files");
    const debs = new Map(tagged('deb').map((d) => d.split(' ') as [string, string]));
    assert.match(debs.get('libbpf1') ?? '', /^1:1\.1\.2/, 'libbpf1 1.1.2, the version carnx is tested with');
    const buildDebs = [...debs.keys()].filter((d) =>
      /^(clang|llvm|gcc|cpp|g\+\+|binutils|libbpf-dev|linux-libc-dev|libc6-dev|make)(-[\d.]+)?$/.test(d),
    );
    assert.equal(buildDebs, [], 'no build package installed');
    const present = new Set(tagged('module'));
    assert.equal(
      modules.filter((m) => lock.packages[m]!.dev && present.has(m)),
      [],
      'dev dependencies pruned',
    );
    assert.equal(
      modules.filter((m) => !lock.packages[m]!.dev && !lock.packages[m]!.optional && !present.has(m)),
      [],
      'every run-time dependency there',
    );
    assert.ok(present.has('node_modules/@koromix/koffi-linux-x64'), "koffi's binary for this platform");
    assert.equal(lines.slice(-4), ['dist', 'node_modules', 'package.json', 'xdp'], '/opt/carnx holds the agent only');

    const size = Number(image.Size);
    console.log(
      `  ${IMAGE}: ${(size / 1e6).toFixed(1)} MB in ${(image.RootFS.Layers as string[]).length} layers` +
        ` (docker-archive ${(Number(execFileSync('stat', ['-c', '%s', archive], { encoding: 'utf8' })) / 1e6).toFixed(1)} MB)`,
    );
    assert.ok(size < MAX_IMAGE_BYTES, `the image is ${size} bytes, over ${MAX_IMAGE_BYTES}`);
  },
);

Image('`carnx version` and `carnx check` run in it with no capability, no network and a read-only root', () => {
  const bare = [...BARE, '--security-opt', 'no-new-privileges', ...ulimitArgs()];
  assert.is(podman(...bare, IMAGE, 'version'), `carnx ${PACKAGE_VERSION}\n`);
  const config = repoPath('config/carnx.compose.yaml');
  assert.is(
    podman(
      ...bare,
      '-v',
      `${config}:/etc/carnx/carnx.yaml:ro`,
      IMAGE,
      'check',
      '--config-only',
      '--config',
      '/etc/carnx/carnx.yaml',
    ),
    'carnx: configuration OK (xdp.object /opt/carnx/xdp/carnx.bpf.o)\n',
    'the shipped object, where the agent looks for it',
  );
  const bad = podmanResult(...bare, IMAGE, 'check', '--config', '/etc/carnx/absent.yaml');
  assert.is(bad.status, 2, `a missing config file is a configuration error\n${bad.stdout}${bad.stderr}`);
  assert.is(bad.stderr.trim().split('\n').length, 1, bad.stderr);
});

/** podman's default seccomp profile, as `podman info` names it. */
function defaultProfile(): { path: string; profile: SeccompProfile } {
  const info = JSON.parse(podman('info', '--format', 'json')) as Doc;
  const path = String(info.host.security.seccompProfilePath);
  assert.ok(info.host.security.seccompEnabled, 'podman applies seccomp here');
  return { path, profile: readProfile(path) };
}

/**
 * docker-compose.yml's carnx service as podman flags. Only the sources change: the test's config file, and a private pin
 * root inside the host's bpffs (a directory of the same filesystem, mounted where compose and the chart mount the whole of
 * it), so the test never touches a real carnx's pins. Keys this does not know fail the test rather than being ignored.
 */
function composeRun(
  config: string,
  bpffs: string,
): { args: string[]; command: string[]; stopSeconds: number; healthcheck: string[] } {
  const carnx = readDoc('docker-compose.yml').services.carnx as Doc;
  const args: string[] = [];
  let stopSeconds = 10;
  for (const [key, value] of Object.entries(carnx)) {
    switch (key) {
      case 'build':
      case 'image':
      case 'restart':
      case 'depends_on':
      case 'command':
      case 'healthcheck':
        break;
      case 'network_mode':
        args.push('--network', String(value));
        break;
      case 'cap_drop':
      case 'cap_add':
        args.push(...(value as string[]).map((c) => `--${key.replace('_', '-')}=${c}`));
        break;
      case 'security_opt':
        args.push(...(value as string[]).flatMap((o) => ['--security-opt', o]));
        break;
      case 'read_only':
        // Docker's read_only adds no tmpfs; podman's --read-only adds /tmp, /var/tmp and /run unless told not to.
        if (value === true) args.push('--read-only', '--read-only-tmpfs=false');
        break;
      case 'user':
        args.push('--user', String(value));
        break;
      case 'stop_grace_period':
        stopSeconds = Number(/^(\d+)s$/.exec(String(value))![1]);
        break;
      case 'volumes':
        for (const v of value as Array<string | Doc>) {
          if (typeof v === 'string' && v.startsWith('./config/carnx.compose.yaml:'))
            args.push('-v', v.replace(/^[^:]+/, config));
          else if (typeof v === 'object' && v.type === 'bind' && v.source === '/sys/fs/bpf') {
            args.push('--mount', `type=bind,source=${bpffs},target=${v.target},bind-propagation=${v.bind.propagation}`);
          } else throw new Error(`compose volume ${JSON.stringify(v)} has no podman equivalent here`);
        }
        break;
      default:
        throw new Error(`docker-compose.yml's carnx.${key} has no podman equivalent here: teach composeRun() about it`);
    }
  }
  return {
    args,
    command: carnx.command as string[],
    stopSeconds,
    healthcheck: (carnx.healthcheck.test as string[]).slice(1),
  };
}

/** config/carnx.compose.yaml with the test's interface (the veth only, never the host's own), collector and health port. */
function writeConfig(iface: string, endpoint: string, healthPort: number): string {
  const config = readDoc('config/carnx.compose.yaml');
  config.interfaces.include = [iface];
  config.otlp.endpoint = endpoint;
  config.export.intervalMs = 500;
  config.health.listen = `127.0.0.1:${healthPort}`;
  const file = join(work, `carnx-${iface}.yaml`);
  writeFileSync(file, YAML.stringify(config));
  return file;
}

Image(
  "the runtime's default seccomp profile decides whether bpf(2) works with CAP_BPF alone; the agent says which, and leaves nothing",
  async () => {
    const { path, profile } = defaultProfile();
    const seen = verdict(profile, 'bpf', PROVEN);
    const pair = quietPair(cleanups, 's');
    const bpffs = testBpffs(cleanups, 'image-seccomp');
    const spec = composeRun(writeConfig(pair.host, 'http://127.0.0.1:9', await freePort()), bpffs.path);
    const container = cleanups.add(
      new Container(
        `carnx-seccomp-${process.pid}`,
        [...spec.args, '--pull=never', ...ulimitArgs()],
        IMAGE,
        spec.command,
      ),
      (c) => c.remove(),
    );
    if (seen.allowed) {
      console.log(`  ${path} allows bpf(2) with ${PROVEN.join(', ')}`);
      await container.waitForMsg('started');
      podman('stop', '--time', String(spec.stopSeconds), container.name);
      assert.is(await container.exitCode(), 0, container.describe());
    } else {
      // Podman 4.3 (containers/common 0.50): bpf(2) is allowed only with CAP_SYS_ADMIN, EPERM otherwise.
      console.log(
        `  FINDING: ${path} refuses bpf(2) to a container with ${PROVEN.join(', ')} (errno ${seen.errno}); ` +
          `the deciding rule: ${JSON.stringify(seen.rules.map((r) => ({ names: r.names, action: r.action, includes: r.includes, excludes: r.excludes })))}`,
      );
      assert.is(seen.errno, 1, 'EPERM');
      assert.is(await container.exitCode(), 4, container.describe());
      assert.match(
        container.stderr,
        /^carnx: could not load xdp\.object \/opt\/carnx\/xdp\/carnx\.bpf\.o: .*EPERM; a seccomp filter is active: .*allow bpf\(2\) with CAP_BPF/m,
        container.describe(),
      );
    }
    assert.is(xdpOn(pair.host), undefined, 'nothing left attached');
    assert.equal(pinTree(bpffs.path), [], 'nothing left pinned');
  },
);

Image(
  'hardened like compose: counts exactly what the kernel received, exports it, and a SIGTERM leaves nothing behind',
  async () => {
    const { path, profile } = defaultProfile();
    let seccomp: string[] = [];
    if (!verdict(profile, 'bpf', PROVEN).allowed) {
      // The default profile through the filter config/README.md tells users to apply: the one rule Docker, containerd
      // and newer containers/common have, so still a filter.
      const fixed = JSON.parse(
        command('jq', ['-f', repoPath('config/seccomp/allow-bpf-with-cap-bpf.jq'), path]),
      ) as SeccompProfile;
      assert.ok(verdict(fixed, 'bpf', PROVEN).allowed, 'bpf(2) allowed with the proven capabilities');
      assert.not.ok(
        verdict(
          fixed,
          'bpf',
          PROVEN.filter((c) => c !== 'CAP_BPF'),
        ).allowed,
        'and still refused without CAP_BPF',
      );
      assert.equal(
        withoutSyscall(fixed, 'bpf'),
        withoutSyscall(profile, 'bpf'),
        'the profile differs from the default in bpf(2) only',
      );
      const file = join(work, 'seccomp-cap-bpf.json');
      writeFileSync(file, JSON.stringify(fixed));
      seccomp = ['--security-opt', `seccomp=${file}`];
      console.log(`  seccomp: ${path} with bpf(2) allowed to CAP_BPF`);
    }
    const pair = quietPair(cleanups, 'c');
    const bpffs = testBpffs(cleanups, 'image');
    const collector = cleanups.add(await TestCollector.start(), (c) => c.destroy());
    const healthPort = await freePort();
    const spec = composeRun(writeConfig(pair.host, collector.endpoint, healthPort), bpffs.path);
    const container = cleanups.add(
      new Container(
        `carnx-image-${process.pid}`,
        [...spec.args, ...seccomp, '--pull=never', ...ulimitArgs()],
        IMAGE,
        spec.command,
      ),
      (c) => c.remove(),
    );

    const attached = await container.waitForMsg('attached', { interface: pair.host });
    const mode = String(attached.mode);
    assert.equal((await container.waitForMsg('started')).interfaces, [pair.host], 'the test veth and nothing else');

    // What the kernel says about the agent: exactly the proven capabilities, no new privileges, a seccomp filter, read-only root.
    const pid = container.hostPid();
    for (const set of ['CapEff', 'CapPrm', 'CapBnd'] as const)
      assert.is(capSet(pid, set), capMask(PROVEN), `${set}: ${PROVEN.join(', ')}`);
    assert.is(capSet(pid, 'CapInh') | capSet(pid, 'CapAmb'), 0n);
    const status = procStatus(pid);
    assert.is(status.NoNewPrivs, '1');
    assert.is(status.Seccomp, '2', 'a seccomp filter is on');
    assert.is(status.Uid!.split(/\s+/)[0], '0');
    const mounts = readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
      .split('\n')
      .map((l) => l.split(' '));
    assert.match(mounts.find((m) => m[4] === '/')![5]!, /^ro\b/, 'read-only root');
    assert.match(mounts.find((m) => m[4] === '/etc/carnx/carnx.yaml')![5]!, /^ro\b/, 'read-only config');
    assert.not.ok(
      mounts.some((m) => ['/tmp', '/run', '/var/tmp'].includes(m[4]!)),
      'no writable tmpfs',
    );

    const start = await settle(pair, collector, pair.host);
    assert.is(
      sum(exportedCounters(start.points, pair.host, 'cumulative').packets),
      0n,
      'nothing counted before the namespace side is up',
    );
    up(pair);
    const sent = { udp4: 40, udp6: 20, pings: 5, tcp: 4 };
    sendUdp(pair, pair.hostAddress, sent.udp4, 200);
    sendUdp(pair, `${HOST_V6}%${pair.peer}`, sent.udp6, 60);
    ping(pair, pair.hostAddress, sent.pings);
    await tcpConnections(pair, pair.hostAddress, sent.tcp, 300);
    const end = await settle(pair, collector, pair.host);
    const exported = exportedCounters(end.points, pair.host, 'cumulative');
    const rxPackets = end.rx.packets - start.rx.packets;
    const rxBytes = end.rx.bytes - start.rx.bytes;
    assert.ok(rxPackets > 70n, `traffic arrived (${rxPackets} frames)`);
    assert.is(sum(exported.packets), rxPackets, 'carnx.packets over all classes = rx_packets delta');
    // veth counts frames without their Ethernet header when a native program is attached (test/e2e/traffic-totals).
    assert.is(
      sum(exported.bytes),
      rxBytes + (mode === 'native' ? ETH_HEADER * rxPackets : 0n),
      `carnx.bytes = rx_bytes delta (${mode})`,
    );
    assert.is(exported.histogramCount, rxPackets, 'carnx.packet.size count');
    assert.is(exported.packets[classIndex('ipv4', 'udp')], BigInt(sent.udp4), 'IPv4 UDP');
    assert.is(exported.bytes[classIndex('ipv4', 'udp')], BigInt(sent.udp4 * (14 + 20 + 8 + 200)), 'IPv4 UDP bytes');
    assert.is(exported.packets[classIndex('ipv6', 'udp')], BigInt(sent.udp6), 'IPv6 UDP');
    assert.is(exported.packets[classIndex('ipv4', 'icmp')], BigInt(sent.pings), 'ICMP echo requests');
    assert.equal(exported.tcpSyn, [BigInt(sent.tcp), 0n], 'one SYN per connection');
    const resource = end.points.find((p) => p.metric === 'carnx.packets')!.resource;
    assert.is(resource['service.name'], 'carnx');
    assert.is(resource['service.version'], PACKAGE_VERSION);
    assert.is(resource['host.name'], hostname(), "the host's name (host network)");

    // Ready as the chart's probe and the compose healthcheck see it (the healthcheck run as written, on the test's port).
    assert.is(
      (
        await waitFor(
          '/readyz to answer 200',
          async () => {
            const r = await fetch(`http://127.0.0.1:${healthPort}/readyz`);
            return r.status === 200 ? r : undefined;
          },
          10_000,
          200,
        )
      ).status,
      200,
    );
    const check = spec.healthcheck.map((a) => a.replace(/127\.0\.0\.1:9400/, `127.0.0.1:${healthPort}`));
    assert.is(
      podmanResult('exec', container.name, ...check).status,
      0,
      'the compose healthcheck passes inside the container',
    );

    // SIGTERM, as `podman stop` / `docker compose down` / the kubelet send it: last export, detach, unpin, exit 0.
    podman('stop', '--time', String(spec.stopSeconds), container.name);
    assert.is(await container.exitCode(), 0, container.describe());
    assert.is(podman('inspect', '--format', '{{.State.ExitCode}}', container.name).trim(), '0');
    assert.ok(
      container.lines.some((l) => l.msg === 'stopped' && l.keptAttached === false),
      container.describe(),
    );
    assert.is(xdpOn(pair.host), undefined, 'no XDP program left on the veth');
    assert.equal(xdpLinksOn(pair.ifindex()), [], 'no XDP link left on the veth');
    assert.equal(pinTree(bpffs.path), [], 'no pins left under the bpffs');
    assert.not.match(container.stderr, /\n\s+at /, 'a stack trace');
  },
);

Image.run();
