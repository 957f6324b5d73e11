/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Layouts shared by smoke.bpf.c and user space. The TypeScript view is
 * ffi/bpf/smoke_layout.ts; smoke_layout_test.ts checks it against the BTF of
 * the compiled object, so change both together.
 */
#ifndef CORAL_SMOKE_H
#define CORAL_SMOKE_H

/* One write(2) entry by a process in the PID filter: ring buffer "smoke_events". */
struct smoke_write_event {
	__u32 pid;   /* tgid of the writer (the user-space PID) */
	__s32 fd;    /* write(2) fd argument */
	__u64 count; /* write(2) count argument */
	__u64 ts_ns; /* bpf_ktime_get_ns() at sys_enter_write */
};                   /* 24 bytes */

/* Read-only settings, set from user space before load (.rodata). */
struct smoke_config {
	__u64 min_count; /* emit only writes with count >= min_count */
};

/* Indexes into the array map "smoke_counters" (u64 values). */
enum smoke_counter {
	SMOKE_COUNTER_DROPPED = 0, /* ring buffer full: record dropped */
	SMOKE_COUNTER_UPROBE_HITS = 1, /* coral_smoke_uprobe calls from PIDs in the filter */
	SMOKE_COUNTER_MAX = 2,
};

#endif /* CORAL_SMOKE_H */
