/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "net" op: make the guest's one NIC look like the container's host-side
 * interface (name, MAC, MTU, IPv4 addresses, routes), as runc would show it.
 *
 * The whole request is parsed and validated into a struct net_config before
 * anything changes. It is then applied over rtnetlink with a small writer of
 * our own: the agent is linked statically and Debian's libmnl-dev ships no
 * static library; a handful of fixed-size requests needs no more than this.
 * Applying the same request again succeeds (the host may retry).
 */
#include "agent/internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <net/if_arp.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <yajl/yajl_tree.h>

/* Strings from the host are quoted in errors, at most this long. */
#define NET_QUOTE_MAX 64
/* How long one rtnetlink request may wait for its ack. */
#define NL_ACK_TIMEOUT_S 5

/* ------------------------------------------------------------- parsing */

static bool parse_ipv4(const char *s, struct in_addr *out)
{
	return strlen(s) <= 15 && inet_pton(AF_INET, s, out) == 1;
}

/* "A.B.C.D/N", N in 0..32. */
static bool parse_prefix(const char *s, struct in_addr *addr, uint8_t *plen)
{
	const char *slash = strchr(s, '/');
	char ip[16];
	if (!slash || slash - s > 15 || !slash[1] || strlen(slash + 1) > 2 ||
	    strspn(slash + 1, "0123456789") != strlen(slash + 1))
		return false;
	memcpy(ip, s, slash - s);
	ip[slash - s] = '\0';
	int n = atoi(slash + 1);
	if (n > 32 || inet_pton(AF_INET, ip, addr) != 1)
		return false;
	*plen = n;
	return true;
}

static uint32_t prefix_mask(uint8_t plen)
{
	return plen ? htonl(~0u << (32 - plen)) : 0;
}

/* "xx:xx:xx:xx:xx:xx", hex digits of either case. */
static bool parse_mac(const char *s, uint8_t mac[NET_MAC_LEN])
{
	if (strlen(s) != 3 * NET_MAC_LEN - 1)
		return false;
	for (int i = 0; i < NET_MAC_LEN; i++) {
		const char *p = s + 3 * i;
		if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]) ||
		    (i < NET_MAC_LEN - 1 && p[2] != ':'))
			return false;
		char hex[3] = {p[0], p[1], '\0'};
		mac[i] = strtoul(hex, NULL, 16);
	}
	return true;
}

/* The kernel's dev_valid_name(), plus '%' (a name template) and "lo". */
static const char *ifname_problem(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= IFNAMSIZ)
		return "must be 1..15 characters";
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || strcmp(s, "lo") == 0)
		return "a reserved name";
	for (; *s; s++)
		if (*s == '/' || *s == ':' || *s == '%' || isspace((unsigned char)*s) ||
		    !isprint((unsigned char)*s))
			return "has '/', ':', '%', whitespace or a non-printable character";
	return NULL;
}

/* A string field: absent when !required returns 0 and leaves *out NULL. */
static int get_str(yajl_val obj, const char *key, const char *where, bool required,
		   const char **out, struct kv_err **err)
{
	yajl_val v = kv_jget(obj, key);
	*out = NULL;
	if (!v)
		return required ? kv_err_plain(err, EINVAL, "%s.%s: missing", where, key) : 0;
	if (!YAJL_IS_STRING(v))
		return kv_err_plain(err, EINVAL, "%s.%s: not a string", where, key);
	*out = v->u.string;
	return 0;
}

/* An array field; absent is an empty array. */
static int get_array(yajl_val obj, const char *key, const char *where, size_t max, yajl_val *out,
		     size_t *len, struct kv_err **err)
{
	yajl_val v = kv_jget(obj, key);
	*out = v;
	*len = 0;
	if (!v)
		return 0;
	if (!YAJL_IS_ARRAY(v))
		return kv_err_plain(err, EINVAL, "%s%s%s: not an array", where, *where ? "." : "",
				    key);
	*len = v->u.array.len;
	if (*len > max)
		return kv_err_plain(err, EINVAL, "%s%s%s: %zu entries, at most %zu", where,
				    *where ? "." : "", key, *len, max);
	return 0;
}

static int prefix_error(const char *where, const char *s, struct kv_err **err)
{
	return kv_err_plain(
	    err, EINVAL, "%s: \"%.*s\": not an IPv4 prefix%s", where, NET_QUOTE_MAX, s,
	    strchr(s, ':') ? " (IPv6 is not carried yet: the host leaves it out)" : "");
}

static int parse_addrs(yajl_val iface, struct net_config *cfg, struct kv_err **err)
{
	yajl_val arr;
	if (get_array(iface, "addrs", "ifaces[0]", NET_ADDRS_MAX, &arr, &cfg->n_addrs, err) < 0)
		return -1;
	for (size_t i = 0; i < cfg->n_addrs; i++) {
		yajl_val v = arr->u.array.values[i];
		struct net_addr *a = &cfg->addrs[i];
		if (!YAJL_IS_STRING(v))
			return kv_err_plain(err, EINVAL, "ifaces[0].addrs[%zu]: not a string", i);
		if (!parse_prefix(v->u.string, &a->addr, &a->plen)) {
			char where[48];
			snprintf(where, sizeof(where), "ifaces[0].addrs[%zu]", i);
			return prefix_error(where, v->u.string, err);
		}
	}
	return 0;
}

static int parse_iface(yajl_val iface, struct net_config *cfg, struct kv_err **err)
{
	const char *name, *mac, *why;
	long long mtu;
	if (!YAJL_IS_OBJECT(iface))
		return kv_err_plain(err, EINVAL, "ifaces[0]: not an object");
	if (get_str(iface, "name", "ifaces[0]", true, &name, err) < 0 ||
	    get_str(iface, "mac", "ifaces[0]", true, &mac, err) < 0)
		return -1;
	if ((why = ifname_problem(name)))
		return kv_err_plain(err, EINVAL, "ifaces[0].name: \"%.*s\": %s", NET_QUOTE_MAX,
				    name, why);
	strcpy(cfg->name, name);
	if (!parse_mac(mac, cfg->mac))
		return kv_err_plain(err, EINVAL, "ifaces[0].mac: \"%.*s\": not a MAC address",
				    NET_QUOTE_MAX, mac);
	/* The kernel refuses these (is_valid_ether_addr); say so before any change. */
	if ((cfg->mac[0] & 1) || !memcmp(cfg->mac, (uint8_t[NET_MAC_LEN]){0}, NET_MAC_LEN))
		return kv_err_plain(err, EINVAL, "ifaces[0].mac: \"%s\": multicast or zero", mac);
	if (!kv_jget(iface, "mtu"))
		return kv_err_plain(err, EINVAL, "ifaces[0].mtu: missing");
	if (!kv_jint(iface, "mtu", &mtu) || mtu < 68 || mtu > 65535)
		return kv_err_plain(err, EINVAL, "ifaces[0].mtu: must be an integer in 68..65535");
	cfg->mtu = mtu;
	return parse_addrs(iface, cfg, err);
}

/* An IPv4 address field of a route (gw, src); absent leaves *has false. */
static int parse_route_ip(yajl_val v, const char *key, const char *where, struct in_addr *out,
			  bool *has, struct kv_err **err)
{
	const char *s;
	if (get_str(v, key, where, false, &s, err) < 0)
		return -1;
	*has = s != NULL;
	if (s && !parse_ipv4(s, out))
		return kv_err_plain(err, EINVAL, "%s.%s: \"%.*s\": not an IPv4 address", where, key,
				    NET_QUOTE_MAX, s);
	return 0;
}

static int parse_route(yajl_val v, size_t i, const char *ifname, struct net_route *r,
		       struct kv_err **err)
{
	char where[32], dw[48];
	const char *dst, *dev;
	snprintf(where, sizeof(where), "routes[%zu]", i);
	if (!YAJL_IS_OBJECT(v))
		return kv_err_plain(err, EINVAL, "%s: not an object", where);
	if (get_str(v, "dst", where, true, &dst, err) < 0 ||
	    get_str(v, "dev", where, true, &dev, err) < 0)
		return -1;
	snprintf(dw, sizeof(dw), "%s.dst", where);
	if (!parse_prefix(dst, &r->dst, &r->dst_len))
		return prefix_error(dw, dst, err);
	if (r->dst.s_addr & ~prefix_mask(r->dst_len))
		return kv_err_plain(err, EINVAL, "%s: \"%s\": host bits set", dw, dst);
	if (strcmp(dev, ifname) != 0)
		return kv_err_plain(err, EINVAL, "%s.dev: \"%.*s\": not the interface \"%s\"",
				    where, NET_QUOTE_MAX, dev, ifname);
	if (parse_route_ip(v, "gw", where, &r->gw, &r->has_gw, err) < 0 ||
	    parse_route_ip(v, "src", where, &r->src, &r->has_src, err) < 0)
		return -1;
	return 0;
}

int net_config_parse(yajl_val params, struct net_config *cfg, struct kv_err **err)
{
	yajl_val ifaces, routes;
	size_t n;
	memset(cfg, 0, sizeof(*cfg));
	/* Read the count before refusing it: the error names it. */
	if (get_array(params, "ifaces", "", SIZE_MAX, &ifaces, &n, err) < 0)
		return -1;
	if (n != 1)
		return kv_err_plain(err, EINVAL,
				    "ifaces: %zu interfaces given, the VM has exactly 1 NIC", n);
	if (parse_iface(ifaces->u.array.values[0], cfg, err) < 0)
		return -1;
	if (get_array(params, "routes", "", NET_ROUTES_MAX, &routes, &cfg->n_routes, err) < 0)
		return -1;
	for (size_t i = 0; i < cfg->n_routes; i++)
		if (parse_route(routes->u.array.values[i], i, cfg->name, &cfg->routes[i], err) < 0)
			return -1;
	return 0;
}

/* ------------------------------------------------- rtnetlink messages */

void nl_msg_init(struct nl_msg *m, uint16_t type, uint16_t flags, const void *body, size_t len)
{
	memset(m, 0, sizeof(*m));
	m->hdr.nlmsg_len = NLMSG_LENGTH(len);
	m->hdr.nlmsg_type = type;
	m->hdr.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	memcpy(NLMSG_DATA(&m->hdr), body, len);
}

void nl_msg_put(struct nl_msg *m, uint16_t type, const void *data, size_t len)
{
	size_t at = NLMSG_ALIGN(m->hdr.nlmsg_len);
	if (m->overflow || at + RTA_SPACE(len) > sizeof(m->buf)) {
		m->overflow = true;
		return;
	}
	struct rtattr *rta = (struct rtattr *)(m->buf + at);
	rta->rta_type = type;
	rta->rta_len = RTA_LENGTH(len);
	memcpy(RTA_DATA(rta), data, len);
	m->hdr.nlmsg_len = at + RTA_SPACE(len);
}

void net_msg_link(struct nl_msg *m, int ifindex, unsigned change, unsigned flags)
{
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC,
				.ifi_index = ifindex,
				.ifi_change = change,
				.ifi_flags = flags};
	nl_msg_init(m, RTM_SETLINK, 0, &ifi, sizeof(ifi));
}

/* As `ip addr add A/N brd + dev D`: a broadcast address only up to /30. */
void net_msg_addr(struct nl_msg *m, int ifindex, const struct net_addr *a)
{
	struct ifaddrmsg ifa = {.ifa_family = AF_INET,
				.ifa_prefixlen = a->plen,
				.ifa_scope = RT_SCOPE_UNIVERSE,
				.ifa_index = ifindex};
	/* REPLACE: an address already there is refreshed, not EEXIST. */
	nl_msg_init(m, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, &ifa, sizeof(ifa));
	nl_msg_put(m, IFA_LOCAL, &a->addr, sizeof(a->addr));
	nl_msg_put(m, IFA_ADDRESS, &a->addr, sizeof(a->addr));
	if (a->plen <= 30) {
		struct in_addr brd = {.s_addr = a->addr.s_addr | ~prefix_mask(a->plen)};
		nl_msg_put(m, IFA_BROADCAST, &brd, sizeof(brd));
	}
}

/*
 * As `ip route add`: main table, proto boot; via a gateway scope universe,
 * else scope link. EXCL: a route to the same destination already there (the
 * kernel's own prefix route of an address, or ours on a retry) is EEXIST,
 * which the caller takes as done, so it stays as it is.
 */
void net_msg_route(struct nl_msg *m, int ifindex, const struct net_route *r)
{
	struct rtmsg rtm = {.rtm_family = AF_INET,
			    .rtm_dst_len = r->dst_len,
			    .rtm_table = RT_TABLE_MAIN,
			    .rtm_protocol = RTPROT_BOOT,
			    .rtm_scope = r->has_gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK,
			    .rtm_type = RTN_UNICAST};
	uint32_t oif = ifindex;
	nl_msg_init(m, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rtm, sizeof(rtm));
	if (r->dst_len)
		nl_msg_put(m, RTA_DST, &r->dst, sizeof(r->dst));
	if (r->has_gw)
		nl_msg_put(m, RTA_GATEWAY, &r->gw, sizeof(r->gw));
	if (r->has_src)
		nl_msg_put(m, RTA_PREFSRC, &r->src, sizeof(r->src));
	nl_msg_put(m, RTA_OIF, &oif, sizeof(oif));
}

/* ----------------------------------------------- rtnetlink transport */

struct nl_sock {
	int fd;
	uint32_t seq;
};

static void nl_sock_closep(struct nl_sock *s)
{
	kv_closep(&s->fd);
}

static int nl_sock_open(struct nl_sock *s, struct kv_err **err)
{
	int one = 1;
	struct timeval tv = {.tv_sec = NL_ACK_TIMEOUT_S};
	s->seq = 0;
	s->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (s->fd < 0)
		return kv_err_make(err, errno, "socket(NETLINK_ROUTE)");
	/* The kernel's reason in text (extack), without our request echoed;
	 * both optional: an older kernel just says less. */
	(void)setsockopt(s->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	(void)setsockopt(s->fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	if (setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return kv_err_make(err, errno, "netlink: SO_RCVTIMEO");
	return 0;
}

/* The extended ack's message, NUL-terminated inside the ack, or NULL. */
static const char *nl_extack_msg(const struct nlmsghdr *nh)
{
	const struct nlmsgerr *e = NLMSG_DATA(nh);
	size_t off = NLMSG_HDRLEN + sizeof(*e);
	if (!(nh->nlmsg_flags & NLM_F_ACK_TLVS))
		return NULL;
	if (!(nh->nlmsg_flags & NLM_F_CAPPED)) {
		if (e->msg.nlmsg_len < NLMSG_HDRLEN)
			return NULL;
		off += e->msg.nlmsg_len - NLMSG_HDRLEN;
	}
	off = NLMSG_ALIGN(off);
	while (off + sizeof(struct nlattr) <= nh->nlmsg_len) {
		const struct nlattr *a = (const void *)((const char *)nh + off);
		if (a->nla_len < NLA_HDRLEN || off + a->nla_len > nh->nlmsg_len)
			return NULL;
		const char *s = (const char *)a + NLA_HDRLEN;
		size_t n = a->nla_len - NLA_HDRLEN;
		if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG && n && !s[n - 1])
			return s;
		off += NLA_ALIGN(a->nla_len);
	}
	return NULL;
}

/* The answer to our request: 0, or the error named after `what`. */
static int nl_ack(const struct nlmsghdr *nh, const char *what, struct kv_err **err)
{
	const struct nlmsgerr *e = NLMSG_DATA(nh);
	if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
		return kv_err_plain(err, EPROTO, "%s: a short ack", what);
	if (e->error == 0)
		return 0;
	int errnum = -e->error;
	const char *why = nl_extack_msg(nh);
	return kv_err_plain(err, errnum, "%s: %s%s%s%s", what, strerror(errnum), why ? " (" : "",
			    why ? why : "", why ? ")" : "");
}

/* Send one request and read its ack; `what` names it in errors. */
static int nl_talk(struct nl_sock *s, struct nl_msg *m, const char *what, struct kv_err **err)
{
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	union {
		struct nlmsghdr hdr;
		char buf[8192];
	} in;
	if (m->overflow)
		return kv_err_plain(err, EMSGSIZE, "%s: request over %d bytes", what, NL_MSG_MAX);
	m->hdr.nlmsg_seq = ++s->seq;
	if (sendto(s->fd, m->buf, m->hdr.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) <
	    0)
		return kv_err_make(err, errno, "%s: send", what);
	for (;;) {
		ssize_t n = recv(s->fd, in.buf, sizeof(in.buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kv_err_make(err, errno == EAGAIN ? ETIMEDOUT : errno, "%s: ack",
					   what);
		size_t left = n;
		for (struct nlmsghdr *nh = &in.hdr; NLMSG_OK(nh, left); nh = NLMSG_NEXT(nh, left))
			if (nh->nlmsg_type == NLMSG_ERROR && nh->nlmsg_seq == s->seq)
				return nl_ack(nh, what, err);
	}
}

/* ------------------------------------------------------------ applying */

/*
 * The guest NIC: the Ethernet interface with the lowest ifindex. Loopback
 * and any tunnel devices the kernel made (sit0, tunl0) are not Ethernet.
 */
static int net_find_nic(struct kv_err **err)
{
	cleanup_close int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return kv_err_make(err, errno, "net: socket");
	struct if_nameindex *all = if_nameindex();
	if (!all)
		return kv_err_make(err, errno, "net: if_nameindex");
	int best = 0;
	for (struct if_nameindex *i = all; i->if_index; i++) {
		struct ifreq ifr = {0};
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", i->if_name);
		if (ioctl(fd, SIOCGIFHWADDR, &ifr) == 0 &&
		    ifr.ifr_hwaddr.sa_family == ARPHRD_ETHER && (!best || (int)i->if_index < best))
			best = i->if_index;
	}
	if_freenameindex(all);
	if (!best)
		return kv_err_plain(err, ENODEV, "net: no Ethernet interface in the guest");
	return best;
}

static int net_link_attr(struct nl_sock *s, int ifindex, uint16_t type, const void *data,
			 size_t len, const char *what, struct kv_err **err)
{
	struct nl_msg m;
	net_msg_link(&m, ifindex, 0, 0);
	nl_msg_put(&m, type, data, len);
	return nl_talk(s, &m, what, err);
}

static int net_link_updown(struct nl_sock *s, int ifindex, bool up, struct kv_err **err)
{
	struct nl_msg m;
	net_msg_link(&m, ifindex, IFF_UP, up ? IFF_UP : 0);
	return nl_talk(s, &m, up ? "RTM_SETLINK up" : "RTM_SETLINK down", err);
}

/* Down; MAC, MTU, name (a rename needs the link down); addresses; up. */
static int net_apply_link(struct nl_sock *s, int ifindex, const struct net_config *cfg,
			  struct kv_err **err)
{
	char cur[IFNAMSIZ];
	if (!if_indextoname(ifindex, cur))
		return kv_err_make(err, errno, "ifaces[0]: interface %d", ifindex);
	if (net_link_updown(s, ifindex, false, err) < 0 ||
	    net_link_attr(s, ifindex, IFLA_ADDRESS, cfg->mac, NET_MAC_LEN, "RTM_SETLINK address",
			  err) < 0 ||
	    net_link_attr(s, ifindex, IFLA_MTU, &cfg->mtu, sizeof(cfg->mtu), "RTM_SETLINK mtu",
			  err) < 0)
		return kv_err_wrap(err, "ifaces[0]");
	if (strcmp(cur, cfg->name) != 0 &&
	    net_link_attr(s, ifindex, IFLA_IFNAME, cfg->name, strlen(cfg->name) + 1,
			  "RTM_SETLINK name", err) < 0)
		return kv_err_wrap(err, "ifaces[0]: rename %s to %s", cur, cfg->name);
	for (size_t i = 0; i < cfg->n_addrs; i++) {
		struct nl_msg m;
		net_msg_addr(&m, ifindex, &cfg->addrs[i]);
		if (nl_talk(s, &m, "RTM_NEWADDR", err) < 0)
			return kv_err_wrap(err, "ifaces[0].addrs[%zu]", i);
	}
	if (net_link_updown(s, ifindex, true, err) < 0)
		return kv_err_wrap(err, "ifaces[0]");
	return 0;
}

/* A route already there (EEXIST, see net_msg_route()) counts as added. */
static int net_add_route(struct nl_sock *s, int ifindex, const struct net_route *r, size_t i,
			 struct kv_err **err)
{
	cleanup_err struct kv_err *e = NULL;
	struct nl_msg m;
	net_msg_route(&m, ifindex, r);
	if (nl_talk(s, &m, "RTM_NEWROUTE", &e) == 0 || e->errnum == EEXIST)
		return 0;
	return kv_err_plain(err, e->errnum, "routes[%zu]: %s", i, e->msg);
}

int net_config_apply(const struct net_config *cfg, struct kv_err **err)
{
	__attribute__((cleanup(nl_sock_closep))) struct nl_sock s = {.fd = -1};
	int ifindex = net_find_nic(err);
	if (ifindex < 0 || nl_sock_open(&s, err) < 0 || net_apply_link(&s, ifindex, cfg, err) < 0)
		return -1;
	for (size_t i = 0; i < cfg->n_routes; i++)
		if (net_add_route(&s, ifindex, &cfg->routes[i], i, err) < 0)
			return -1;
	return pid1_loopback_up(err);
}
