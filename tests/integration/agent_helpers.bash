# Helpers for agent.bats: run kvrun-agent on the host as root, in a throwaway
# mount+pid+uts namespace, over a Unix socket, against the busybox fixture.

ROOT_DIR=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
BUILD=${BUILD:-$ROOT_DIR/build}
AGENT_BIN=$BUILD/kvrun-agent
CLIENT_BIN=$BUILD/tests/agent-client
ROOTFS=$BUILD/fixtures/busybox-rootfs

# Why the suite cannot run here, or nothing.
agent_skip_reason() {
	[ "$(id -u)" -eq 0 ] || { echo "needs root"; return; }
	command -v unshare >/dev/null || { echo "needs unshare(1)"; return; }
	command -v jq >/dev/null || { echo "needs jq"; return; }
	[ -x "$AGENT_BIN" ] && [ -x "$CLIENT_BIN" ] || { echo "not built (make)"; return; }
	[ -x "$ROOTFS/bin/busybox" ] || { echo "no busybox fixture (make fixtures)"; return; }
	unshare -m -p -f true 2>/dev/null || { echo "unshare -m -p not permitted here"; return; }
}

# Start the agent; sets AGENT_DIR, AGENT_ADDR, AGENT_PID (in files, as bats
# runs setup_file and the tests in different shells).
start_agent() {
	AGENT_DIR=$(mktemp -d "${BATS_FILE_TMPDIR:-/tmp}/agent.XXXXXX")
	local cgparent="kvrun-test-$$"
	echo "$cgparent" > "$AGENT_DIR/cgparent"
	unshare -m -p -f -u --mount-proc --propagation private \
		"$AGENT_BIN" --listen "unix:$AGENT_DIR/agent.sock" --state-dir "$AGENT_DIR/state" \
		--cgroup-parent "$cgparent" "$@" >"$AGENT_DIR/agent.log" 2>&1 &
	echo $! > "$AGENT_DIR/unshare.pid"
	for _ in $(seq 100); do
		[ -S "$AGENT_DIR/agent.sock_1025" ] && break
		sleep 0.05
	done
	[ -S "$AGENT_DIR/agent.sock_1025" ]
}

agent_addr() { echo "unix:$AGENT_DIR/agent.sock"; }

stop_agent() {
	[ -n "${AGENT_DIR:-}" ] || return 0
	"$CLIENT_BIN" "$(agent_addr)" call poweroff >/dev/null 2>&1 || true
	local pid
	pid=$(cat "$AGENT_DIR/unshare.pid" 2>/dev/null || true)
	if [ -n "$pid" ]; then
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		# Still there: end what we started (unshare, and with it the namespace).
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null || true
	fi
	local cg
	cg=$(cat "$AGENT_DIR/cgparent" 2>/dev/null || true)
	[ -n "$cg" ] && rmdir "$(cg2_root)/$cg" 2>/dev/null || true
	rm -rf "$AGENT_DIR"
}

# cg2_root: where the agent finds cgroup v2 on this host, as its
# cgroup_detect_root() does: /sys/fs/cgroup on a unified host (Debian 12's
# default), /sys/fs/cgroup/unified on a hybrid one.
cg2_root() {
	if [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then
		echo /sys/fs/cgroup
	else
		echo /sys/fs/cgroup/unified
	fi
}

# agent_client ARGS...: the driver; on failure bats shows output and status.
agent_client() {
	"$CLIENT_BIN" "$(agent_addr)" "$@"
}

# A config for the busybox rootfs; jq filters given as arguments adjust it.
#   make_config CONFIG_PATH '.process.args=["true"]' ...
make_config() {
	local out=$1
	shift
	local base
	base=$(cat <<JSON
{
  "ociVersion": "1.0.2",
  "process": {
    "args": ["/bin/true"],
    "env": ["PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/root"],
    "cwd": "/",
    "user": {"uid": 0, "gid": 0}
  },
  "root": {"path": "$ROOTFS"},
  "hostname": "kvtest",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]}
  ],
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}]
  }
}
JSON
)
	local f
	for f in "$@"; do
		base=$(jq "$f" <<<"$base") || return 1
	done
	echo "$base" > "$out"
}

# args_json "sh" "-c" "..." -> a JSON array
args_json() {
	printf '%s\n' "$@" | jq -Rcn '[inputs]'
}

# run_ctr ID ARGS... : run a container with these args, default config.
run_ctr() {
	local id=$1
	shift
	make_config "$BATS_TEST_TMPDIR/$id.json" ".process.args=$(args_json "$@")"
	agent_client run "$id" "$BATS_TEST_TMPDIR/$id.json"
}
