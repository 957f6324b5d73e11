/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Layouts shared by http.bpf.c and user space. The TypeScript view is
 * src/capture/http_event_layout.ts; http_event_layout_test.ts checks it
 * against the BTF of the compiled object, so change both together.
 */
#ifndef CORAL_HTTP_H
#define CORAL_HTTP_H

/* Bytes of a request kept from its first chunk: request line and the first
 * headers (where traceparent usually sits). */
#define HTTP_REQUEST_BYTES 512
/* Bytes of a response kept from its first chunk: the status line. */
#define HTTP_RESPONSE_BYTES 32

/* Words of the PID filter bitmap (http_pid_bits in .bss): PID_MAX_LIMIT / 64. */
#define HTTP_PID_WORDS (4194304 / 64)

/* Which side of the connection the traced process is on. */
enum http_side {
	HTTP_SIDE_SERVER = 1, /* it read the request and wrote the response */
	HTTP_SIDE_CLIENT = 2, /* it wrote the request and read the response */
};

/* Both ends of a TCP connection, as the traced process sees them. */
struct http_endpoints {
	__u8 local_addr[16];  /* IPv4: first 4 bytes; IPv6: all 16 */
	__u8 remote_addr[16]; /* network byte order */
	__u16 local_port;     /* host byte order */
	__u16 remote_port;    /* host byte order */
	__u16 family;         /* AF_INET (2) or AF_INET6 (10) */
	__u16 pad;
};                            /* 40 bytes */

/*
 * One request/response pair: ring buffer "http_events". Variable size: the
 * record holds only the request_len bytes of request[] that are valid.
 *
 * Times are bpf_ktime_get_ns() (CLOCK_MONOTONIC):
 *   server: start = return of the read that brought the request's first
 *           bytes; end = entry of the write that started the response.
 *   client: start = entry of the write that started the request;
 *           end = return of the read that brought the response's first bytes.
 * (A write that entered before the programs were attached has only its
 * return time.) So the duration is the time to the first byte of the
 * response; a body streamed afterwards is not waited for.
 */
struct http_event {
	__u64 start_ns;
	__u64 end_ns;
	__u64 request_bytes;  /* bytes of the request (all its chunks until the response) */
	__u64 response_bytes; /* bytes of the response's first chunk */
	__u32 pid;            /* tgid of the traced process */
	__s32 fd;             /* the connection's file descriptor in that process */
	struct http_endpoints endpoints;
	__u8 side;            /* enum http_side */
	__u8 response_len;    /* bytes valid in response[] */
	__u16 request_len;    /* bytes valid in request[] */
	__u32 pad;
	__u8 response[HTTP_RESPONSE_BYTES]; /* first bytes of the response */
	__u8 request[HTTP_REQUEST_BYTES];   /* first bytes of the request */
};                            /* 632 bytes at most: a record ends after request_len bytes of request[] */

/*
 * Protocols of a connection, decided by the kernel from the first bytes it
 * sees (see classify_stream in http.bpf.c). HTTP/1 is paired in the kernel
 * (struct http_event); the stream protocols go to user space chunk by chunk
 * (struct stream_event), where src/capture/stream_protocols.ts parses them.
 */
enum l7_protocol {
	L7_UNKNOWN = 0,  /* no data seen yet */
	L7_HTTP1 = 1,
	L7_HTTP2 = 2,    /* h2c, gRPC */
	L7_POSTGRES = 3,
	L7_MYSQL = 4,
	L7_REDIS = 5,
};

/* Bytes of one chunk copied into a stream_event (what a call moved beyond is cut). */
#define STREAM_DATA_BYTES 4096
/* iovecs of a readv/writev/sendmsg/recvmsg copied for a stream chunk. */
#define STREAM_IOVECS 8

enum stream_event_kind {
	STREAM_DATA = 1,  /* bytes one call moved */
	STREAM_CLOSE = 2, /* the connection was closed: no data */
	STREAM_FORK = 3,  /* a traced process forked: pid is the child, conn_id its parent */
};

/*
 * Who sent a chunk's bytes: the client of the connection or its server; on
 * a connection whose side the kernel could not tell (side 0), the traced
 * process itself or its peer, and user space decides.
 */
enum stream_sender {
	STREAM_SENDER_CLIENT = 1,
	STREAM_SENDER_SERVER = 2,
	STREAM_SENDER_SELF = 3,
	STREAM_SENDER_PEER = 4,
};

/*
 * A chunk of a stream-protocol connection: ring buffer "stream_events".
 * Variable size: the header, then `len` bytes of data.
 */
struct stream_event {
	__u64 conn_id;     /* unique per tracked connection (fds are reused) */
	__u64 time_ns;     /* bpf_ktime_get_ns(): write entry, or read return */
	__u32 pid;         /* tgid */
	__s32 fd;
	__u32 size;        /* bytes the call moved (len is at most STREAM_DATA_BYTES) */
	__u16 len;         /* bytes of data that follow */
	__u8 kind;         /* enum stream_event_kind */
	__u8 protocol;     /* enum l7_protocol */
	__u8 side;         /* enum http_side: the traced process's side; 0: unknown */
	__u8 sender;       /* enum stream_sender */
	__u8 tls;          /* 1: plaintext from an SSL_read/SSL_write uprobe */
	__u8 pad[5];
	struct http_endpoints endpoints;
};                         /* 80 bytes, then the data */

/* Read-only settings, set from user space before load (.rodata). */
struct http_config {
	__u32 max_conns; /* max_entries of "http_conns": beyond it counts conn_map_full */
	__u32 pad;
};

/* Indexes into the array map "http_counters" (u64 values). */
enum http_counter {
	HTTP_COUNTER_EVENTS = 0,            /* pairs written to the ring buffer */
	HTTP_COUNTER_DROPPED = 1,           /* ring buffer full: pair dropped */
	HTTP_COUNTER_CONN_MAP_FULL = 2,     /* connection tracked while the map was full (an LRU eviction) */
	HTTP_COUNTER_CONNS_OPENED = 3,      /* connections that got state */
	HTTP_COUNTER_CONNS_CLOSED = 4,      /* connections whose state was freed (close or process exit) */
	HTTP_COUNTER_UNANSWERED = 5,        /* request replaced or closed before any response */
	HTTP_COUNTER_UNPAIRED_RESPONSE = 6, /* response with no request seen (e.g. connection older than the capture) */
	HTTP_COUNTER_UNPARSABLE = 7,        /* started like a response ("HTTP/1.") but no 3-digit status */
	HTTP_COUNTER_NOT_INET = 8,          /* HTTP-looking bytes on a file, pipe or non-TCP socket */
	HTTP_COUNTER_STREAM_EVENTS = 9,     /* stream chunks written to "stream_events" */
	HTTP_COUNTER_STREAM_DROPPED = 10,   /* stream_events full: chunk dropped */
	HTTP_COUNTER_STREAM_TRUNCATED = 11, /* chunks that moved more than was copied */
	HTTP_COUNTER_FORKS_FOLLOWED = 12,   /* children of traced processes traced too */
	HTTP_COUNTER_TLS_NO_SOCKET = 13,    /* SSL_read/SSL_write whose socket was never seen: plaintext skipped */
	HTTP_COUNTER_MAX = 14,
};

#endif /* CORAL_HTTP_H */
