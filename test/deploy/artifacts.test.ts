// The other ways to run carnx: docker-compose.yml, the Dockerfile's runtime layout, and the systemd unit.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interfacePins } from '../../src/attach/pin-paths.js';
import { checkConfig, spawnAgent, testBpffs } from '../fixtures/agent-process.js';
import { composeBinary } from '../fixtures/built-tools.js';
import { PROVEN, setpriv } from '../fixtures/capabilities.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { commandResult } from '../fixtures/command.js';
import { xdpOn } from '../fixtures/kernel-objects.js';
import { vethPair } from '../fixtures/netns.js';
import { requireRoot } from '../fixtures/privileges.js';
import { ROOT, readDoc, repoPath, type Doc } from '../fixtures/repo.js';
import { reported } from '../fixtures/hooks.js';

/** A Compose v2 implementation: the docker CLI plugin, a docker-compose binary, or the one built by the test tools. */
function composeCommand(): string[] | undefined {
  const works = (cmd: string, args: string[]) => {
    try {
      return commandResult(cmd, args);
    } catch {
      return undefined; // not installed
    }
  };
  if (works('docker', ['compose', 'version'])?.status === 0) return ['docker', 'compose'];
  const onPath = works('docker-compose', ['version']);
  if (onPath?.status === 0 && /v2\.|v5\./.test(onPath.stdout)) return ['docker-compose'];
  try {
    const path = composeBinary();
    return existsSync(path) ? [path] : undefined;
  } catch {
    return undefined;
  }
}

/** The Dockerfile as stages: name, base image, and instructions (continuation lines joined). */
function dockerfileStages(): Array<{ name: string; from: string; lines: string[] }> {
  const text = readFileSync(repoPath('Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const args = Object.fromEntries([...text.matchAll(/^ARG (\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
  const stages: Array<{ name: string; from: string; lines: string[] }> = [];
  for (const line of text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))) {
    const from = /^FROM (\S+)(?: AS (\S+))?$/i.exec(line);
    if (from)
      stages.push({
        name: from[2] ?? String(stages.length),
        from: from[1]!.replace(/\$\{(\w+)\}/g, (_m, a: string) => args[a] ?? ''),
        lines: [],
      });
    else stages.at(-1)?.lines.push(line);
  }
  return stages;
}

const Artifacts = suite('compose, image and systemd unit');
const cleanups = new Cleanups();
let work = '';

Artifacts.before(
  reported(() => {
    work = mkdtempSync(join(tmpdir(), 'carnx-artifacts-'));
  }),
);
Artifacts.after.each(() => cleanups.run());
Artifacts.after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

Artifacts('`docker compose config` accepts docker-compose.yml', () => {
  const compose = composeCommand();
  assert.ok(compose, 'no Compose v2 here: install the docker compose plugin, or run test/tools/install-compose.sh');
  const run = commandResult(compose![0]!, [
    ...compose!.slice(1),
    '--project-directory',
    ROOT,
    '-f',
    repoPath('docker-compose.yml'),
    'config',
    '--quiet',
  ]);
  assert.is(run.status, 0, `${compose!.join(' ')} config: ${run.stderr}`);
});

Artifacts(
  'compose: carnx on the host network with exactly the proven capabilities, read-only, bpffs where its config says',
  () => {
    const compose = readDoc('docker-compose.yml');
    const carnx = compose.services.carnx;
    assert.is(carnx.network_mode, 'host');
    assert.equal(carnx.cap_drop, ['ALL']);
    assert.equal([...carnx.cap_add].map((c: string) => `CAP_${c}`).sort(), PROVEN);
    assert.is(carnx.read_only, true);
    assert.ok(carnx.security_opt.includes('no-new-privileges:true'));
    assert.not.ok(carnx.privileged, 'privileged');
    const config = readDoc('config/carnx.compose.yaml');
    const bpffs = (carnx.volumes as Doc[]).find((v) => typeof v === 'object' && v.source === '/sys/fs/bpf')!;
    assert.is(bpffs.target, config.bpffs.path);
    assert.not.match(bpffs.target, /^\/sys\//, "Docker's AppArmor profile denies writes below /sys/fs/");
    assert.ok((carnx.volumes as Array<string | Doc>).includes('./config/carnx.compose.yaml:/etc/carnx/carnx.yaml:ro'));
    assert.equal(carnx.command, ['run', '--config', '/etc/carnx/carnx.yaml']);
    assert.match(carnx.healthcheck.test.join(' '), new RegExp(`http://${config.health.listen}/readyz`));
    for (const [name, service] of Object.entries(compose.services as Record<string, Doc>)) {
      for (const port of service.ports ?? [])
        assert.match(String(port), /^127\.0\.0\.1:/, `${name} publishes ${port} beyond loopback`);
      if (service.image) assert.not.match(service.image, /:latest$|^[^:]+$/, `${name}: pin the image version`);
    }
    assert.ok(compose.services['otel-collector'] && compose.services.prometheus && compose.services.grafana);
  },
);

Artifacts('config/carnx.compose.yaml passes `carnx check`', () => {
  const run = checkConfig(repoPath('config/carnx.compose.yaml'));
  assert.is(run.status, 0, run.output);
});

Artifacts('Dockerfile: multi-stage, Node 24 slim with libbpf1 at run time, no build tools in the runtime stage', () => {
  const stages = dockerfileStages();
  assert.equal(
    stages.map((s) => s.name),
    ['bpf', 'build', 'runtime'],
  );
  const runtime = stages.at(-1)!;
  assert.match(runtime.from, /^node:24-[a-z]+-slim$/);
  const runtimeText = runtime.lines.join('\n');
  assert.match(runtimeText, /apt-get install -y --no-install-recommends libbpf1 /);
  assert.not.match(runtimeText, /\b(clang|llvm|gcc|make|build-essential|libbpf-dev|npm ci|npm install|tsc)\b/);
  const copies = runtime.lines.filter((l) => l.startsWith('COPY'));
  assert.ok(
    copies.every((c) => /^COPY --from=(build|bpf) /.test(c)),
    'the runtime stage copies only build results',
  );
  assert.ok(copies.some((c) => / \/src\/xdp\/carnx\.bpf\.o \.\/xdp\/carnx\.bpf\.o$/.test(c)));
  assert.ok(runtime.lines.includes('ENTRYPOINT ["node", "/opt/carnx/dist/src/main.js"]'));
  assert.ok(runtime.lines.includes('WORKDIR /opt/carnx'));
  assert.match(stages[1]!.lines.join('\n'), /npm prune --omit=dev/);
  // The build context (.dockerignore is an allow-list) holds every file the build stages copy, and no node_modules.
  const ignore = readFileSync(repoPath('.dockerignore'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('!'))
    .map((l) => l.slice(1));
  for (const line of stages
    .slice(0, 2)
    .flatMap((s) => s.lines)
    .filter((l) => l.startsWith('COPY '))) {
    for (const source of line.split(/\s+/).slice(1, -1)) {
      assert.ok(
        ignore.some((allowed) => source === allowed || source === allowed.replace(/\/$/, '')),
        `.dockerignore drops ${source}`,
      );
    }
  }
  assert.not.ok(ignore.some((a) => /node_modules|dist/.test(a)));
});

Artifacts(
  "the image's runtime layout (dev dependencies pruned) counts with a read-only root and the proven capabilities",
  async () => {
    requireRoot('running the agent');
    // /opt/carnx as the runtime stage assembles it.
    const app = join(work, 'opt/carnx');
    mkdirSync(join(app, 'xdp'), { recursive: true });
    for (const f of ['package.json', 'package-lock.json']) cpSync(join(ROOT, f), join(app, f));
    cpSync(join(ROOT, 'node_modules'), join(app, 'node_modules'), { recursive: true });
    cpSync(join(ROOT, 'dist/src'), join(app, 'dist/src'), { recursive: true });
    cpSync(join(ROOT, 'xdp/carnx.bpf.o'), join(app, 'xdp/carnx.bpf.o'));
    execFileSync('npm', ['prune', '--omit=dev', '--no-audit', '--no-fund', '--offline'], { cwd: app, stdio: 'ignore' });
    rmSync(join(app, 'package-lock.json'));
    assert.not.ok(existsSync(join(app, 'node_modules/typescript')), 'dev dependencies left');

    const pair = vethPair(cleanups, 'i');
    const bpffs = testBpffs(cleanups, 'image');
    // A private mount namespace whose root is read-only, like readOnlyRootFilesystem; bpffs is its own mount.
    const script =
      `mount -o remount,bind,ro / && ! touch ${app}/probe 2>/dev/null && ` +
      `exec ${setpriv(PROVEN, { noNewPrivs: true }).join(' ')} "$@"`;
    const agent = spawnAgent(
      cleanups,
      [
        'run',
        '--interfaces-include',
        pair.host,
        '--interfaces-exclude',
        '',
        '--otlp-endpoint',
        'http://127.0.0.1:9',
        '--bpffs-path',
        bpffs.path,
        '--export-interval-ms',
        '60000',
      ],
      {
        prefix: ['unshare', '-m', '--propagation', 'private', 'sh', '-c', script, 'sh'],
        main: join(app, 'dist/src/main.js'),
      },
    );
    const pins = interfacePins(bpffs.path, pair.host);
    await agent.waitUntil('the agent to attach', () => existsSync(pins.link), 15_000);
    assert.ok(xdpOn(pair.host), `no XDP program on ${pair.host}`);
    assert.is((await agent.stop('SIGTERM')).code, 0, agent.describe());
    assert.not.ok(existsSync(pins.link));
  },
);

/** The unit's [Service] settings; a key given twice keeps every value. */
function unitSettings(): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  for (const line of readFileSync(repoPath('config/systemd/carnx.service'), 'utf8').split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) settings.set(m[1]!, [...(settings.get(m[1]!) ?? []), m[2]!]);
  }
  return settings;
}

Artifacts(
  'systemd unit: verifies, bounds capabilities to the proven set, no new privileges, restarts on failure',
  () => {
    const verify = commandResult('systemd-analyze', ['verify', repoPath('config/systemd/carnx.service')]);
    assert.is(verify.status, 0, verify.stderr);
    assert.is(verify.stderr.trim(), '', verify.stderr);
    const s = unitSettings();
    assert.equal(s.get('CapabilityBoundingSet')![0]!.split(/\s+/).sort(), PROVEN);
    assert.equal(s.get('NoNewPrivileges'), ['yes']);
    assert.equal(s.get('Restart'), ['on-failure']);
    assert.equal(s.get('RestartPreventExitStatus'), ['2 4'], 'config and object errors (exit 2 and 4) are not retried');
    assert.equal(s.get('ProtectSystem'), ['strict']);
    assert.ok(s.get('ReadWritePaths')!.includes('/sys/fs/bpf'));
    // systemd's ProtectKernelTunables mounts /sys/fs/bpf read-only: carnx could not pin.
    assert.is(s.get('ProtectKernelTunables'), undefined);
    assert.is(s.get('MemoryDenyWriteExecute'), undefined, 'V8 needs W+X memory');
    assert.ok(s.get('RestrictAddressFamilies')![0]!.split(/\s+/).includes('AF_NETLINK'), 'XDP queries go over netlink');
    // The same layout as the image: /opt/carnx/dist/src/main.js.
    assert.match(
      s.get('ExecStart')![0]!,
      /^\/usr\/bin\/node \/opt\/carnx\/dist\/src\/main\.js run --config \/etc\/carnx\/carnx\.yaml$/,
    );
  },
);

Artifacts(
  'systemd install (config/README.md): the config and headers files it installs under /etc/carnx are 0600',
  () => {
    const readme = readFileSync(repoPath('config/README.md'), 'utf8');
    const section = readme.slice(
      readme.indexOf('## systemd'),
      readme.indexOf('\n## ', readme.indexOf('## systemd') + 1),
    );
    const installs = section.split('\n').filter((l) => /^install .*\/etc\/carnx\//.test(l));
    const targets = installs.map((l) => /(\/etc\/carnx\/\S+)/.exec(l)![1]);
    assert.equal(targets, ['/etc/carnx/carnx.yaml', '/etc/carnx/otlp-headers']);
    for (const line of installs) assert.match(line, /^install -D -m 0600 /, `readable by root only: ${line}`);
    assert.match(section, 'otlp.headersFile: /etc/carnx/otlp-headers', 'the config points at the headers file');
    // The unit reads the config the install put there, and anything it creates stays private.
    assert.match(unitSettings().get('ExecStart')![0]!, / --config \/etc\/carnx\/carnx\.yaml$/);
    assert.equal(unitSettings().get('UMask'), ['0077']);
  },
);

Artifacts.run();
