// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The live-traffic bench's packet generator, never attached to an interface: BPF_PROG_TEST_RUN
 * with BPF_F_TEST_XDP_LIVE_FRAMES runs it on a frame `repeat` times, and the kernel turns XDP_TX
 * into a real transmit on the context's interface, a veth whose peer then receives every frame.
 * (carnx's own programs only ever pass; this one exists to send.)
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int live_gen(struct xdp_md *ctx)
{
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
