#!/usr/bin/env bats
# A container's network namespace carried into its microVM: the test makes
# two namespaces joined by a veth pair (the container's end c0, the test's
# end t0), runs a container in the first with kvrun, and checks what a user
# of runc would: the container sees c0 with its MAC, MTU, address and
# routes, reaches the test's end, and is reached from it. The host's own
# network is compared before and after; nothing of kvrun's is left in the
# container's namespace after delete.

load helpers

function setup() {
	requires root jq kvm busybox
	command -v ip >/dev/null || skip "test requires ip (iproute2)"
	command -v tc >/dev/null || skip "test requires tc (iproute2)"
	command -v curl >/dev/null || skip "test requires curl"
	setup_bundle
	NS_C="kvnet-c-$$" NS_T="kvnet-t-$$"
	host_net >"$BUNDLE/host-net.before"
	ip netns add "$NS_C"
	ip netns add "$NS_T"
	ip -n "$NS_C" link add c0 type veth peer name t0 netns "$NS_T"
	ip -n "$NS_C" link set c0 address 02:42:0a:63:07:02 mtu 1400
	ip -n "$NS_C" addr add 10.99.7.2/24 dev c0
	ip -n "$NS_C" link set c0 up
	ip -n "$NS_C" link set lo up
	ip -n "$NS_C" route add default via 10.99.7.1
	ip -n "$NS_T" addr add 10.99.7.1/24 dev t0
	ip -n "$NS_T" link set t0 mtu 1400 up
	update_config '.linux.namespaces |= map(if .type == "network"
			then .path = "/run/netns/'"$NS_C"'" else . end)
		| .root.readonly = false
		| .process.capabilities.bounding += ["CAP_NET_RAW"]
		| .process.capabilities.effective += ["CAP_NET_RAW"]
		| .process.capabilities.permitted += ["CAP_NET_RAW"]'
}

function teardown() {
	teardown_bundle
	ip netns del "$NS_C" 2>/dev/null || true
	ip netns del "$NS_T" 2>/dev/null || true
}

# The host's links, addresses and routes, as a user would compare them.
function host_net() {
	{
		ip -o link show | sed 's/^[0-9]*: //' | awk '{ print $1 }' | sort
		ip -o addr show | awk '{ print $2, $3, $4 }' | sort
		ip route show table all | sort
	} 2>/dev/null
}

function fetch() {
	ip netns exec "$NS_T" curl -sf -m 5 "http://10.99.7.2:8080/"
}

@test "net: the container has its namespace's interface, reaches the other end and is reached" {
	update_config '.process.args = ["sh", "-c", "ip -o link show; ip -o -4 addr show; ip route;
		ping -c 1 -W 10 10.99.7.1 >/dev/null && echo PING-OK;
		mkdir -p /tmp/www && echo hello-from-the-vm >/tmp/www/index.html;
		exec httpd -f -p 8080 -h /tmp/www"]'
	kvrun_detached -0 run -d n1
	wait_for 60 grep -q PING-OK "$BUNDLE/ctr.out" || { cat "$BUNDLE/ctr.out" >&2; false; }
	cat "$BUNDLE/ctr.out" >&2
	grep -q 'c0: .*mtu 1400' "$BUNDLE/ctr.out"
	grep -q 'link/ether 02:42:0a:63:07:02' "$BUNDLE/ctr.out"
	grep -q 'c0 *inet 10.99.7.2/24' "$BUNDLE/ctr.out"
	grep -q '^default via 10.99.7.1 dev c0' "$BUNDLE/ctr.out"
	# One Ethernet interface: the VM's NIC is c0, by name.
	[ "$(grep -c 'link/ether' "$BUNDLE/ctr.out")" -eq 1 ]
	# The test's end reaches the container's server.
	wait_for 60 fetch
	[ "$(fetch)" = hello-from-the-vm ]
	# The namespace's own stack never saw it: everything went to the VM.
	ip -n "$NS_C" link show | grep -q kvtap
	kvrun -0 kill n1 KILL
	wait_for 30 status_is n1 stopped
	kvrun -0 delete n1
	# Nothing of kvrun's is left in the namespace: no tap, no ingress qdisc.
	wait_for 10 bash -c "! ip -n $NS_C link show | grep -q kvtap"
	[ -z "$(tc -n "$NS_C" qdisc show dev c0 ingress)" ]
	host_net >"$BUNDLE/host-net.after"
	diff -u "$BUNDLE/host-net.before" "$BUNDLE/host-net.after"
}

@test "net: a new network namespace with loopback only: the container sees no address but lo's" {
	update_config '.linux.namespaces |= map(if .type == "network" then del(.path) else . end)
		| .process.args = ["sh", "-c", "ip -o -4 addr show"]'
	kvrun -0 run n2
	[[ "$output" == *"lo "*"inet 127.0.0.1/8"* ]]
	[ "$(grep -c inet <<<"$output")" -eq 1 ]
}
