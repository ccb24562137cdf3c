#!/usr/bin/env bash
# Helpers for kvrun's bats tests, in the shape of runc's tests/integration/
# helpers.bash: a bundle per test, a `kvrun` wrapper that runs the binary
# against a private --root and shows command, status and output when a test
# fails, and a teardown that fails the test if it left container state.

bats_require_minimum_version 1.5.0

INTEGRATION_ROOT=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
REPO_ROOT=$(readlink -f "$INTEGRATION_ROOT/../..")
KVRUN="${KVRUN:-$REPO_ROOT/build/kvrun}"
# Built by `make fixtures` (runtime/module.mk) from the host's busybox.
BUSYBOX_ROOTFS="${BUSYBOX_ROOTFS:-$REPO_ROOT/build/fixtures/busybox-bundle-rootfs}"
# The guest kernel and image kvrun finds next to the binary (build/guest/).
GUEST_DIR="$REPO_ROOT/build/guest"
RECVTTY="$REPO_ROOT/build/tests/recvtty"

# kvrun [-N|!] args...: `run` the binary with the test's --root. A leading
# -N or ! is handed to bats' run (expected status). The command, its status
# and its output go to stderr, which bats prints only when the test fails.
function kvrun() {
	local expect=()
	if [[ "${1:-}" =~ ^(-[0-9]+|!)$ ]]; then
		expect=("$1")
		shift
	fi
	local rc=0
	run "${expect[@]}" __kvrun "$@" || rc=$?
	echo "kvrun $* (status=$status):" >&2
	printf '%s\n' "$output" >&2
	return "$rc"
}

# The binary itself, without bats' run (for pipes and $(...)).
function __kvrun() {
	"$KVRUN" --root "$KVRUN_ROOT" "$@"
}

# The reason the first of the requirements does not hold, or nothing.
# (bats 1.8 cannot skip in setup_file: a file-wide setup asks this first.)
function requirement_missing() {
	local req
	for req in "$@"; do
		case "$req" in
		root) [ "$(id -u)" -eq 0 ] || { echo "test requires root"; return; } ;;
		runc) command -v runc >/dev/null || { echo "test requires runc (to compare with)"; return; } ;;
		jq) command -v jq >/dev/null || { echo "test requires jq"; return; } ;;
		umoci) command -v umoci >/dev/null || { echo "test requires umoci (make deps)"; return; } ;;
		busybox)
			[ -e "$BUSYBOX_ROOTFS/bin/busybox" ] ||
				{ echo "busybox fixture not built: run make fixtures (needs busybox-static)"; return; }
			;;
		kvm)
			[ -e /dev/kvm ] || { echo "no /dev/kvm on this host"; return; }
			[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "/dev/kvm not accessible to $(id -un)"; return; }
			[ -f "$GUEST_DIR/vmlinux" ] && [ -f "$GUEST_DIR/rootfs.erofs" ] ||
				{ echo "guest kernel or image not built (make; the image needs root)"; return; }
			;;
		recvtty) [ -x "$RECVTTY" ] || { echo "recvtty not built: run make fixtures"; return; } ;;
		*) echo "unknown requirement $req"; return ;;
		esac
	done
}

# Skip, with the reason, unless a requirement holds.
function requires() {
	local why
	why=$(requirement_missing "$@")
	case "$why" in
	"") ;;
	"unknown requirement "*) fail "requires: $why" ;;
	*) skip "$why" ;;
	esac
}

function fail() {
	echo "$@" >&2
	return 1
}

# A fresh --root and bundle (busybox rootfs, kvrun's default spec with no
# terminal) for each test. Without the fixture the rootfs is an empty
# directory, which is enough for tests that run nothing in it; tests that
# do say `requires busybox`.
function setup_bundle() {
	[ -x "$KVRUN" ] || skip "kvrun not built: run make"
	KVRUN_ROOT=$(mktemp -d "$BATS_RUN_TMPDIR/root.XXXXXX")
	BUNDLE=$(mktemp -d "$BATS_RUN_TMPDIR/bundle.XXXXXX")
	export KVRUN_ROOT BUNDLE
	if [ -e "$BUSYBOX_ROOTFS/bin/busybox" ]; then
		cp -a "$BUSYBOX_ROOTFS" "$BUNDLE/rootfs"
	else
		mkdir "$BUNDLE/rootfs"
	fi
	"$KVRUN" spec --bundle "$BUNDLE"
	update_config '.process.terminal = false'
	cd "$BUNDLE" || return 1
}

# Fails the test if any container state or host process (kvrun-shim,
# kvrun-vmm) was left behind, then cleans up whatever was.
function teardown_bundle() {
	cd "$INTEGRATION_ROOT" || true
	local left="" procs="" id
	if [ -n "${KVRUN_ROOT:-}" ] && [ -d "$KVRUN_ROOT" ]; then
		left=$(find "$KVRUN_ROOT" -mindepth 1 -maxdepth 1 -printf '%f ')
		for id in $left; do
			"$KVRUN" --root "$KVRUN_ROOT" delete --force "$id" >/dev/null 2>&1 || true
		done
		procs=$(kvrun_procs_wait)
		kvrun_procs_kill
	fi
	# (if, not &&: a teardown_file whose setup_file skipped has neither, and
	# a false test as its last command would fail it)
	if [ -n "${BUNDLE:-}" ]; then rm -rf "$BUNDLE"; fi
	if [ -n "${KVRUN_ROOT:-}" ]; then rm -rf "$KVRUN_ROOT"; fi
	unset BUNDLE KVRUN_ROOT
	if [ -n "$left" ]; then
		fail "state left behind under --root: $left"
	fi
	if [ -n "$procs" ]; then
		fail "processes left behind: $procs"
	fi
}

# The kvrun-shim and kvrun-vmm processes of this test's --root (only those:
# other tests and other people's VMs may be running on the machine). Each
# names its state directory on its command line.
function kvrun_procs() {
	[ -n "${KVRUN_ROOT:-}" ] || return 0
	pgrep -af 'kvrun-(shim|vmm) ' | grep -F -- "$KVRUN_ROOT/" || true
}

# The same, after giving exiting processes up to 5 s to go.
function kvrun_procs_wait() {
	local i p
	for i in $(seq 50); do
		p=$(kvrun_procs)
		[ -z "$p" ] && return 0
		sleep 0.1
	done
	echo "$p"
}

# Kill (by pid) what kvrun_procs lists.
function kvrun_procs_kill() {
	local pid
	for pid in $(kvrun_procs | awk '{ print $1 }'); do
		kill -9 "$pid" 2>/dev/null || true
	done
}

# kvrun_detached [-N|!] args...: like kvrun, for commands that leave a
# container process running (create, run -d, exec -d): its stdio must not be
# bats' output pipe, or `run` would wait for the container. The container's
# stdout is appended to $BUNDLE/ctr.out; kvrun's messages (and the
# container's stderr) land in $output.
function kvrun_detached() {
	local expect=()
	if [[ "${1:-}" =~ ^(-[0-9]+|!)$ ]]; then
		expect=("$1")
		shift
	fi
	local rc=0
	# One file per caller: tests may run several in parallel (`&`).
	run "${expect[@]}" bash -c 'f=$1; shift; "$@" </dev/null >>"$BUNDLE/ctr.out" 2>"$f"; r=$?
		cat "$f"; rm -f "$f"; exit $r' _ "$BUNDLE/kvrun.$BASHPID.err" \
		"$KVRUN" --root "$KVRUN_ROOT" "$@" || rc=$?
	echo "kvrun $* (status=$status):" >&2
	printf '%s\n' "$output" >&2
	return "$rc"
}

# wait_for SECONDS command...: retry until it succeeds (guest work is slow
# on PVM hosts, so deadlines are generous).
function wait_for() {
	local n=$(($1 * 5))
	shift
	local wf # (not i: bats' `run -N` sets a global i, and "$@" may call run)
	for ((wf = 0; wf < n; wf++)); do
		"$@" && return 0
		sleep 0.2
	done
	"$@"
}

# status_is ID STATUS: the container's live status (for wait_for).
function status_is() {
	[ "$(__kvrun state "$1" 2>/dev/null | jq -r .status)" = "$2" ]
}

# update_config 'jq filter' [bundle]: edit config.json in place.
function update_config() {
	local cfg="${2:-$BUNDLE}/config.json"
	jq "$1" "$cfg" >"$cfg.new" && mv "$cfg.new" "$cfg"
}

# /proc/<pid>/stat starttime (field 22), which kvrun records against pid reuse.
# The pid recorded in a "pid start" file of container $1's state directory ($2).
function recorded_pid() {
	awk '{ print $1; exit }' "$KVRUN_ROOT/$1/$2"
}

function pid_start_time() {
	sed 's/.*) //' "/proc/$1/stat" | awk '{ print $20 }'
}

# fake_container id status pid: the state a backend would leave, written by
# hand, so the CLI's state machine can be tested before the VM exists.
function fake_container() {
	local id="$1" status="$2" pid="$3" start=0
	[ "$pid" -gt 0 ] && start=$(pid_start_time "$pid")
	mkdir -p "$KVRUN_ROOT/$id"
	cp "$BUNDLE/config.json" "$KVRUN_ROOT/$id/config.json"
	printf '{"kvrunState":1,"id":"%s","ociVersion":"1.1.0","bundle":"%s","rootfs":"%s/rootfs","status":"%s","pid":%d,"pidStartTime":%s,"created":"2024-01-02T03:04:05.123456789Z","sandboxId":"%s","annotations":{}}' \
		"$id" "$BUNDLE" "$BUNDLE" "$status" "$pid" "$start" "$id" >"$KVRUN_ROOT/$id/state.json"
}
