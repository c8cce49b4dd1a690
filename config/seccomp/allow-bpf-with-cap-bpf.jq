# Turns a container runtime's default seccomp profile (the JSON format of podman, CRI-O, Docker and containerd) into
# one carnx can run under: bpf(2) allowed to a process holding CAP_BPF, refused with EPERM to one holding neither
# CAP_BPF nor CAP_SYS_ADMIN, and every other rule left as it was. Needed only where the default profile still
# refuses bpf(2) without CAP_SYS_ADMIN (podman 4.3 / containers/common 0.50 on Debian 12, for one; see
# config/README.md "Containers and seccomp"). Checked by test/deploy/image.test.ts against podman's own profile.
#
#   jq -f allow-bpf-with-cap-bpf.jq /usr/share/containers/seccomp.json > carnx-seccomp.json
.syscalls |= (
  # Rules that refuse bpf (with other calls) keep refusing the others.
  map(if .action != "SCMP_ACT_ALLOW" and any(.names[]; . == "bpf") then .names -= ["bpf"] else . end)
  | map(select(.names | length > 0))
  + [
      {names: ["bpf"], action: "SCMP_ACT_ALLOW", args: [], includes: {caps: ["CAP_BPF"]}, excludes: {}},
      {names: ["bpf"], action: "SCMP_ACT_ERRNO", errnoRet: 1, args: [], includes: {},
       excludes: {caps: ["CAP_SYS_ADMIN", "CAP_BPF"]}}
    ]
)
