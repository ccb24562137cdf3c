/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The container's network, carried into its VM (Kata's "tcfilter" model).
 * The shim lives in the container's network namespace: once the client and
 * its hooks have configured it (Docker's interfaces appear in its prestart
 * hook), kvrun asks the shim to wire it (shim.c, before the commit):
 *
 *  - the namespace's Ethernet interface (a veth, macvlan, ...) is read
 *    with its MAC, MTU, IPv4 addresses and routes (rtnetlink dumps);
 *  - a tap (IFF_VNET_HDR, so offloads pass through) is made beside it and
 *    handed to the VMM's NIC (net-attach: the link comes up in the guest);
 *  - tc ingress filters redirect every frame both ways (u32 match-all,
 *    mirred egress redirect, as `tc filter add dev X parent ffff: protocol
 *    all u32 match u32 0 0 action mirred egress redirect dev Y`), so the
 *    namespace's own stack never sees the container's traffic;
 *  - the agent gives the guest's NIC the interface's name, MAC, MTU,
 *    addresses and routes (op "net").
 *
 * One interface is carried (the VM has one NIC); more are logged and left
 * out. IPv6 addresses and routes are not carried yet. A namespace with
 * loopback only (`--network none`) needs nothing. The tap goes with the
 * VMM; the ingress qdisc on the interface is removed when the shim exits
 * (shim_net_release).
 *
 * Netlink through libmnl (Debian's libmnl0): the dumps, the tap's link, tc.
 */
#include "shim/internal.h"
#include "vmm/vmm.h"

#include <net/if.h> /* before the linux/ headers */
#include <sched.h>
#include <net/if_arp.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_ether.h>
#include <linux/if_tun.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#define NET_MAX_ADDRS  32
#define NET_MAX_ROUTES 64
#define NET_TAP_NAME   "kvtap%d" /* the kernel numbers it */
#define NET_TC_PRIO    1
/* In the sandbox directory: the interface whose ingress qdisc is ours,
 * for kvrun delete when the shim could not remove it (SIGKILL). */
#define NET_RECORD "net-if"

struct net_addr {
	struct in_addr a;
	unsigned len;
};

struct net_route {
	struct in_addr dst, gw, src;
	unsigned len;
	bool has_gw, has_src;
};

struct net_scan {
	int index; /* the interface carried, 0 when none */
	char name[IFNAMSIZ];
	uint8_t mac[ETH_ALEN];
	unsigned mtu;
	unsigned others; /* Ethernet interfaces left out */
	struct net_addr addrs[NET_MAX_ADDRS];
	size_t naddrs;
	struct net_route routes[NET_MAX_ROUTES];
	size_t nroutes;
};

struct nl {
	struct mnl_socket *sock;
	unsigned seq, portid;
	char buf[32768]; /* MNL_SOCKET_BUFFER_SIZE is at least 8192 */
};

static int nl_open(struct nl *nl, struct kv_err **err)
{
	nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl->sock)
		return kv_err_make(err, errno, "netlink socket");
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		int e = errno;
		mnl_socket_close(nl->sock);
		nl->sock = NULL;
		return kv_err_make(err, e, "netlink bind");
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (unsigned)time(NULL);
	return 0;
}

static void nl_close(struct nl *nl)
{
	if (nl->sock)
		mnl_socket_close(nl->sock);
	nl->sock = NULL;
}

static struct nlmsghdr *nl_msg(struct nl *nl, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *h = mnl_nlmsg_put_header(nl->buf);
	h->nlmsg_type = type;
	h->nlmsg_flags = NLM_F_REQUEST | flags;
	h->nlmsg_seq = ++nl->seq;
	return h;
}

/* Send h and read the answers through cb until the dump's end or the ack. */
static int nl_talk(struct nl *nl, struct nlmsghdr *h, mnl_cb_t cb, void *data, const char *what,
		   struct kv_err **err)
{
	if (mnl_socket_sendto(nl->sock, h, h->nlmsg_len) < 0)
		return kv_err_make(err, errno, "%s: netlink send", what);
	unsigned seq = h->nlmsg_seq;
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl->sock, nl->buf, sizeof(nl->buf));
		if (n < 0)
			return kv_err_make(err, errno, "%s: netlink receive", what);
		int r = mnl_cb_run(nl->buf, (size_t)n, seq, nl->portid, cb, data);
		if (r == MNL_CB_ERROR)
			return kv_err_make(err, errno, "%s", what);
		if (r == MNL_CB_STOP)
			return 0;
	}
}

/* A change with an ack; EEXIST is fine when `exist_ok`. */
static int nl_do(struct nl *nl, struct nlmsghdr *h, bool exist_ok, const char *what,
		 struct kv_err **err)
{
	h->nlmsg_flags |= NLM_F_ACK;
	if (nl_talk(nl, h, NULL, NULL, what, err) == 0)
		return 0;
	if (exist_ok && *err && (*err)->errnum == EEXIST) {
		kv_err_free(*err);
		*err = NULL;
		return 0;
	}
	return -1;
}

/* ------------------------------------------------------------ the scan */

struct attrs {
	const struct nlattr *tb[64];
	unsigned max;
};

static int attr_cb(const struct nlattr *a, void *data)
{
	struct attrs *t = data;
	unsigned type = mnl_attr_get_type(a);
	if (type <= t->max && type < KV_ARRAY_SIZE(t->tb))
		t->tb[type] = a;
	return MNL_CB_OK;
}

static int link_cb(const struct nlmsghdr *h, void *data)
{
	struct net_scan *s = data;
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(h);
	struct attrs t = {.max = IFLA_MAX};
	if (ifi->ifi_type != ARPHRD_ETHER || (ifi->ifi_flags & IFF_LOOPBACK) ||
	    mnl_attr_parse(h, sizeof(*ifi), attr_cb, &t) < 0)
		return MNL_CB_OK;
	const char *name = t.tb[IFLA_IFNAME] ? mnl_attr_get_str(t.tb[IFLA_IFNAME]) : "";
	const struct nlattr *mac = t.tb[IFLA_ADDRESS];
	if (strncmp(name, "kvtap", 5) == 0 || !mac || mnl_attr_get_payload_len(mac) != ETH_ALEN)
		return MNL_CB_OK; /* ours, or not something to carry */
	if (s->index) {
		s->others++;
		return MNL_CB_OK;
	}
	s->index = ifi->ifi_index;
	snprintf(s->name, sizeof(s->name), "%s", name);
	memcpy(s->mac, mnl_attr_get_payload(mac), ETH_ALEN);
	s->mtu = t.tb[IFLA_MTU] ? mnl_attr_get_u32(t.tb[IFLA_MTU]) : 1500;
	return MNL_CB_OK;
}

static int addr_cb(const struct nlmsghdr *h, void *data)
{
	struct net_scan *s = data;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(h);
	struct attrs t = {.max = IFA_MAX};
	if (ifa->ifa_family != AF_INET || (int)ifa->ifa_index != s->index ||
	    s->naddrs == NET_MAX_ADDRS || mnl_attr_parse(h, sizeof(*ifa), attr_cb, &t) < 0)
		return MNL_CB_OK;
	const struct nlattr *a = t.tb[IFA_LOCAL] ? t.tb[IFA_LOCAL] : t.tb[IFA_ADDRESS];
	if (!a || mnl_attr_get_payload_len(a) != 4)
		return MNL_CB_OK;
	struct net_addr *o = &s->addrs[s->naddrs++];
	memcpy(&o->a, mnl_attr_get_payload(a), 4);
	o->len = ifa->ifa_prefixlen;
	return MNL_CB_OK;
}

static bool attr_in4(const struct nlattr *a, struct in_addr *out)
{
	if (!a || mnl_attr_get_payload_len(a) != 4)
		return false;
	memcpy(out, mnl_attr_get_payload(a), 4);
	return true;
}

/* The main table's unicast routes through the interface; not the kernel's
 * own (the guest makes those as the addresses go on). */
static int route_cb(const struct nlmsghdr *h, void *data)
{
	struct net_scan *s = data;
	const struct rtmsg *rt = mnl_nlmsg_get_payload(h);
	struct attrs t = {.max = RTA_MAX};
	if (rt->rtm_family != AF_INET || rt->rtm_type != RTN_UNICAST ||
	    rt->rtm_protocol == RTPROT_KERNEL || s->nroutes == NET_MAX_ROUTES ||
	    mnl_attr_parse(h, sizeof(*rt), attr_cb, &t) < 0)
		return MNL_CB_OK;
	unsigned table = t.tb[RTA_TABLE] ? mnl_attr_get_u32(t.tb[RTA_TABLE]) : rt->rtm_table;
	if (table != RT_TABLE_MAIN || !t.tb[RTA_OIF] ||
	    (int)mnl_attr_get_u32(t.tb[RTA_OIF]) != s->index)
		return MNL_CB_OK;
	struct net_route *o = &s->routes[s->nroutes++];
	memset(o, 0, sizeof(*o));
	o->len = rt->rtm_dst_len;
	attr_in4(t.tb[RTA_DST], &o->dst);
	o->has_gw = attr_in4(t.tb[RTA_GATEWAY], &o->gw);
	o->has_src = attr_in4(t.tb[RTA_PREFSRC], &o->src);
	return MNL_CB_OK;
}

static int net_dump(struct nl *nl, uint16_t type, size_t hdr, mnl_cb_t cb, struct net_scan *s,
		    const char *what, struct kv_err **err)
{
	struct nlmsghdr *h = nl_msg(nl, type, NLM_F_DUMP);
	struct rtgenmsg *g = mnl_nlmsg_put_extra_header(h, hdr);
	g->rtgen_family = type == RTM_GETLINK ? AF_UNSPEC : AF_INET;
	return nl_talk(nl, h, cb, s, what, err);
}

static int net_scan(struct nl *nl, struct net_scan *s, struct kv_err **err)
{
	memset(s, 0, sizeof(*s));
	if (net_dump(nl, RTM_GETLINK, sizeof(struct ifinfomsg), link_cb, s, "list links", err) < 0)
		return -1;
	if (!s->index)
		return 0;
	if (net_dump(nl, RTM_GETADDR, sizeof(struct ifaddrmsg), addr_cb, s, "list addresses", err) <
		0 ||
	    net_dump(nl, RTM_GETROUTE, sizeof(struct rtmsg), route_cb, s, "list routes", err) < 0)
		return -1;
	if (s->others)
		kv_warn("network: %u more interface(s) beside %s left out (the VM has one NIC)",
			s->others, s->name);
	return 0;
}

/* ------------------------------------------------------ the tap and tc */

static int tap_open(struct shim *s, char name[IFNAMSIZ], struct kv_err **err)
{
	int fd = s->tun_fd >= 0 ? steal_fd(s->tun_fd) : open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return kv_err_make(err, errno, "open /dev/net/tun");
	struct ifreq ifr = {0};
	memcpy(ifr.ifr_name, NET_TAP_NAME, sizeof(NET_TAP_NAME));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		close(fd);
		return kv_err_make(err, e, "TUNSETIFF (a tap for the VM)");
	}
	memcpy(name, ifr.ifr_name, IFNAMSIZ);
	name[IFNAMSIZ - 1] = 0;
	return fd;
}

static int link_up(struct nl *nl, int index, unsigned mtu, struct kv_err **err)
{
	struct nlmsghdr *h = nl_msg(nl, RTM_NEWLINK, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(h, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = index;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	mnl_attr_put_u32(h, IFLA_MTU, mtu);
	return nl_do(nl, h, false, "tap up", err);
}

static struct tcmsg *tc_msg(struct nl *nl, uint16_t type, uint16_t flags, int index,
			    struct nlmsghdr **h)
{
	*h = nl_msg(nl, type, flags);
	struct tcmsg *t = mnl_nlmsg_put_extra_header(*h, sizeof(*t));
	t->tcm_family = AF_UNSPEC;
	t->tcm_ifindex = index;
	return t;
}

/* Add (or remove) the ingress qdisc; *created: it was not there before. */
static int tc_ingress(struct nl *nl, int index, bool add, bool *created, struct kv_err **err)
{
	struct nlmsghdr *h;
	struct tcmsg *t = tc_msg(nl, add ? RTM_NEWQDISC : RTM_DELQDISC,
				 add ? NLM_F_CREATE | NLM_F_EXCL : 0, index, &h);
	t->tcm_handle = TC_H_MAKE(TC_H_INGRESS, 0);
	t->tcm_parent = TC_H_INGRESS;
	mnl_attr_put_strz(h, TCA_KIND, "ingress");
	if (created)
		*created = false;
	if (!add)
		return nl_do(nl, h, false, "tc: remove ingress qdisc", err);
	h->nlmsg_flags |= NLM_F_ACK;
	if (nl_talk(nl, h, NULL, NULL, "tc: ingress qdisc", err) == 0) {
		if (created)
			*created = true;
		return 0;
	}
	if ((*err)->errnum != EEXIST)
		return -1;
	kv_err_free(*err);
	*err = NULL;
	return 0;
}

/* Every frame arriving on `from` leaves through `to`, stolen from `from`'s stack. */
static int tc_redirect(struct nl *nl, int from, int to, struct kv_err **err)
{
	struct nlmsghdr *h;
	struct tcmsg *t = tc_msg(nl, RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, from, &h);
	t->tcm_parent = TC_H_MAKE(TC_H_INGRESS, 0);
	t->tcm_info = TC_H_MAKE(NET_TC_PRIO << 16, htons(ETH_P_ALL));
	mnl_attr_put_strz(h, TCA_KIND, "u32");
	struct nlattr *opts = mnl_attr_nest_start(h, TCA_OPTIONS);
	/* One key matching anything: a selector and its key, as u32 wants them. */
	uint8_t sel[sizeof(struct tc_u32_sel) + sizeof(struct tc_u32_key)] = {0};
	((struct tc_u32_sel *)sel)->flags = TC_U32_TERMINAL;
	((struct tc_u32_sel *)sel)->nkeys = 1;
	mnl_attr_put(h, TCA_U32_SEL, sizeof(sel), sel);
	struct nlattr *acts = mnl_attr_nest_start(h, TCA_U32_ACT);
	struct nlattr *act = mnl_attr_nest_start(h, 1);
	mnl_attr_put_strz(h, TCA_ACT_KIND, "mirred");
	struct nlattr *aopts = mnl_attr_nest_start(h, TCA_ACT_OPTIONS);
	struct tc_mirred m = {.action = TC_ACT_STOLEN, .eaction = TCA_EGRESS_REDIR, .ifindex = to};
	mnl_attr_put(h, TCA_MIRRED_PARMS, sizeof(m), &m);
	mnl_attr_nest_end(h, aopts);
	mnl_attr_nest_end(h, act);
	mnl_attr_nest_end(h, acts);
	mnl_attr_nest_end(h, opts);
	return nl_do(nl, h, false, "tc: mirred redirect", err);
}

/* ------------------------------------------------------ the guest's side */

static void put_in4(struct kv_json *j, const char *key, struct in_addr a, int len)
{
	char ip[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN + 16];
	inet_ntop(AF_INET, &a, ip, sizeof(ip));
	if (len >= 0)
		snprintf(b, sizeof(b), "%s/%d", ip, len);
	else
		snprintf(b, sizeof(b), "%s", ip);
	if (key)
		kv_json_kstr(j, key, b);
	else
		kv_json_str(j, b);
}

static void net_iface_json(const struct net_scan *s, struct kv_json *j)
{
	char mac[18];
	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", s->mac[0], s->mac[1], s->mac[2],
		 s->mac[3], s->mac[4], s->mac[5]);
	kv_json_key(j, "ifaces");
	kv_json_array_open(j);
	kv_json_map_open(j);
	kv_json_kstr(j, "name", s->name);
	kv_json_kstr(j, "mac", mac);
	kv_json_kint(j, "mtu", s->mtu);
	kv_json_key(j, "addrs");
	kv_json_array_open(j);
	for (size_t i = 0; i < s->naddrs; i++)
		put_in4(j, NULL, s->addrs[i].a, (int)s->addrs[i].len);
	kv_json_array_close(j);
	kv_json_map_close(j);
	kv_json_array_close(j);
}

/* Routes without a gateway first: a gateway must be reachable when its route goes on. */
static void net_routes_json(const struct net_scan *s, struct kv_json *j)
{
	kv_json_key(j, "routes");
	kv_json_array_open(j);
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < s->nroutes; i++) {
			const struct net_route *r = &s->routes[i];
			if (r->has_gw != (pass == 1))
				continue;
			kv_json_map_open(j);
			put_in4(j, "dst", r->dst, (int)r->len);
			if (r->has_gw)
				put_in4(j, "gw", r->gw, -1);
			if (r->has_src)
				put_in4(j, "src", r->src, -1);
			kv_json_kstr(j, "dev", s->name);
			kv_json_map_close(j);
		}
	kv_json_array_close(j);
}

static int net_guest(struct shim *s, const struct net_scan *sc, struct kv_err **err)
{
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	net_iface_json(sc, j);
	net_routes_json(sc, j);
	kv_json_map_close(j);
	cleanup_free char *params = kv_json_finish_dup(j, NULL, err);
	if (!params)
		return -1;
	cleanup_msg struct kv_msg resp = {0};
	if (kv_agent_client_call(s->agent, KV_OP_NET, params, &resp, err) < 0)
		return kv_err_wrap(err, "network: configure the guest's %s", sc->name);
	return 0;
}

/* ------------------------------------------------------------ wiring */

/* The ingress qdisc on sc's interface is ours: remove it at exit, or
 * kvrun delete does (NET_RECORD) if we cannot. */
static void net_record(struct shim *s, const struct net_scan *sc)
{
	s->net_index = sc->index;
	cleanup_free char *p = kv_asprintf("%s/%s", s->req.sandbox_dir, NET_RECORD);
	cleanup_err struct kv_err *e = NULL;
	if (kv_write_file_volatile(p, sc->name, strlen(sc->name), 0644, &e) < 0)
		kv_warn("network: %s", e->msg);
}

static int net_plumb(struct shim *s, struct nl *nl, const struct net_scan *sc, struct kv_err **err)
{
	char tap[IFNAMSIZ];
	int fd = tap_open(s, tap, err);
	if (fd < 0)
		return -1;
	int tindex = (int)if_nametoindex(tap);
	cleanup_free char *api = kv_asprintf("%s/%s", s->req.sandbox_dir, SHIM_API_NAME);
	int r = -1;
	if (!tindex) {
		kv_err_make(err, errno, "if_nametoindex %s", tap);
		goto out;
	}
	bool ours = false;
	if (link_up(nl, tindex, sc->mtu, err) < 0 ||
	    tc_ingress(nl, sc->index, true, &ours, err) < 0)
		goto out;
	if (ours)
		net_record(s, sc);
	if (tc_ingress(nl, tindex, true, NULL, err) < 0 ||
	    tc_redirect(nl, sc->index, tindex, err) < 0 ||
	    tc_redirect(nl, tindex, sc->index, err) < 0 || vmm_api_net_attach(api, fd, err) < 0)
		goto out;
	r = 0;
out:
	close(fd); /* the VMM holds it now; the tap goes when the VMM does */
	if (r < 0)
		kv_err_wrap(err, "network: carry %s into the VM", sc->name);
	return r;
}

int shim_net_wire(struct shim *s, struct kv_err **err)
{
	struct nl nl = {0};
	struct net_scan sc;
	if (nl_open(&nl, err) < 0)
		return -1;
	int r = net_scan(&nl, &sc, err);
	if (r == 0 && sc.index) {
		kv_debug("network: %s (%u addresses, %zu routes) into the VM", sc.name,
			 (unsigned)sc.naddrs, sc.nroutes);
		r = net_plumb(s, &nl, &sc, err);
		if (r == 0)
			r = net_guest(s, &sc, err);
	}
	nl_close(&nl);
	return r;
}

static void ingress_remove(int index)
{
	struct nl nl = {0};
	struct kv_err *e = NULL;
	if (nl_open(&nl, &e) == 0)
		(void)tc_ingress(&nl, index, false, NULL, &e);
	if (e) {
		kv_debug("network: %s", e->msg);
		kv_err_free(e);
	}
	nl_close(&nl);
}

void shim_net_release(struct shim *s)
{
	if (!s->net_index)
		return;
	ingress_remove(s->net_index);
	s->net_index = 0;
	cleanup_free char *p = kv_asprintf("%s/%s", s->req.sandbox_dir, NET_RECORD);
	unlink(p);
}

void shim_net_unwire(const char *sandbox_dir, const char *netns)
{
	cleanup_free char *p = kv_asprintf("%s/%s", sandbox_dir, NET_RECORD);
	cleanup_free char *name = NULL;
	if (kv_read_file(p, IFNAMSIZ, &name, NULL, NULL) < 0)
		return; /* nothing of ours, or the shim removed it */
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int ns = netns ? open(netns, O_RDONLY | O_CLOEXEC) : -1;
	if (self >= 0 && ns >= 0 && setns(ns, CLONE_NEWNET) == 0) {
		unsigned index = if_nametoindex(name);
		if (index)
			ingress_remove((int)index);
		if (setns(self, CLONE_NEWNET) < 0)
			kv_warn("network: back to our namespace: %s", strerror(errno));
	}
	if (ns >= 0)
		close(ns);
	if (self >= 0)
		close(self);
	unlink(p);
}
