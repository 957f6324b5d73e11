// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * HTTP/1.x capture from syscall tracepoints (no kprobes needed).
 *
 * For the processes in "http_pids" only, every read/write-like syscall on a
 * TCP socket is looked at at its exit, knowing how many bytes moved (the
 * arguments come from the saved registers; writes also stash their entry
 * time by pid_tgid): the first bytes are classified and per-connection state
 * kept in "http_conns" (key: pid + fd):
 *
 *   server  read "GET /x HTTP/1.1…"  → request starts, first bytes kept
 *           read (more)              → request bytes counted
 *           write "HTTP/1.1 200 …"   → one http_event, state back to idle
 *   client  write "GET /x HTTP/1.1…" → request starts, first bytes kept
 *           write (more)             → request bytes counted
 *           read "HTTP/1.1 200 …"    → one http_event, state back to idle
 *
 * So the ring buffer carries one record per request/response pair, and user
 * space parses method, path, headers and status from the copied bytes.
 * Keep-alive connections go round the same cycle; informational responses
 * (1xx) are skipped. Connections accepted or connected while the capture
 * runs get their addresses from the socket at once; older ones when their
 * first HTTP-looking bytes show up, and a syscall already blocked when the
 * programs were attached is seen at its exit. The kernel closes an exiting
 * process's files without close(2): sched_process_exit frees their state.
 * See http.h for the record and counters.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "http.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Put the shared types into the object's BTF for http_event_layout_test.ts. */
const struct http_event *unused_http_event __attribute__((unused));
const enum http_counter *unused_http_counter __attribute__((unused));
const enum http_side *unused_http_side __attribute__((unused));
const struct stream_event *unused_stream_event __attribute__((unused));
const enum l7_protocol *unused_l7_protocol __attribute__((unused));
const enum stream_event_kind *unused_stream_event_kind __attribute__((unused));
const enum stream_sender *unused_stream_sender __attribute__((unused));

/* Set by user space before load; see struct http_config. */
const volatile struct http_config http_config = {};

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EINPROGRESS 115
/* Bytes looked at to classify a chunk: "OPTIONS /" and "HTTP/1.1 200" fit. */
#define PREFIX_BYTES 16

enum conn_state {
	CONN_IDLE = 0,
	CONN_SERVER_REQUEST = 1, /* request read, waiting for the response write */
	CONN_CLIENT_REQUEST = 2, /* request written, waiting for the response read */
};

/* What a syscall's second argument points at. */
enum buf_kind {
	BUF_PLAIN = 0, /* read, write, sendto, recvfrom: a buffer */
	BUF_IOV = 1,   /* readv, writev: an iovec array */
	BUF_MSG = 2,   /* sendmsg, recvmsg: a user_msghdr */
	BUF_NONE = 3,  /* connect: just the fd */
};

struct conn_key {
	__u32 pid;
	__s32 fd;
};

struct http_conn {
	__u64 start_ns;
	__u64 request_bytes;
	__u64 conn_id;   /* from next_conn_id: tells fd reuse apart in user space */
	struct http_endpoints endpoints;
	__u8 state;      /* enum conn_state */
	__u8 protocol;   /* enum l7_protocol */
	__u16 request_len;
	__u8 stream_side; /* enum http_side, for stream protocols */
	__u8 tls;        /* plaintext comes from the SSL uprobes: skip the syscalls' bytes */
	__u16 pad;
	__u8 request[HTTP_REQUEST_BYTES];
};

/* A stream_event and room for its data: twice the data size, so a copy at any offset below STREAM_DATA_BYTES fits. */
struct stream_scratch {
	struct stream_event header;
	__u8 data[2 * STREAM_DATA_BYTES];
};

struct syscall_args {
	__u64 buf;    /* buffer, iovec array or msghdr, per kind */
	__u64 count;  /* the third argument: iovec count of readv/writev */
	__u64 ts_ns;  /* entry time of a write; 0 when taken from registers */
	__s32 fd;
	__u32 kind;   /* enum buf_kind */
};

/*
 * The discovery filter: bit (pid % 64) of word (pid / 64) is set for every
 * tgid to trace. A global array (.bss, mmapped by user space, which sets and
 * clears bits with atomics): every syscall of every process asks it, and a
 * memory read is much cheaper than a hash map lookup.
 */
__u64 http_pid_bits[HTTP_PID_WORDS] SEC(".bss.pid_bits"); /* alone: user space maps it at offset 0 */

/* Per connection state; max_entries from beyla.limits.max_traced_connections. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10000);
	__type(key, struct conn_key);
	__type(value, struct http_conn);
} http_conns SEC(".maps");

/*
 * Write arguments and entry time from entry to exit, per thread (a thread is
 * in one syscall at a time): task storage costs a fraction of a hash update.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct syscall_args);
} http_args SEC(".maps");

/* An SSL_read/SSL_write in progress on a thread: its arguments, and the socket its syscalls used. */
struct ssl_call {
	__u64 ssl;       /* the SSL * */
	__u64 buf;
	__u64 out_bytes; /* size_t * of SSL_read_ex/SSL_write_ex; 0 for SSL_read/SSL_write */
	__u64 ts_ns;     /* entry time */
	__s32 fd;        /* from a read/write syscall inside the call; -1 until seen */
	__u32 active;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ssl_call);
} ssl_calls SEC(".maps");

struct ssl_key {
	__u64 ssl;
	__u32 pid;
	__u32 pad;
};

/* The socket of each SSL * seen doing a syscall: calls served from OpenSSL's buffer make none. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ssl_key);
	__type(value, __s32);
} ssl_fds SEC(".maps");

/* Size from beyla.limits.ring_buffer_size (a power of two, whole pages). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} http_events SEC(".maps");

/* Where an http_event is put together before bpf_ringbuf_output. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct http_event);
} http_scratch SEC(".maps");

/* Chunks of stream-protocol connections; sized like http_events. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} stream_events SEC(".maps");

/* Where a stream_event is put together before bpf_ringbuf_output (too big for the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stream_scratch);
} stream_scratch SEC(".maps");

/* Last connection id handed out. */
__u64 next_conn_id;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HTTP_COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} http_counters SEC(".maps");

/* A zeroed connection, the initial value of new entries. */
static const struct http_conn zero_conn = {};

static __always_inline void count(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&http_counters, &index);

	if (value)
		__sync_fetch_and_add(value, 1);
}

static __always_inline __u64 counter(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&http_counters, &index);

	return value ? *value : 0;
}

static __always_inline bool traced(__u32 pid)
{
	__u64 word = pid >> 6;

	/* Keep the bounded value in one register, or the verifier loses the bound. */
	asm volatile("" : "+r"(word));
	if (word >= HTTP_PID_WORDS)
		return false;
	return (http_pid_bits[word] >> (pid & 63)) & 1;
}

/* ---- Classifying the first bytes of a chunk ---- */

static __always_inline bool target_start(__u8 c)
{
	return c == '/' || c == 'h' || c == '*';
}

/* "METHOD SP" then "/", "http…" or "*": a request line. */
static __always_inline bool is_request(const __u8 *b, __u64 n)
{
	if (n < 8)
		return false;
	switch (b[0]) {
	case 'G':
		return b[1] == 'E' && b[2] == 'T' && b[3] == ' ' && target_start(b[4]);
	case 'P':
		if (b[1] == 'U')
			return b[2] == 'T' && b[3] == ' ' && target_start(b[4]);
		if (b[1] == 'O')
			return b[2] == 'S' && b[3] == 'T' && b[4] == ' ' && target_start(b[5]);
		return b[1] == 'A' && b[2] == 'T' && b[3] == 'C' && b[4] == 'H' && b[5] == ' ' &&
		       target_start(b[6]);
	case 'H':
		return b[1] == 'E' && b[2] == 'A' && b[3] == 'D' && b[4] == ' ' && target_start(b[5]);
	case 'D':
		return b[1] == 'E' && b[2] == 'L' && b[3] == 'E' && b[4] == 'T' && b[5] == 'E' &&
		       b[6] == ' ' && target_start(b[7]);
	case 'O':
		return b[1] == 'P' && b[2] == 'T' && b[3] == 'I' && b[4] == 'O' && b[5] == 'N' &&
		       b[6] == 'S' && b[7] == ' ' && target_start(b[8]);
	case 'T':
		return b[1] == 'R' && b[2] == 'A' && b[3] == 'C' && b[4] == 'E' && b[5] == ' ' &&
		       target_start(b[6]);
	case 'C':
		return b[1] == 'O' && b[2] == 'N' && b[3] == 'N' && b[4] == 'E' && b[5] == 'C' &&
		       b[6] == 'T' && b[7] == ' ';
	}
	return false;
}

/* "HTTP/1." */
static __always_inline bool is_response(const __u8 *b, __u64 n)
{
	return n >= 12 && b[0] == 'H' && b[1] == 'T' && b[2] == 'T' && b[3] == 'P' &&
	       b[4] == '/' && b[5] == '1' && b[6] == '.';
}

static __always_inline bool is_digit(__u8 c)
{
	return c >= '0' && c <= '9';
}

/* ---- Where a syscall's bytes are ---- */

struct chunk {
	__u64 ptr; /* first byte */
	__u64 len; /* bytes there (the first iovec's share for vectored calls) */
};

static __always_inline bool first_iovec(__u64 iov, __u64 count, struct chunk *out)
{
	struct iovec vec;

	if (!iov || count == 0 || bpf_probe_read_user(&vec, sizeof(vec), (void *)iov))
		return false;
	out->ptr = (__u64)vec.iov_base;
	if (vec.iov_len < out->len)
		out->len = vec.iov_len;
	return true;
}

/* The first contiguous chunk of the `moved` bytes the syscall transferred. */
static __always_inline bool locate(const struct syscall_args *args, __u64 moved, struct chunk *out)
{
	out->len = moved;
	switch (args->kind) {
	case BUF_PLAIN:
		out->ptr = args->buf;
		return out->ptr != 0;
	case BUF_IOV: {
		/* readv/writev: the iovec count was args[2]; one entry is enough. */
		return first_iovec(args->buf, 1, out);
	}
	case BUF_MSG: {
		struct user_msghdr msg;

		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)args->buf))
			return false;
		return first_iovec((__u64)msg.msg_iov, msg.msg_iovlen, out);
	}
	}
	return false;
}

/* Copies min(len, cap) bytes; cap is a constant, so the verifier sees the bound. */
#define COPY_USER(dst, cap, len, src)                                                  \
	({                                                                             \
		__u64 __n = (len);                                                     \
		if (__n > (cap))                                                       \
			__n = (cap);                                                   \
		asm volatile("" : "+r"(__n));                                          \
		__n > 0 && __n <= (cap) && !bpf_probe_read_user((dst), __n, (void *)(src)) \
			? __n                                                          \
			: 0;                                                           \
	})

/* ---- Connections ---- */

/* Ends of the TCP socket at `fd` of the current process; false when it is not one. */
static __always_inline bool socket_endpoints(__s32 fd, struct http_endpoints *ep)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *file;
	struct socket *sock;
	struct sock *sk;
	__u16 family;

	if (!fdt || fd < 0 || (__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return false;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return false;
	if ((BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return false;
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, sk_type) != SOCK_STREAM)
		return false;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == AF_INET) {
		bpf_core_read(ep->local_addr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(ep->remote_addr, 4, &sk->__sk_common.skc_daddr);
	} else if (family == AF_INET6) {
		bpf_core_read(ep->local_addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(ep->remote_addr, 16, &sk->__sk_common.skc_v6_daddr);
	} else {
		return false;
	}
	ep->family = family;
	ep->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	ep->remote_port = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	return true;
}

/*
 * Fresh state for a TCP connection (`reset`: also when one exists, as after
 * accept or connect reused the fd); NULL when `fd` is not a TCP socket.
 */
static __always_inline struct http_conn *track(struct conn_key *key, bool reset)
{
	struct http_endpoints ep = {};
	struct http_conn *conn;
	bool existed;

	if (!socket_endpoints(key->fd, &ep)) {
		if (reset)
			bpf_map_delete_elem(&http_conns, key);
		return NULL;
	}
	existed = bpf_map_lookup_elem(&http_conns, key) != NULL;
	if (!existed) {
		if (counter(HTTP_COUNTER_CONNS_OPENED) - counter(HTTP_COUNTER_CONNS_CLOSED) >=
		    http_config.max_conns)
			count(HTTP_COUNTER_CONN_MAP_FULL);
		count(HTTP_COUNTER_CONNS_OPENED);
	}
	if (bpf_map_update_elem(&http_conns, key, &zero_conn, BPF_ANY))
		return NULL;
	conn = bpf_map_lookup_elem(&http_conns, key);
	if (conn) {
		conn->endpoints = ep;
		conn->conn_id = __sync_fetch_and_add(&next_conn_id, 1) + 1;
	}
	return conn;
}

static __always_inline void stream_closed(const struct http_conn *conn, const struct conn_key *key);

static __always_inline void untrack(struct conn_key *key)
{
	struct http_conn *conn = bpf_map_lookup_elem(&http_conns, key);

	if (!conn)
		return;
	if (conn->protocol >= L7_HTTP2)
		stream_closed(conn, key);
	if (conn->state != CONN_IDLE)
		count(HTTP_COUNTER_UNANSWERED);
	if (bpf_map_delete_elem(&http_conns, key) == 0)
		count(HTTP_COUNTER_CONNS_CLOSED);
}

/* ---- Stream protocols: classified here, parsed in user space ---- */

static __always_inline __u32 be32(const __u8 *b)
{
	return (__u32)b[0] << 24 | (__u32)b[1] << 16 | (__u32)b[2] << 8 | b[3];
}

static __always_inline __u32 be24(const __u8 *b)
{
	return (__u32)b[0] << 16 | (__u32)b[1] << 8 | b[2];
}

static __always_inline __u32 le24(const __u8 *b)
{
	return (__u32)b[0] | (__u32)b[1] << 8 | (__u32)b[2] << 16;
}

/*
 * The protocol of a connection from the first bytes of a chunk (`seen` of
 * the `moved`), or L7_UNKNOWN; `side` gets the traced process's side. Only
 * openings that rarely occur by chance count: the HTTP/2 preface, a Redis
 * command array, a PostgreSQL startup / SSL request / whole simple query, a
 * MySQL server greeting or a whole MySQL query packet, an HTTP/2 HEADERS
 * frame on a client stream (a connection older than the capture).
 */
static __always_inline __u8 classify_stream(const __u8 *b, __u64 seen, __u64 moved,
					    bool inbound, __u8 *side)
{
	bool from_client = true;
	__u8 protocol = L7_UNKNOWN;

	if (seen < 5)
		return L7_UNKNOWN;
	if (seen >= 16 && b[0] == 'P' && b[1] == 'R' && b[2] == 'I' && b[3] == ' ' &&
	    b[4] == '*' && b[5] == ' ' && b[6] == 'H' && b[7] == 'T' && b[8] == 'T' &&
	    b[9] == 'P' && b[10] == '/' && b[11] == '2') {
		protocol = L7_HTTP2;
	} else if (b[0] == '*' && is_digit(b[1]) &&
		   ((b[2] == '\r' && b[3] == '\n' && b[4] == '$') ||
		    (seen >= 6 && is_digit(b[2]) && b[3] == '\r' && b[4] == '\n' && b[5] == '$'))) {
		protocol = L7_REDIS;
	} else if (seen >= 8 && be32(b) == moved && b[4] == 0 && b[5] == 3 && b[6] == 0 &&
		   b[7] == 0) {
		protocol = L7_POSTGRES; /* StartupMessage, protocol 3.0 */
	} else if (seen >= 8 && be32(b) == 8 && b[4] == 0x04 && b[5] == 0xd2 && b[6] == 0x16 &&
		   (b[7] == 0x2f || b[7] == 0x30)) {
		protocol = L7_POSTGRES; /* SSLRequest, GSSENCRequest */
	} else if (b[0] == 'Q' && be32(b + 1) >= 5 && be32(b + 1) + 1 == moved) {
		protocol = L7_POSTGRES; /* one whole simple Query */
	} else if (le24(b) + 4 == moved && b[3] == 0 && b[4] == 0x0a) {
		protocol = L7_MYSQL; /* initial handshake, protocol 10 */
		from_client = false;
	} else if (le24(b) + 4 == moved && b[3] == 0 &&
		   (b[4] == 0x03 || b[4] == 0x16 || b[4] == 0x17)) {
		protocol = L7_MYSQL; /* COM_QUERY, COM_STMT_PREPARE, COM_STMT_EXECUTE */
	} else if (seen >= 9 && b[3] == 1 && (b[4] & ~0x2d) == 0 && (b[5] & 0x80) == 0 &&
		   (b[8] & 1) == 1 && be24(b) > 0 && be24(b) <= 16384 && be24(b) + 9 <= moved) {
		/*
		 * An HTTP/2 HEADERS frame on a client stream: a connection that was
		 * open before the capture (no preface seen). Either end sends those,
		 * so the side is left to user space (STREAM_SIDE_UNKNOWN).
		 */
		*side = 0;
		return L7_HTTP2;
	}
	if (protocol != L7_UNKNOWN)
		*side = from_client == inbound ? HTTP_SIDE_SERVER : HTTP_SIDE_CLIENT;
	return protocol;
}

/* Copies up to STREAM_DATA_BYTES of what the call moved, across its iovecs; returns the bytes copied. */
static __always_inline __u32 copy_chunk(__u8 *data, const struct syscall_args *args, __u64 moved)
{
	__u64 iov = args->buf, count = args->count;
	__u32 off = 0;

	if (args->kind == BUF_PLAIN)
		return COPY_USER(data, STREAM_DATA_BYTES, moved, args->buf);
	if (args->kind == BUF_MSG) {
		struct user_msghdr msg;

		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)args->buf))
			return 0;
		iov = (__u64)msg.msg_iov;
		count = msg.msg_iovlen;
	} else if (args->kind != BUF_IOV) {
		return 0;
	}
	for (int i = 0; i < STREAM_IOVECS; i++) {
		struct iovec vec;
		__u64 len;

		if (i >= count || off >= moved || off >= STREAM_DATA_BYTES)
			break;
		if (bpf_probe_read_user(&vec, sizeof(vec), (void *)(iov + i * sizeof(vec))))
			break;
		len = vec.iov_len;
		if (len > moved - off)
			len = moved - off;
		if (len > STREAM_DATA_BYTES - off)
			len = STREAM_DATA_BYTES - off;
		asm volatile("" : "+r"(len));
		if (len == 0 || len > STREAM_DATA_BYTES)
			continue;
		if (bpf_probe_read_user(data + (off & (STREAM_DATA_BYTES - 1)), len, vec.iov_base))
			break;
		off += len;
	}
	return off;
}

static __always_inline void stream_header(struct stream_event *e, const struct http_conn *conn,
					  const struct conn_key *key, __u8 kind, __u64 time_ns)
{
	e->conn_id = conn->conn_id;
	e->time_ns = time_ns;
	e->pid = key->pid;
	e->fd = key->fd;
	e->size = 0;
	e->len = 0;
	e->kind = kind;
	e->protocol = conn->protocol;
	e->side = conn->stream_side;
	e->sender = 0;
	e->tls = conn->tls;
	e->endpoints = conn->endpoints;
}

/* One chunk of a stream connection to user space. */
static __always_inline void emit_stream(const struct http_conn *conn, const struct conn_key *key,
					const struct syscall_args *args, __u64 moved, bool inbound,
					__u64 time_ns)
{
	__u32 zero = 0;
	struct stream_scratch *scratch = bpf_map_lookup_elem(&stream_scratch, &zero);
	__u32 copied;

	if (!scratch)
		return;
	copied = copy_chunk(scratch->data, args, moved);
	stream_header(&scratch->header, conn, key, STREAM_DATA, time_ns);
	scratch->header.size = moved > 0xffffffff ? 0xffffffff : moved;
	scratch->header.len = copied;
	/* A server reads what the client sent; a client reads what the server sent. */
	if (conn->stream_side == 0)
		scratch->header.sender = inbound ? STREAM_SENDER_PEER : STREAM_SENDER_SELF;
	else
		scratch->header.sender = inbound == (conn->stream_side == HTTP_SIDE_SERVER)
						 ? STREAM_SENDER_CLIENT
						 : STREAM_SENDER_SERVER;
	if (copied < moved)
		count(HTTP_COUNTER_STREAM_TRUNCATED);
	if (copied > STREAM_DATA_BYTES)
		return;
	if (bpf_ringbuf_output(&stream_events, scratch, sizeof(struct stream_event) + copied, 0))
		count(HTTP_COUNTER_STREAM_DROPPED);
	else
		count(HTTP_COUNTER_STREAM_EVENTS);
}

static __always_inline void stream_closed(const struct http_conn *conn, const struct conn_key *key)
{
	struct stream_event event = {};

	stream_header(&event, conn, key, STREAM_CLOSE, bpf_ktime_get_ns());
	if (bpf_ringbuf_output(&stream_events, &event, sizeof(event), 0))
		count(HTTP_COUNTER_STREAM_DROPPED);
	else
		count(HTTP_COUNTER_STREAM_EVENTS);
}

/* ---- Requests and responses ---- */

static __always_inline void start_request(struct http_conn *conn, __u8 state, __u64 start_ns,
					  const struct chunk *chunk, __u64 moved)
{
	if (conn->state != CONN_IDLE)
		count(HTTP_COUNTER_UNANSWERED);
	conn->state = state;
	conn->start_ns = start_ns;
	conn->request_bytes = moved;
	conn->request_len = COPY_USER(conn->request, HTTP_REQUEST_BYTES, chunk->len, chunk->ptr);
}

static __always_inline void finish(struct http_conn *conn, const struct conn_key *key, __u8 side,
				   __u64 end_ns, const struct chunk *chunk, __u64 moved)
{
	__u32 zero = 0;
	struct http_event *event = bpf_map_lookup_elem(&http_scratch, &zero);
	__u64 size;

	conn->state = CONN_IDLE;
	if (!event)
		return;
	event->start_ns = conn->start_ns;
	event->end_ns = end_ns;
	event->request_bytes = conn->request_bytes;
	event->response_bytes = moved;
	event->pid = key->pid;
	event->fd = key->fd;
	event->endpoints = conn->endpoints;
	event->side = side;
	event->pad = 0;
	event->request_len = conn->request_len;
	event->response_len =
		COPY_USER(event->response, HTTP_RESPONSE_BYTES, chunk->len, chunk->ptr);
	__builtin_memcpy(event->request, conn->request, HTTP_REQUEST_BYTES);
	/* Only the valid bytes of request[] go out: most records are far below 632 bytes. */
	size = offsetof(struct http_event, request) + conn->request_len;
	asm volatile("" : "+r"(size));
	if (size > sizeof(*event))
		size = sizeof(*event);
	if (bpf_ringbuf_output(&http_events, event, size, 0)) {
		count(HTTP_COUNTER_DROPPED);
		return;
	}
	count(HTTP_COUNTER_EVENTS);
}

/*
 * A chunk moved by the traced process: `inbound` for reads. The prefix is
 * classified first, so bytes that are no HTTP cost one lookup and one copy.
 */
static __always_inline void on_data(__u64 pid_tgid, const struct syscall_args *args, __s64 ret,
				    bool inbound, __u8 tls)
{
	struct conn_key key = { .pid = pid_tgid >> 32, .fd = args->fd };
	__u8 prefix[PREFIX_BYTES] = {};
	struct http_conn *conn;
	struct chunk chunk;
	__u64 now, seen;
	bool request, response;

	if (ret <= 0 || !locate(args, ret, &chunk))
		return;
	seen = COPY_USER(prefix, PREFIX_BYTES, chunk.len, chunk.ptr);
	conn = bpf_map_lookup_elem(&http_conns, &key);
	if (conn) {
		if (tls)
			conn->tls = 1; /* from now on the plaintext comes from the uprobes */
		else if (conn->tls)
			return; /* ciphertext */
	}
	if (conn && conn->protocol >= L7_HTTP2) {
		/* A stream connection: every chunk goes to user space. */
		emit_stream(conn, &key, args, ret, inbound, inbound ? bpf_ktime_get_ns() : args->ts_ns);
		return;
	}
	request = is_request(prefix, seen);
	response = !request && is_response(prefix, seen);
	if (!request && !response && (!conn || conn->protocol == L7_UNKNOWN)) {
		__u8 side = 0;
		__u8 protocol = classify_stream(prefix, seen, ret, inbound, &side);

		if (protocol == L7_UNKNOWN)
			return;
		if (!conn) {
			conn = track(&key, false);
			if (!conn) {
				count(HTTP_COUNTER_NOT_INET);
				return;
			}
		}
		conn->protocol = protocol;
		conn->stream_side = side;
		conn->tls = tls;
		emit_stream(conn, &key, args, ret, inbound,
			    inbound ? bpf_ktime_get_ns() : args->ts_ns);
		return;
	}
	if (!conn) {
		if (!request && !response)
			return;
		conn = track(&key, false);
		if (!conn) {
			count(HTTP_COUNTER_NOT_INET);
			return;
		}
		conn->tls = tls;
	}
	conn->protocol = L7_HTTP1;
	now = bpf_ktime_get_ns();

	if (response) {
		if (!is_digit(prefix[9]) || !is_digit(prefix[10]) || !is_digit(prefix[11])) {
			count(HTTP_COUNTER_UNPARSABLE);
			return;
		}
		if (prefix[9] == '1')
			return; /* 100 Continue and friends: the real response follows */
		if (inbound && conn->state == CONN_CLIENT_REQUEST)
			finish(conn, &key, HTTP_SIDE_CLIENT, now, &chunk, ret);
		else if (!inbound && conn->state == CONN_SERVER_REQUEST)
			finish(conn, &key, HTTP_SIDE_SERVER, args->ts_ns, &chunk, ret);
		else
			count(HTTP_COUNTER_UNPAIRED_RESPONSE);
		return;
	}
	if (request) {
		if (inbound)
			start_request(conn, CONN_SERVER_REQUEST, now, &chunk, ret);
		else
			start_request(conn, CONN_CLIENT_REQUEST, args->ts_ns, &chunk, ret);
		return;
	}
	/* The rest of a request (body, headers split over chunks). */
	if ((inbound && conn->state == CONN_SERVER_REQUEST) ||
	    (!inbound && conn->state == CONN_CLIENT_REQUEST))
		conn->request_bytes += ret;
}

/* ---- Write entry: stash the arguments and the time ---- */

static __always_inline int stash(struct trace_event_raw_sys_enter *ctx, __u32 kind)
{
	struct syscall_args *args;

	if (!traced(bpf_get_current_pid_tgid() >> 32))
		return 0;
	args = bpf_task_storage_get(&http_args, bpf_get_current_task_btf(), 0,
				    BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!args)
		return 0;
	args->fd = (__s32)ctx->args[0];
	args->buf = ctx->args[1];
	args->count = ctx->args[2];
	args->kind = kind;
	args->ts_ns = bpf_ktime_get_ns(); /* non-zero: a stash is waiting */
	return 0;
}

/* ---- Exit: the return value says how many bytes moved ---- */


/*
 * A syscall's fd and buffer at its exit: the saved user registers still hold
 * the arguments (x86-64 keeps them; arm64's first one is orig_x0, which the
 * _SYSCALL macro reads). So reads need no entry program, and a syscall that
 * entered before the programs were attached (a server blocked in read on an
 * idle keep-alive connection) is seen too.
 */
static __always_inline bool args_from_regs(struct syscall_args *args, __u32 kind)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

	if (!regs)
		return false;
	args->fd = (__s32)PT_REGS_PARM1_CORE_SYSCALL(regs);
	args->buf = PT_REGS_PARM2_CORE_SYSCALL(regs);
	args->count = PT_REGS_PARM3_CORE_SYSCALL(regs);
	args->kind = kind;
	args->ts_ns = 0;
	return true;
}

/*
 * Reads: everything at exit. The request starts (server) or the response
 * arrives (client) when the read returns with the bytes.
 */
/* Inside an SSL_read/SSL_write: the syscall's fd is the SSL's socket. */
static __always_inline void note_ssl_fd(__s32 fd)
{
	struct ssl_call *call = bpf_task_storage_get(&ssl_calls, bpf_get_current_task_btf(), 0, 0);

	if (call && call->active && call->fd < 0)
		call->fd = fd;
}

static __always_inline int read_exit(struct trace_event_raw_sys_exit *ctx, __u32 kind)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct syscall_args args = {};

	if (ctx->ret <= 0 || !traced(pid_tgid >> 32) || !args_from_regs(&args, kind))
		return 0;
	note_ssl_fd(args.fd);
	on_data(pid_tgid, &args, ctx->ret, true, 0);
	return 0;
}

/*
 * Writes: the entry stashed its time, when the process handed the bytes
 * over (a blocking write may return much later); without a stash (entered
 * before attach) the exit time stands in.
 */
static __always_inline int write_exit(struct trace_event_raw_sys_exit *ctx, __u32 kind)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct syscall_args *stashed;
	struct syscall_args args = {};

	if (!traced(pid_tgid >> 32))
		return 0;
	stashed = bpf_task_storage_get(&http_args, bpf_get_current_task_btf(), 0, 0);
	if (stashed && stashed->ts_ns != 0) {
		args = *stashed;
		stashed->ts_ns = 0;
	} else if (ctx->ret <= 0 || !args_from_regs(&args, kind)) {
		return 0;
	} else {
		args.ts_ns = bpf_ktime_get_ns();
	}
	note_ssl_fd(args.fd);
	on_data(pid_tgid, &args, ctx->ret, false, 0);
	return 0;
}

#define READ_PROGRAM(syscall, kind)                                            \
	SEC("tracepoint/syscalls/sys_exit_" #syscall)                          \
	int coral_http_##syscall##_exit(struct trace_event_raw_sys_exit *ctx)   \
	{                                                                      \
		return read_exit(ctx, kind);                                   \
	}

#define WRITE_PROGRAMS(syscall, kind)                                          \
	SEC("tracepoint/syscalls/sys_enter_" #syscall)                         \
	int coral_http_##syscall##_enter(struct trace_event_raw_sys_enter *ctx) \
	{                                                                      \
		return stash(ctx, kind);                                       \
	}                                                                      \
	SEC("tracepoint/syscalls/sys_exit_" #syscall)                          \
	int coral_http_##syscall##_exit(struct trace_event_raw_sys_exit *ctx)   \
	{                                                                      \
		return write_exit(ctx, kind);                                  \
	}

READ_PROGRAM(read, BUF_PLAIN)
READ_PROGRAM(recvfrom, BUF_PLAIN)
READ_PROGRAM(readv, BUF_IOV)
READ_PROGRAM(recvmsg, BUF_MSG)
WRITE_PROGRAMS(write, BUF_PLAIN)
WRITE_PROGRAMS(sendto, BUF_PLAIN)
WRITE_PROGRAMS(writev, BUF_IOV)
WRITE_PROGRAMS(sendmsg, BUF_MSG)


/* ---- TLS: plaintext at OpenSSL's SSL_read/SSL_write (uprobes on libssl) ---- */

static __always_inline int ssl_enter(struct pt_regs *ctx, bool ex)
{
	struct ssl_call *call;

	if (!traced(bpf_get_current_pid_tgid() >> 32))
		return 0;
	call = bpf_task_storage_get(&ssl_calls, bpf_get_current_task_btf(), 0,
				    BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!call)
		return 0;
	call->ssl = PT_REGS_PARM1(ctx);
	call->buf = PT_REGS_PARM2(ctx);
	call->out_bytes = ex ? PT_REGS_PARM4(ctx) : 0;
	call->ts_ns = bpf_ktime_get_ns();
	call->fd = -1;
	call->active = 1;
	return 0;
}

/*
 * At the return: how many bytes moved (the return value, or *readbytes /
 * *written for the _ex calls), and the socket (seen in a syscall during
 * this call or an earlier one of the same SSL *); then the same path as
 * plaintext from a syscall.
 */
/* The SSL call in progress on this thread, now ended; NULL when there is none. */
static __always_inline struct ssl_call *end_ssl_call(__u64 pid_tgid)
{
	struct ssl_call *call;

	if (!traced(pid_tgid >> 32))
		return NULL;
	call = bpf_task_storage_get(&ssl_calls, bpf_get_current_task_btf(), 0, 0);
	if (!call || !call->active)
		return NULL;
	call->active = 0;
	return call;
}

/*
 * The SSL *'s socket: the one a syscall of this call used (remembered for
 * later calls), else the one remembered; -1 when never seen.
 */
static __always_inline __s32 ssl_socket(const struct ssl_call *call, __u32 pid)
{
	struct ssl_key key = { .ssl = call->ssl, .pid = pid };
	__s32 *known;

	if (call->fd >= 0) {
		bpf_map_update_elem(&ssl_fds, &key, &call->fd, BPF_ANY);
		return call->fd;
	}
	known = bpf_map_lookup_elem(&ssl_fds, &key);
	return known ? *known : -1;
}

static __always_inline int ssl_exit(struct pt_regs *ctx, bool inbound)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct ssl_call *call = end_ssl_call(pid_tgid);
	struct syscall_args args = {};
	__s64 moved = PT_REGS_RC(ctx);

	if (!call)
		return 0;
	if (call->out_bytes) {
		size_t n = 0;

		if (moved != 1 || bpf_probe_read_user(&n, sizeof(n), (void *)call->out_bytes))
			return 0;
		moved = n;
	}
	if (moved <= 0)
		return 0;
	args.fd = ssl_socket(call, pid_tgid >> 32);
	if (args.fd < 0) {
		count(HTTP_COUNTER_TLS_NO_SOCKET);
		return 0;
	}
	args.buf = call->buf;
	args.kind = BUF_PLAIN;
	args.ts_ns = call->ts_ns;
	on_data(pid_tgid, &args, moved, inbound, 1);
	return 0;
}

/* SSL_set_fd(ssl, fd): the socket of an SSL *, before any data. */
SEC("uprobe")
int coral_http_ssl_set_fd(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct ssl_key key = { .ssl = PT_REGS_PARM1(ctx), .pid = pid_tgid >> 32 };
	__s32 fd = (__s32)PT_REGS_PARM2(ctx);

	if (traced(key.pid) && fd >= 0)
		bpf_map_update_elem(&ssl_fds, &key, &fd, BPF_ANY);
	return 0;
}

/*
 * SSL_do_handshake (SSL_accept and SSL_connect call it): its syscalls give
 * the socket of an SSL * set up without SSL_set_fd. The first SSL_read may
 * then be served from bytes the handshake already read, without a syscall.
 */
SEC("uprobe")
int coral_http_ssl_handshake_enter(struct pt_regs *ctx)
{
	return ssl_enter(ctx, false);
}

SEC("uretprobe")
int coral_http_ssl_handshake_exit(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct ssl_call *call = end_ssl_call(pid_tgid);

	if (call)
		ssl_socket(call, pid_tgid >> 32); /* remembers what the handshake's syscalls used */
	return 0;
}

SEC("uprobe")
int coral_http_ssl_read_enter(struct pt_regs *ctx)
{
	return ssl_enter(ctx, false);
}

SEC("uretprobe")
int coral_http_ssl_read_exit(struct pt_regs *ctx)
{
	return ssl_exit(ctx, true);
}

SEC("uprobe")
int coral_http_ssl_read_ex_enter(struct pt_regs *ctx)
{
	return ssl_enter(ctx, true);
}

SEC("uretprobe")
int coral_http_ssl_read_ex_exit(struct pt_regs *ctx)
{
	return ssl_exit(ctx, true);
}

SEC("uprobe")
int coral_http_ssl_write_enter(struct pt_regs *ctx)
{
	return ssl_enter(ctx, false);
}

SEC("uretprobe")
int coral_http_ssl_write_exit(struct pt_regs *ctx)
{
	return ssl_exit(ctx, false);
}

SEC("uprobe")
int coral_http_ssl_write_ex_enter(struct pt_regs *ctx)
{
	return ssl_enter(ctx, true);
}

SEC("uretprobe")
int coral_http_ssl_write_ex_exit(struct pt_regs *ctx)
{
	return ssl_exit(ctx, false);
}

/* ---- Connection lifecycle ---- */

static __always_inline int accepted(struct trace_event_raw_sys_exit *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct conn_key key = { .pid = pid_tgid >> 32, .fd = (__s32)ctx->ret };

	if (ctx->ret < 0 || !traced(key.pid))
		return 0;
	track(&key, true);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int coral_http_accept4_exit(struct trace_event_raw_sys_exit *ctx)
{
	return accepted(ctx);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int coral_http_accept_exit(struct trace_event_raw_sys_exit *ctx)
{
	return accepted(ctx);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int coral_http_connect_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct conn_key key = { .pid = pid_tgid >> 32 };
	struct syscall_args args = {};

	if ((ctx->ret != 0 && ctx->ret != -EINPROGRESS) || !traced(key.pid) ||
	    !args_from_regs(&args, BUF_NONE))
		return 0;
	key.fd = args.fd;
	track(&key, true);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_close")
int coral_http_close_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct conn_key key = { .pid = pid_tgid >> 32, .fd = (__s32)ctx->args[0] };

	if (traced(key.pid))
		untrack(&key);
	return 0;
}

static long forget_conn(struct bpf_map *map, struct conn_key *key, struct http_conn *conn,
			__u32 *pid)
{
	if (key->pid == *pid && bpf_map_delete_elem(map, key) == 0)
		count(HTTP_COUNTER_CONNS_CLOSED);
	return 0;
}

/* PID filter bits, set and cleared atomically (user space changes other bits meanwhile). */
static __always_inline void set_traced(__u32 pid, bool on)
{
	__u64 word = pid >> 6;

	asm volatile("" : "+r"(word));
	if (word >= HTTP_PID_WORDS)
		return;
	if (on)
		__sync_fetch_and_or(&http_pid_bits[word], 1ULL << (pid & 63));
	else
		__sync_fetch_and_and(&http_pid_bits[word], ~(1ULL << (pid & 63)));
}

/*
 * The kernel closes an exiting process's files without close(2): free its
 * state here, when its last thread exits (any of them: not always the
 * leader). A thread of a traced process exiting also clears its own bit
 * (set by the fork rule below, which cannot tell threads from processes).
 */
SEC("tracepoint/sched/sched_process_exit")
int coral_http_process_exit(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 pid = pid_tgid >> 32;
	__u32 tid = (__u32)pid_tgid;

	if (tid != pid && traced(tid))
		set_traced(tid, false);
	/* Whichever thread exits last frees the process's state. */
	if (!traced(pid) || BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	bpf_for_each_map_elem(&http_conns, forget_conn, &pid, 0);
	set_traced(pid, false);
	return 0;
}

/*
 * Children of a traced process are traced too: servers that fork a process
 * per connection (PostgreSQL, Apache prefork) serve from the child. User
 * space names a child after its traced ancestor.
 */
SEC("tracepoint/sched/sched_process_fork")
int coral_http_process_fork(struct trace_event_raw_sched_process_fork *ctx)
{
	__u32 parent = bpf_get_current_pid_tgid() >> 32;
	__u32 child = ctx->child_pid;
	struct stream_event event = {};

	if (!traced(parent) || traced(child))
		return 0;
	set_traced(child, true);
	count(HTTP_COUNTER_FORKS_FOLLOWED);
	/*
	 * Tell user space who the child belongs to before any of its chunks
	 * (records of one ring are read in the order they were reserved): a
	 * short-lived child may be gone from /proc by the time they are read.
	 */
	event.kind = STREAM_FORK;
	event.pid = child;
	event.conn_id = parent;
	if (bpf_ringbuf_output(&stream_events, &event, sizeof(event), 0))
		count(HTTP_COUNTER_STREAM_DROPPED);
	else
		count(HTTP_COUNTER_STREAM_EVENTS);
	return 0;
}
