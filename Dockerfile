# carnx container image: the agent (Node.js) and its XDP object, on a slim Node 24 LTS runtime with libbpf1.
# Build:  docker build -t ghcr.io/carnx/carnx:0.1.0 .
# Run:    see docker-compose.yml or helm/carnx: host network, CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON, the host's bpffs.
#
# Three stages, so no compiler, libbpf/kernel headers or dev dependency reaches the runtime image (the Node base keeps
# its own /usr/local/include/node):
#   bpf      clang compiles xdp/carnx.bpf.c (BPF bytecode, the same for every CPU architecture);
#   build    npm ci + tsc, then the dev dependencies are pruned;
#   runtime  node + libbpf1 + the two results above.

# Debian 12 (bookworm) throughout: its libbpf1 is 1.1.2, the version carnx is tested with.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM debian:bookworm-slim AS bpf
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang llvm libbpf-dev linux-libc-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src/xdp
COPY xdp/build.sh xdp/*.h xdp/*.bpf.c ./
RUN bash build.sh

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# npm skips install scripts: koffi's prebuilt binary comes from its per-platform optional dependency.
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json \
 && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
# libbpf1: the only native library the agent loads (through koffi). npm, npx, corepack and yarn go: the image runs
# one program and installs nothing at run time (this removes the tools, not bytes: they stay in the base layer).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libbpf1 \
 && rm -rf /var/lib/apt/lists/* \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack /opt/yarn-* \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg
WORKDIR /opt/carnx
# The agent finds its package root (and xdp/carnx.bpf.o under it) from package.json.
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY --from=bpf /src/xdp/carnx.bpf.o ./xdp/carnx.bpf.o
# The agent writes nothing to its filesystem (only to the host's bpffs), so it runs with a read-only root.
# Root (uid 0): the runtime grants added capabilities to root; everything else is dropped by the deployment.
USER 0:0
ENV NODE_ENV=production
ENTRYPOINT ["node", "/opt/carnx/dist/src/main.js"]
CMD ["run"]
