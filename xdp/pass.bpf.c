// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A bare XDP program that passes every frame: the benchmark's baseline, and the
 * "foreign program" tests put on an interface to check that carnx leaves it alone.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
