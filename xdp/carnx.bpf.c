// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * carnx's XDP program: adds every received frame to one per-CPU struct of counters, as
 * carnx_classify.h classifies it. One map lookup per frame, never writes to the frame, and
 * every path returns XDP_PASS: counting must never cost the host its traffic.
 */
#include "carnx_classify.h"

/*
 * One entry per loaded object, and one object per interface (see README, "Counting
 * model"): the lookup of key 0 in a one-entry per-CPU array is inlined by the verifier
 * into a few instructions. XDP runs in softirq on one CPU at a time, so the per-CPU
 * value needs no atomics.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct carnx_counters);
} carnx_counters SEC(".maps");

/* Never read on the packet path: the agent keeps the counting start time here. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct carnx_meta);
} carnx_meta SEC(".maps");

SEC("xdp")
int carnx_count(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct carnx_counters *c;
	__u32 key = 0;

	c = bpf_map_lookup_elem(&carnx_counters, &key);
	if (c)
		count_frame(c, data, data_end, data_end - data);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
