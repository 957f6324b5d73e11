// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Smoke program for the libbpf binding (ffi/libbpf/). Proves the native
 * foundation end to end: CO-RE load, a PID filter in the kernel, a ring
 * buffer, read-only config, tracepoint and uprobe attachment.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "smoke.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Puts the record type into the object's BTF, where smoke_layout_test.ts
 * checks the TypeScript view against it (the cilium/ebpf bpf2go idiom). */
const struct smoke_write_event *unused_smoke_write_event __attribute__((unused));

/* Set by user space before load; see struct smoke_config. */
const volatile struct smoke_config smoke_config = {};

/* The discovery filter in the kernel: PIDs (tgids) to trace -> 1. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} smoke_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} smoke_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SMOKE_COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} smoke_counters SEC(".maps");

static __always_inline void count(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&smoke_counters, &index);

	if (value)
		__sync_fetch_and_add(value, 1);
}

static __always_inline bool traced(__u32 pid)
{
	return bpf_map_lookup_elem(&smoke_pids, &pid) != NULL;
}

SEC("tracepoint/syscalls/sys_enter_write")
int coral_smoke_write(struct trace_event_raw_sys_enter *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct smoke_write_event *event;
	__u64 n = ctx->args[2];

	if (!traced(pid) || n < smoke_config.min_count)
		return 0;

	event = bpf_ringbuf_reserve(&smoke_events, sizeof(*event), 0);
	if (!event) {
		count(SMOKE_COUNTER_DROPPED);
		return 0;
	}
	event->pid = pid;
	event->fd = (__s32)ctx->args[0];
	event->count = n;
	event->ts_ns = bpf_ktime_get_ns();
	bpf_ringbuf_submit(event, 0);
	return 0;
}

/* Attached by user space to a function of its choosing (no auto-attach). */
SEC("uprobe")
int coral_smoke_uprobe(void *ctx)
{
	if (traced(bpf_get_current_pid_tgid() >> 32))
		count(SMOKE_COUNTER_UPROBE_HITS);
	return 0;
}
