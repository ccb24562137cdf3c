/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to vmm/virtio/vsock*.c: the virtio-vsock device (vsock.c: queues,
 * packets, scheduling) and its connections to host Unix sockets
 * (vsock_conn.c). See vsock.c for the protocol and flow-control notes.
 */
#ifndef KV_VMM_VIRTIO_VSOCK_H
#define KV_VMM_VIRTIO_VSOCK_H

#include "vmm/virtio/virtio_dev.h"

#define VSOCK_HOST_CID	  2
#define VSOCK_QUEUE_RX	  0
#define VSOCK_QUEUE_TX	  1
#define VSOCK_QUEUE_EVENT 2

/* struct virtio_vsock_hdr (spec 5.10.6), little-endian, packed: 44 bytes. */
#define VSOCK_HDR_SIZE	  44
#define VSOCK_TYPE_STREAM 1
enum vsock_op {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};
#define VSOCK_SHUTDOWN_RCV	    1 /* the sender will receive no more */
#define VSOCK_SHUTDOWN_SEND	    2 /* the sender will send no more */
#define VSOCK_SHUTDOWN_BOTH	    3
#define VSOCK_EVENT_TRANSPORT_RESET 0

/* Our receive buffer per connection (guest -> host bytes not yet written to the host socket). */
#define VSOCK_CONN_BUF (256u << 10)
/* Tell the guest about freed space once this much was forwarded since the last report. */
#define VSOCK_CREDIT_THRESHOLD (64u << 10)
/* Largest payload in one packet (Linux VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
#define VSOCK_MAX_PKT	      (64u << 10)
#define VSOCK_MAX_CONNS	      1024
#define VSOCK_RST_QUEUE	      256
#define VSOCK_CONNECT_LINE    32
#define VSOCK_LOCAL_PORT_BASE (1u << 30)
/* Timeouts: host CONNECT line, guest answer to a REQUEST, guest RST after close. */
#define VSOCK_LINE_TIMEOUT_MS	 5000
#define VSOCK_REQUEST_TIMEOUT_MS 20000
#define VSOCK_CLOSE_TIMEOUT_MS	 8000

/* epoll data of the listener and the timer; connections use gen << 32 | slot. */
#define VSOCK_EP_LISTEN UINT64_MAX
#define VSOCK_EP_TIMER	(UINT64_MAX - 1)

struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
};

enum vsock_conn_state {
	CONN_HOST_LINE, /* host connected to uds; reading "CONNECT <port>\n" */
	CONN_REQUEST,	/* host-initiated; REQUEST queued or sent, awaiting the guest */
	CONN_OPEN,	/* established (either direction) */
};

/* Control packets a connection owes the guest (sent before data). */
#define CONN_TX_REQUEST	       1u
#define CONN_TX_RESPONSE       2u
#define CONN_TX_SHUTDOWN       4u
#define CONN_TX_CREDIT_UPDATE  8u
#define CONN_TX_CREDIT_REQUEST 16u

struct vsock_conn {
	uint32_t slot, gen; /* epoll data: gen << 32 | slot */
	int fd;		    /* host Unix socket */
	bool in_epoll;
	uint32_t ep_mask;
	enum vsock_conn_state state;
	uint32_t local_port; /* host side */
	uint32_t peer_port;  /* guest side */
	struct vsock_conn *hnext;
	struct vsock_conn *rx_next;
	bool in_rx_list, hashed;
	bool guest_knows;	 /* the guest has (or had) this connection: a RST must tell it */
	unsigned pending;	 /* CONN_TX_* */
	uint32_t shutdown_flags; /* flags of the pending SHUTDOWN */

	/* host -> guest */
	bool host_readable; /* epoll said readable; read until EAGAIN */
	bool host_eof;	    /* the host socket gave EOF (or hung up) */
	bool host_hup;
	uint32_t peer_buf_alloc, peer_fwd_cnt; /* the guest's receive window */
	uint32_t rx_cnt;		       /* payload bytes sent to the guest */
	bool credit_requested;

	/* guest -> host */
	uint32_t guest_shut; /* VSOCK_SHUTDOWN_* the guest sent */
	uint32_t fwd_cnt;    /* bytes written to the host socket */
	uint32_t last_fwd_cnt_sent;
	uint8_t *buf; /* ring of VSOCK_CONN_BUF bytes, allocated on first use */
	uint32_t buf_head, buf_len;
	bool host_wr_shut;

	char line[VSOCK_CONNECT_LINE];
	unsigned line_len;
	uint64_t deadline_ms; /* 0: none */
};

struct virtio_vsock {
	struct virtio_mmio mmio; /* first: the transport hands us this pointer */
	uint64_t guest_cid;
	char *uds;
	char *dial; /* where "<dial>_<port>" is, if not beside uds (the jail's view); or NULL */
	int listen_fd, epfd, timer_fd;
	bool timer_armed;
	bool bound;	/* uds is ours: unlink it on free */
	bool accepting; /* listener in the epoll set with EPOLLIN */
	struct evloop *loop;
	unsigned timeout_scale_ms; /* env->timeout_ms: tests shorten timeouts; 0 = real ones */

	struct vsock_conn *conns[VSOCK_MAX_CONNS];
	uint32_t gens[VSOCK_MAX_CONNS];
	unsigned nconns;
	struct vsock_conn *hash[256];
	struct vsock_conn *rx_head, *rx_tail;
	struct {
		uint32_t local, peer;
	} rst[VSOCK_RST_QUEUE];
	unsigned rst_head, rst_n;
	bool event_pending;
	uint32_t next_local_port;
	uint8_t config[8];
};

/* vsock_conn.c */
struct vsock_conn *vsock_conn_new(struct virtio_vsock *v, int fd, enum vsock_conn_state st);
struct vsock_conn *vsock_conn_find(struct virtio_vsock *v, uint32_t local, uint32_t peer);
void vsock_conn_hash(struct virtio_vsock *v, struct vsock_conn *c);
/* Tear down; with rst, queue a RST for the guest if it knows the connection. */
void vsock_conn_kill(struct virtio_vsock *v, struct vsock_conn *c, bool rst);
void vsock_conn_kill_all(struct virtio_vsock *v, bool guest_known_only);
void vsock_conn_update(struct virtio_vsock *v, struct vsock_conn *c);
void vsock_conn_host_event(struct virtio_vsock *v, struct vsock_conn *c, uint32_t events);
void vsock_conn_from_guest(struct virtio_vsock *v, struct vsock_conn *c, const struct vsock_hdr *h,
			   const struct vq_chain *chain);
void vsock_conn_guest_request(struct virtio_vsock *v, const struct vsock_hdr *h);
/* Fill `chain` with the next packet for the guest; false if there was none (chain unused). */
bool vsock_conn_rx(struct virtio_vsock *v, struct vsock_conn *c, const struct vq_chain *chain,
		   uint32_t *used);
bool vsock_conn_wants_rx(const struct vsock_conn *c);
uint32_t vsock_conn_peer_credit(const struct vsock_conn *c);
void vsock_conn_timeouts(struct virtio_vsock *v);
void vsock_accept(struct virtio_vsock *v);

/* vsock.c */
void vsock_queue_rst(struct virtio_vsock *v, uint32_t local, uint32_t peer);
void vsock_schedule(struct virtio_vsock *v, struct vsock_conn *c);
void vsock_unschedule(struct virtio_vsock *v, struct vsock_conn *c);
void vsock_set_deadline(struct virtio_vsock *v, struct vsock_conn *c, unsigned ms);
/* Stop accepting host connections (no fds or slots left); retried on each timer tick. */
void vsock_listen_pause(struct virtio_vsock *v);
void vsock_listen_resume(struct virtio_vsock *v);
void vsock_hdr_write(const struct vsock_hdr *h, uint8_t out[VSOCK_HDR_SIZE]);

#endif
