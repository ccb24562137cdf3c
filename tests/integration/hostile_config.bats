#!/usr/bin/env bats
# A corpus of hostile or broken configs (issue 16): each is refused by
# `kvrun create` before a VM boots, with a message naming the field, and
# leaves nothing: no state under --root, no shim or VMM. What the guest
# agent would refuse is refused on the host by the agent's own code
# (agent_spec_check). None of it needs KVM: a create that got as far as a VM
# would fail differently here (no /dev/kvm) and boot one where there is KVM,
# so the message itself shows where the refusal came from.

load helpers

function setup() {
	requires jq
	setup_bundle
	cp "$BUNDLE/config.json" "$BUNDLE/good.json"
}

function teardown() {
	teardown_bundle
}

# refused JQ_FILTER WANT...: the config made by the filter is refused with
# each WANT in the message, before a VM (nothing under --root, no process).
function refused() {
	local filter=$1 want
	shift
	jq "$filter" "$BUNDLE/good.json" >"$BUNDLE/config.json"
	kvrun -1 create c1
	for want in "$@"; do
		[[ "$output" == *"$want"* ]] || fail "not in the message: $want"
	done
	[[ "$output" != *"VM stopped"* && "$output" != *"/dev/kvm"* ]] || fail "a VM was started"
	[ -z "$(ls -A "$KVRUN_ROOT")" ] || fail "state left: $(ls -A "$KVRUN_ROOT")"
	[ -z "$(kvrun_procs_wait)" ]
}

@test "hostile config: paths that climb out, relative paths, bad names" {
	refused '.mounts += [{"destination": "/a/../../etc", "type": "tmpfs", "source": "tmpfs"}]' \
		'mounts[' '].destination: must be an absolute path without ..'
	refused '.mounts += [{"destination": "relative", "type": "tmpfs", "source": "tmpfs"}]' \
		'].destination: must be an absolute path'
	refused '.mounts += [{"destination": "/x", "type": "bind", "source": "/nonexistent-kvrun-src", "options": ["rbind"]}]' \
		'].source: /nonexistent-kvrun-src: No such file or directory'
	refused '.process.cwd = "relative"' 'process.cwd: must be an absolute path'
	refused '.hooks = {"prestart": [{"path": "relative/hook"}]}' \
		'hooks.prestart[0].path: must be an absolute path'
	refused '.linux.maskedPaths = ["relative"]' 'linux.maskedPaths[0]: must be an absolute path'
	refused '.linux.sysctl = {"kernel.bogus/../x": "1"}' 'linux.sysctl: invalid key'
	refused '.process.args = []' 'process.args: must be a non-empty array'
}

@test "hostile config: unknown kinds and values out of range" {
	refused '.linux.namespaces += [{"type": "bogus"}]' 'linux.namespaces[' 'unknown namespace "bogus"'
	refused '.linux.namespaces |= map(select(.type != "mount"))' \
		'linux.namespaces: a mount namespace is required'
	refused '.process.user.uid = 4294967296' 'process.user.uid: out of range'
	# A read-only root gets its mount targets made on the host: not for a refused config.
	refused '.root.readonly = true | .mounts += [{"destination": "/kvrun-target", "type": "tmpfs", "source": "tmpfs"}]
		| .linux.namespaces |= map(select(.type != "mount"))' \
		'linux.namespaces: a mount namespace is required'
	[ ! -e "$BUNDLE/rootfs/kvrun-target" ]
	refused '.process.rlimits = [{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}]' \
		'process.rlimits[0].type: unknown rlimit'
	refused '.linux.seccomp = {"defaultAction": "SCMP_ACT_BOGUS"}' \
		'linux.seccomp.defaultAction: unknown action'
}

@test "hostile config: VM sizes no VM can have, named by their field or annotation" {
	refused '.linux.resources.memory.limit = 1125899906842624' \
		'linux.resources.memory.limit: 1125899906842624 bytes' 'more than a VM can have'
	refused '.linux.resources.memory.limit = 4611686018427387904' \
		'linux.resources.memory.limit: ' 'more than a VM can have'
	refused '.annotations["io.kvrun.vm.cpus"] = "100000"' 'io.kvrun.vm.cpus=100000: want 1..'
	refused '.annotations["io.kvrun.vm.memory"] = "1P"' 'io.kvrun.vm.memory=1P: want a size'
}

@test "hostile config: what the guest agent would refuse is refused on the host: 10,000 mounts, 1.1 MB of env" {
	refused '.mounts += [range(10000) | {"destination": "/m\(.)", "type": "tmpfs", "source": "tmpfs"}]' \
		'mounts: must be an array of at most 1024 mounts'
	head -c 1100000 /dev/zero | tr '\0' x >"$BUNDLE/big"
	jq --rawfile v "$BUNDLE/big" '.process.env += ["BIG=" + $v]' "$BUNDLE/good.json" >"$BUNDLE/big.json"
	mv "$BUNDLE/big.json" "$BUNDLE/good.json"
	refused '.' "process.env: the container's spec is" 'the guest agent takes at most'
}

@test "hostile config: broken JSON and invalid UTF-8 are named by byte, line and column" {
	# jq cannot write broken JSON: the file itself is the config.
	printf '{"ociVersion": "1.0.2",\n "process": }' >"$BUNDLE/config.json"
	kvrun -1 create c1
	[[ "$output" == *"config.json: invalid JSON at byte 37 (line 2, column 14)"* ]]
	[ -z "$(ls -A "$KVRUN_ROOT")" ]
	printf '{"ociVersion": "1.0.2", "hostname": "a\xff\xfe"}' >"$BUNDLE/config.json"
	kvrun -1 create c1
	[[ "$output" == *"config.json: invalid JSON at byte "*"invalid bytes in UTF8 string"* ]]
	[ -z "$(ls -A "$KVRUN_ROOT")" ]
	[ -z "$(kvrun_procs_wait)" ]
}
