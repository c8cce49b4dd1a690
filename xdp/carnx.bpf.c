// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * carnx's counting programs: add every frame to one per-CPU struct of counters, as
 * carnx_classify.h classifies it. The same code at two hooks: XDP (receive, where the driver
 * runs it natively) and TC via tcx (receive when XDP would have to run in generic mode, and
 * transmit). The agent loads only the program a hook needs, one object per interface and
 * direction. One map lookup per frame, never a write to the frame, and every path lets the
 * frame go on: counting must never cost the host its traffic.
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
	struct carnx_counters *c;
	void *data, *data_end;
	__u32 key = 0;

	/* The frame's pointers are read after the lookup: only ctx then lives across the call,
	 * which leaves the JIT fewer callee-saved registers to save and restore per frame. */
	c = bpf_map_lookup_elem(&carnx_counters, &key);
	if (!c)
		return XDP_PASS;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	count_frame(c, data, data_end, data_end - data);
	return XDP_PASS;
}

/* What a tcx program returns to hand the packet to the next program (or the stack). */
#define TCX_NEXT -1

/*
 * At TC, data points at the Ethernet header on both ingress and egress, and skb->len is the
 * whole frame. A GSO skb (merged by GRO on ingress, or not yet split by TSO/GSO on egress)
 * is counted as the segments it stands for on the wire. skb->wire_len is the kernel's wire
 * length at egress (headers repeated per segment, a tunnel's inner ones too); at ingress it is
 * skb->len without the Ethernet header, and count_gso_verdict() leaves it aside.
 *
 * A global function: the verifier checks it once, on its own, so the classifier's GSO variant
 * is walked once, apart from the path of every other frame. It proves nothing from the caller:
 * c may be NULL as far as it knows.
 */
__noinline int count_gso_skb(struct __sk_buff *skb, struct carnx_counters *c)
{
	void *data_end = (void *)(long)skb->data_end;
	void *data = (void *)(long)skb->data;
	struct gso_skb gso = {
		.segs = skb->gso_segs,
		.gso_size = skb->gso_size,
		.wire_len = skb->wire_len,
	};

	if (c)
		count_gso_frame(c, data, data_end, skb->len, &gso);
	return 0;
}

/* A skb without gso_size is one frame: counted exactly as at XDP, on the same path. */
SEC("tc")
int carnx_count_tc(struct __sk_buff *skb)
{
	struct carnx_counters *c;
	void *data, *data_end;
	__u32 key = 0;

	c = bpf_map_lookup_elem(&carnx_counters, &key);
	if (!c)
		return TCX_NEXT;
	if (unlikely(skb->gso_size)) {
		count_gso_skb(skb, c);
		return TCX_NEXT;
	}
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	count_frame(c, data, data_end, skb->len);
	return TCX_NEXT;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
