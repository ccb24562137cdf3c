/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "net" op: request parsing and validation (each error naming its
 * field), the rtnetlink messages it builds (byte for byte), and, as root, a
 * request applied for real to a tap in a network namespace of its own.
 */
#include "agent/internal.h"
#include "tap.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <yajl/yajl_tree.h>

#define GOOD_IFACE "{\"name\": \"eth0\", \"mac\": \"02:42:AC:11:00:02\", \"mtu\": 1450"

/* Parse `json` as the op's params: 0, or minus the error's errno with its
 * message in msg. */
static int parse(const char *json, struct net_config *cfg, char *msg, size_t msg_len)
{
	cleanup_err struct kv_err *err = NULL;
	yajl_val v = yajl_tree_parse(json, NULL, 0);
	if (!v) {
		snprintf(msg, msg_len, "(test JSON does not parse)");
		return -1;
	}
	int r = net_config_parse(v, cfg, &err);
	yajl_tree_free(v);
	snprintf(msg, msg_len, "%s", r < 0 && err ? err->msg : "");
	return r < 0 ? (err ? -err->errnum : -1000) : r;
}

static void test_parse_good(void)
{
	struct net_config cfg;
	char msg[256];
	int r = parse(
	    "{\"ifaces\": [" GOOD_IFACE ", \"addrs\": [\"172.17.0.2/16\", \"10.1.0.5/32\"]}],"
	    " \"routes\": [{\"dst\": \"0.0.0.0/0\", \"gw\": \"172.17.0.1\", \"dev\": \"eth0\"},"
	    " {\"dst\": \"10.2.0.0/16\", \"dev\": \"eth0\", \"src\": \"10.1.0.5\"}],"
	    " \"future\": true}",
	    &cfg, msg, sizeof(msg));
	is_int(r, 0, "a full request parses (unknown keys ignored)");
	if (r < 0)
		diag("  %s", msg);
	is_str(cfg.name, "eth0", "name");
	ok(memcmp(cfg.mac, (uint8_t[]){0x02, 0x42, 0xac, 0x11, 0x00, 0x02}, 6) == 0,
	   "mac, upper-case hex");
	is_int(cfg.mtu, 1450, "mtu");
	is_int(cfg.n_addrs, 2, "two addresses");
	is_int(cfg.addrs[0].addr.s_addr, inet_addr("172.17.0.2"), "addrs[0] address");
	is_int(cfg.addrs[0].plen, 16, "addrs[0] prefix length");
	is_int(cfg.addrs[1].plen, 32, "addrs[1] prefix length");
	is_int(cfg.n_routes, 2, "two routes");
	ok(cfg.routes[0].dst_len == 0 && cfg.routes[0].has_gw && !cfg.routes[0].has_src &&
	       cfg.routes[0].gw.s_addr == inet_addr("172.17.0.1"),
	   "routes[0]: default via 172.17.0.1");
	ok(cfg.routes[1].dst_len == 16 && !cfg.routes[1].has_gw && cfg.routes[1].has_src &&
	       cfg.routes[1].dst.s_addr == inet_addr("10.2.0.0") &&
	       cfg.routes[1].src.s_addr == inet_addr("10.1.0.5"),
	   "routes[1]: 10.2.0.0/16 src 10.1.0.5");
	r = parse("{\"ifaces\": [" GOOD_IFACE "}]}", &cfg, msg, sizeof(msg));
	ok(r == 0 && cfg.n_addrs == 0 && cfg.n_routes == 0, "addrs and routes may be left out");
}

static const struct {
	const char *json, *want;
} bad[] = {
    {"{}", "ifaces: 0 interfaces given, the VM has exactly 1 NIC"},
    {"{\"ifaces\": [" GOOD_IFACE "}, " GOOD_IFACE "}]}",
     "ifaces: 2 interfaces given, the VM has exactly 1 NIC"},
    {"{\"ifaces\": {}}", "ifaces: not an array"},
    {"{\"ifaces\": [7]}", "ifaces[0]: not an object"},
    {"{\"ifaces\": [{\"mac\": \"02:00:00:00:00:01\", \"mtu\": 1500}]}", "ifaces[0].name: missing"},
    {"{\"ifaces\": [{\"name\": 1, \"mac\": \"02:00:00:00:00:01\", \"mtu\": 1500}]}",
     "ifaces[0].name: not a string"},
    {"{\"ifaces\": [{\"name\": \"a/b\", \"mac\": \"02:00:00:00:00:01\", \"mtu\": 1500}]}",
     "ifaces[0].name: \"a/b\": has '/', ':', '%', whitespace or a non-printable character"},
    {"{\"ifaces\": [{\"name\": \"eth 0\", \"mac\": \"02:00:00:00:00:01\", \"mtu\": 1500}]}",
     "ifaces[0].name: \"eth 0\": has '/', ':', '%', whitespace or a non-printable character"},
    {"{\"ifaces\": [{\"name\": \"0123456789abcdef\", \"mac\": \"02:00:00:00:00:01\", \"mtu\": "
     "1500}]}",
     "ifaces[0].name: \"0123456789abcdef\": must be 1..15 characters"},
    {"{\"ifaces\": [{\"name\": \"\", \"mac\": \"02:00:00:00:00:01\", \"mtu\": 1500}]}",
     "ifaces[0].name: \"\": must be 1..15 characters"},
    {"{\"ifaces\": [{\"name\": \"lo\", \"mac\": \"02:00:00:00:00:01\", \"mtu\": 1500}]}",
     "ifaces[0].name: \"lo\": a reserved name"},
    {"{\"ifaces\": [{\"name\": \"eth0\", \"mtu\": 1500}]}", "ifaces[0].mac: missing"},
    {"{\"ifaces\": [{\"name\": \"eth0\", \"mac\": \"02:00:00:00:00\", \"mtu\": 1500}]}",
     "ifaces[0].mac: \"02:00:00:00:00\": not a MAC address"},
    {"{\"ifaces\": [{\"name\": \"eth0\", \"mac\": \"02-00-00-00-00-01\", \"mtu\": 1500}]}",
     "ifaces[0].mac: \"02-00-00-00-00-01\": not a MAC address"},
    {"{\"ifaces\": [{\"name\": \"eth0\", \"mac\": \"0g:00:00:00:00:01\", \"mtu\": 1500}]}",
     "ifaces[0].mac: \"0g:00:00:00:00:01\": not a MAC address"},
    {"{\"ifaces\": [{\"name\": \"eth0\", \"mac\": \"01:00:5e:00:00:01\", \"mtu\": 1500}]}",
     "ifaces[0].mac: \"01:00:5e:00:00:01\": multicast or zero"},
    {"{\"ifaces\": [{\"name\": \"eth0\", \"mac\": \"00:00:00:00:00:00\", \"mtu\": 1500}]}",
     "ifaces[0].mac: \"00:00:00:00:00:00\": multicast or zero"},
    {"{\"ifaces\": [{\"name\": \"eth0\", \"mac\": \"02:00:00:00:00:01\"}]}",
     "ifaces[0].mtu: missing"},
    {"{\"ifaces\": [" GOOD_IFACE "0000}]}", "ifaces[0].mtu: must be an integer in 68..65535"},
    {"{\"ifaces\": [{\"name\": \"eth0\", \"mac\": \"02:00:00:00:00:01\", \"mtu\": 67}]}",
     "ifaces[0].mtu: must be an integer in 68..65535"},
    {"{\"ifaces\": [{\"name\": \"eth0\", \"mac\": \"02:00:00:00:00:01\", \"mtu\": \"1500\"}]}",
     "ifaces[0].mtu: must be an integer in 68..65535"},
    {"{\"ifaces\": [" GOOD_IFACE ", \"addrs\": \"1.2.3.4/8\"}]}", "ifaces[0].addrs: not an array"},
    {"{\"ifaces\": [" GOOD_IFACE ", \"addrs\": [\"1.2.3.4/8\", 5]}]}",
     "ifaces[0].addrs[1]: not a string"},
    {"{\"ifaces\": [" GOOD_IFACE ", \"addrs\": [\"1.2.3.4/8\", \"300.1.2.3/24\"]}]}",
     "ifaces[0].addrs[1]: \"300.1.2.3/24\": not an IPv4 prefix"},
    {"{\"ifaces\": [" GOOD_IFACE ", \"addrs\": [\"1.2.3.4/33\"]}]}",
     "ifaces[0].addrs[0]: \"1.2.3.4/33\": not an IPv4 prefix"},
    {"{\"ifaces\": [" GOOD_IFACE ", \"addrs\": [\"1.2.3.4\"]}]}",
     "ifaces[0].addrs[0]: \"1.2.3.4\": not an IPv4 prefix"},
    {"{\"ifaces\": [" GOOD_IFACE ", \"addrs\": [\"1.2.3.4/-1\"]}]}",
     "ifaces[0].addrs[0]: \"1.2.3.4/-1\": not an IPv4 prefix"},
    {"{\"ifaces\": [" GOOD_IFACE ", \"addrs\": [\"1.2.3/8\"]}]}",
     "ifaces[0].addrs[0]: \"1.2.3/8\": not an IPv4 prefix"},
    {"{\"ifaces\": [" GOOD_IFACE ", \"addrs\": [\"fd00::2/64\"]}]}",
     "ifaces[0].addrs[0]: \"fd00::2/64\": not an IPv4 prefix (IPv6 is not carried yet: the "
     "host leaves it out)"},
    {"{\"ifaces\": [" GOOD_IFACE "}], \"routes\": [{\"dev\": \"eth0\"}]}",
     "routes[0].dst: missing"},
    {"{\"ifaces\": [" GOOD_IFACE "}], \"routes\": [{\"dst\": \"0.0.0.0/0\"}]}",
     "routes[0].dev: missing"},
    {"{\"ifaces\": [" GOOD_IFACE "}], \"routes\": [{\"dst\": \"0.0.0.0/0\", \"dev\": \"eth0\"},"
     " {\"dst\": \"10.0.0.0/8\", \"dev\": \"eth1\"}]}",
     "routes[1].dev: \"eth1\": not the interface \"eth0\""},
    {"{\"ifaces\": [" GOOD_IFACE "}], \"routes\": [{\"dst\": \"10.1.2.3/8\", \"dev\": \"eth0\"}]}",
     "routes[0].dst: \"10.1.2.3/8\": host bits set"},
    {"{\"ifaces\": [" GOOD_IFACE "}], \"routes\": [{\"dst\": \"::/0\", \"dev\": \"eth0\"}]}",
     "routes[0].dst: \"::/0\": not an IPv4 prefix (IPv6 is not carried yet: the host "
     "leaves it out)"},
    {"{\"ifaces\": [" GOOD_IFACE "}], \"routes\": [{\"dst\": \"0.0.0.0/0\", \"dev\": \"eth0\","
     " \"gw\": \"172.17.0.1/16\"}]}",
     "routes[0].gw: \"172.17.0.1/16\": not an IPv4 address"},
    {"{\"ifaces\": [" GOOD_IFACE "}], \"routes\": [{\"dst\": \"0.0.0.0/0\", \"dev\": \"eth0\","
     " \"src\": \"fe80::1\"}]}",
     "routes[0].src: \"fe80::1\": not an IPv4 address"},
    {"{\"ifaces\": [" GOOD_IFACE "}], \"routes\": [\"default\"]}", "routes[0]: not an object"},
};

static void test_parse_bad(void)
{
	for (size_t i = 0; i < KV_ARRAY_SIZE(bad); i++) {
		struct net_config cfg;
		char msg[256];
		int r = parse(bad[i].json, &cfg, msg, sizeof(msg));
		ok(r == -EINVAL, "refused with EINVAL: %s", bad[i].want);
		is_str(msg, bad[i].want, "  ...naming the field");
	}
	/* At most NET_ROUTES_MAX routes, said before any is looked at. */
	char json[4096] = "{\"ifaces\": [" GOOD_IFACE "}], \"routes\": [";
	for (int i = 0; i <= NET_ROUTES_MAX; i++)
		strcat(json, i ? ", {}" : "{}");
	strcat(json, "]}");
	struct net_config cfg;
	char msg[256];
	parse(json, &cfg, msg, sizeof(msg));
	is_str(msg, "routes: 65 entries, at most 64", "too many routes");
}

static void is_bytes(const struct nl_msg *m, const uint8_t *want, size_t len, const char *name)
{
	bool same = !m->overflow && m->hdr.nlmsg_len == len && memcmp(m->buf, want, len) == 0;
	ok(same, "%s", name);
	if (same)
		return;
	char got[3 * NL_MSG_MAX + 1] = "";
	for (size_t i = 0; i < m->hdr.nlmsg_len && i < NL_MSG_MAX; i++)
		sprintf(got + 3 * i, "%02x ", (uint8_t)m->buf[i]);
	diag("  got %u bytes: %s", m->hdr.nlmsg_len, got);
}

/* The byte tables below are laid out one header or attribute per line. */
/* clang-format off */
static const uint8_t want_addr[] = {
	0x30, 0, 0, 0, 0x14, 0, 0x05, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, /* nlmsghdr: RTM_NEWADDR,
						REQUEST|ACK|REPLACE|CREATE, seq 0, pid 0 */
	2, 16, 0, 0, 2, 0, 0, 0,	/* ifaddrmsg: AF_INET, /16, scope universe, if 2 */
	8, 0, 2, 0, 172, 17, 0, 2,	/* IFA_LOCAL */
	8, 0, 1, 0, 172, 17, 0, 2,	/* IFA_ADDRESS */
	8, 0, 4, 0, 172, 17, 255, 255,	/* IFA_BROADCAST */
};
static const uint8_t want_default[] = {
	0x2c, 0, 0, 0, 0x18, 0, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, /* nlmsghdr: RTM_NEWROUTE,
						REQUEST|ACK|EXCL|CREATE */
	2, 0, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0, /* rtmsg: /0, main, boot, universe, unicast */
	8, 0, 5, 0, 172, 17, 0, 1,	/* RTA_GATEWAY */
	8, 0, 4, 0, 2, 0, 0, 0,		/* RTA_OIF */
};
static const uint8_t want_link[] = {
	0x34, 0, 0, 0, 0x18, 0, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, /* nlmsghdr, as above */
	2, 16, 0, 0, 254, 3, 253, 1, 0, 0, 0, 0, /* rtmsg: /16, main, boot, link, unicast */
	8, 0, 1, 0, 10, 2, 0, 0,	/* RTA_DST */
	8, 0, 7, 0, 10, 1, 0, 5,	/* RTA_PREFSRC */
	8, 0, 4, 0, 3, 0, 0, 0,		/* RTA_OIF */
};
static const uint8_t want_up[] = {
	0x20, 0, 0, 0, 0x13, 0, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* RTM_SETLINK, REQUEST|ACK */
	0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, /* ifinfomsg: if 2, flags UP, change UP */
};
/* clang-format on */

static void test_messages(void)
{
	struct nl_msg m;
	struct net_addr a = {.addr.s_addr = inet_addr("172.17.0.2"), .plen = 16};
	net_msg_addr(&m, 2, &a);
	is_bytes(&m, want_addr, sizeof(want_addr), "RTM_NEWADDR 172.17.0.2/16 brd 172.17.255.255");
	a.plen = 32;
	net_msg_addr(&m, 2, &a);
	ok(m.hdr.nlmsg_len == 40 && m.buf[17] == 32, "RTM_NEWADDR /32: no broadcast (as brd +)");

	struct net_route r = {.gw.s_addr = inet_addr("172.17.0.1"), .has_gw = true};
	net_msg_route(&m, 2, &r);
	is_bytes(&m, want_default, sizeof(want_default), "RTM_NEWROUTE default via 172.17.0.1");

	r = (struct net_route){.dst.s_addr = inet_addr("10.2.0.0"),
			       .dst_len = 16,
			       .src.s_addr = inet_addr("10.1.0.5"),
			       .has_src = true};
	net_msg_route(&m, 3, &r);
	is_bytes(&m, want_link, sizeof(want_link), "RTM_NEWROUTE 10.2.0.0/16 scope link src");

	net_msg_link(&m, 2, IFF_UP, IFF_UP);
	is_bytes(&m, want_up, sizeof(want_up), "RTM_SETLINK up");

	/* Bounded: an append that does not fit marks the message, never overruns. */
	char big[100] = {0};
	for (int i = 0; i < 10; i++)
		nl_msg_put(&m, 1, big, sizeof(big));
	ok(m.overflow && m.hdr.nlmsg_len <= NL_MSG_MAX, "an overfull message is marked, in bounds");
}

/* popen(cmd) into buf; false when it cannot run. */
static bool run(const char *cmd, char *buf, size_t len)
{
	FILE *f = popen(cmd, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	return pclose(f) == 0;
}

static int apply_json(const char *json, char *msg, size_t msg_len)
{
	struct net_config cfg;
	cleanup_err struct kv_err *err = NULL;
	int r = parse(json, &cfg, msg, msg_len);
	if (r < 0)
		return r;
	r = net_config_apply(&cfg, &err);
	snprintf(msg, msg_len, "%s", r < 0 && err ? err->msg : "");
	return r < 0 ? (err ? -err->errnum : -1000) : r;
}

static const char real_request[] =
    "{\"ifaces\": [{\"name\": \"eth0\", \"mac\": \"02:42:ac:11:00:02\", \"mtu\": 1450,"
    " \"addrs\": [\"172.17.0.2/16\", \"10.1.0.5/32\"]}],"
    " \"routes\": [{\"dst\": \"172.17.0.0/16\", \"dev\": \"eth0\", \"src\": \"172.17.0.2\"},"
    " {\"dst\": \"10.2.0.0/16\", \"dev\": \"eth0\", \"src\": \"10.1.0.5\"},"
    " {\"dst\": \"0.0.0.0/0\", \"gw\": \"172.17.0.1\", \"dev\": \"eth0\"}]}";

static void check_applied(const char *when)
{
	char out[4096];
	if (!ok(run("ip -o link show eth0", out, sizeof(out)) && strstr(out, "mtu 1450") &&
		    strstr(out, "link/ether 02:42:ac:11:00:02") && strstr(out, ",UP"),
		"%s: eth0 is up with the MAC and MTU", when))
		diag("  %s", out);
	ok(run("ip -o -4 addr show dev eth0", out, sizeof(out)) &&
	       strstr(out, "inet 172.17.0.2/16 brd 172.17.255.255 scope global eth0") &&
	       strstr(out, "inet 10.1.0.5/32 scope global eth0"),
	   "%s: both addresses, broadcast as brd +", when);
	if (!ok(run("ip -4 route show table main", out, sizeof(out)) &&
		    strstr(out, "default via 172.17.0.1 dev eth0") &&
		    strstr(out, "10.2.0.0/16 dev eth0 scope link src 10.1.0.5") &&
		    strstr(out, "172.17.0.0/16 dev eth0 proto kernel scope link src 172.17.0.2"),
		"%s: default via the gateway, the link route, the kernel's prefix route kept",
		when))
		diag("  %s", out);
	ok(run("ip -o link show lo", out, sizeof(out)) && strstr(out, ",UP"), "%s: lo is up", when);
}

/* In a network namespace of our own: a tap (the VM's NIC stands in). */
static void test_apply_real(void)
{
	char msg[512], out[256];
	if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0 || !run("ip -V", out, sizeof(out))) {
		skip("applying for real needs root (a network namespace) and ip(8)");
		return;
	}
	cleanup_close int tun = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI};
	strcpy(ifr.ifr_name, "kvtap0");
	if (tun < 0 || ioctl(tun, TUNSETIFF, &ifr) < 0) {
		skip("applying for real needs /dev/net/tun");
		return;
	}
	is_int(apply_json(real_request, msg, sizeof(msg)), 0, "a request applies to the tap");
	if (*msg)
		diag("  %s", msg);
	check_applied("first apply");
	is_int(apply_json(real_request, msg, sizeof(msg)), 0, "the same request applies again");
	if (*msg)
		diag("  %s", msg);
	check_applied("second apply");

	/* Refused in validation: nothing changes (the MAC stays). */
	int r =
	    apply_json("{\"ifaces\": [{\"name\": \"eth0\", \"mac\": \"02:00:00:00:00:09\", "
		       "\"mtu\": 1500}], \"routes\": [{\"dst\": \"0.0.0.0/0\", \"dev\": \"x\"}]}",
		       msg, sizeof(msg));
	ok(r == -EINVAL && run("ip -o link show eth0", out, sizeof(out)) &&
	       strstr(out, "link/ether 02:42:ac:11:00:02"),
	   "a request refused in validation changes nothing");

	/* The kernel's refusal names the route. */
	r = apply_json(
	    "{\"ifaces\": [{\"name\": \"eth0\", \"mac\": \"02:42:ac:11:00:02\", \"mtu\": "
	    "1450}], \"routes\": [{\"dst\": \"10.9.0.0/16\", \"gw\": \"192.168.99.1\", "
	    "\"dev\": \"eth0\"}]}",
	    msg, sizeof(msg));
	is_int(r, -ENETUNREACH, "a gateway off every link is ENETUNREACH");
	ok(strncmp(msg, "routes[0]: RTM_NEWROUTE: Network is unreachable", 47) == 0,
	   "...naming the route: %s", msg);
}

int main(void)
{
	test_parse_good();
	test_parse_bad();
	test_messages();
	test_apply_real();
	return tap_done();
}
