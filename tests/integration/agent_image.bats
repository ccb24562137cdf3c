#!/usr/bin/env bats
# The guest OS image (rootfs-tools/image.mk): a read-only erofs whose
# /sbin/init is the static agent. Booted here as PID 1 of a throwaway
# mount+pid namespace, chrooted into the mounted image: it mounts what a
# guest's init mounts and answers on a socket in a directory bound in.

bats_require_minimum_version 1.5.0
load agent_helpers

IMAGE=$BUILD/guest/rootfs.erofs

setup() {
	reason=$(agent_skip_reason)
	[ -z "$reason" ] || skip "$reason"
	[ -f "$IMAGE" ] || skip "no guest image (make guest-image)"
	command -v mkfs.erofs >/dev/null || skip "no erofs-utils"
	WORK=$(mktemp -d "$BATS_TEST_TMPDIR/img.XXXXXX")
	mkdir -p "$WORK/root" "$WORK/sock"
}

teardown() {
	[ -n "${WORK:-}" ] || return 0
	if [ -f "$WORK/pid" ]; then
		kill -KILL "$(cat "$WORK/pid")" 2>/dev/null || true
		wait "$(cat "$WORK/pid")" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}

@test "guest image: /sbin/init is the static agent" {
	run -0 unshare -m sh -c "mount -o ro,loop '$IMAGE' '$WORK/root' && file -L '$WORK/root/sbin/init' && ls '$WORK/root'"
	[[ "$output" == *"statically linked"* ]]
	for d in proc sys dev run tmp mnt; do [[ "$output" == *"$d"* ]]; done
}

@test "guest image: every file in whole blocks, so the guest maps it with DAX" {
	# erofs maps only EROFS_INODE_FLAT_PLAIN files (layout 0) with DAX; a
	# tail inlined in metadata (layout 2) goes through each guest's cache.
	run -0 dump.erofs --path=/sbin/init "$IMAGE"
	[[ "$output" == *"Layout: 0 "* ]]
	run -0 dump.erofs --path=/etc/passwd "$IMAGE"
	[[ "$output" == *"Layout: 0 "* ]]
}

@test "guest image: the agent boots as PID 1 (init mode), answers, powers off" {
	# In a non-initial pid namespace, reboot(POWER_OFF) ends the namespace's init.
	unshare -m -p -f -n --propagation private sh -c "
		mount -o ro,loop '$IMAGE' '$WORK/root' || exit 99
		mount --bind '$WORK/sock' '$WORK/root/mnt'
		exec chroot '$WORK/root' /sbin/init --init --listen unix:/mnt/agent.sock" \
		>"$WORK/log" 2>&1 &
	echo $! > "$WORK/pid"
	for _ in $(seq 100); do [ -S "$WORK/sock/agent.sock_1025" ] && break; sleep 0.05; done
	if ! [ -S "$WORK/sock/agent.sock_1025" ]; then
		grep -q "exit 99\|loop" "$WORK/log" && skip "cannot loop-mount here: $(cat "$WORK/log")"
		cat "$WORK/log"
		false
	fi
	run -0 "$CLIENT_BIN" "unix:$WORK/sock/agent.sock" call version '{"version":1}'
	[ "$(jq -r .init <<<"$output")" = true ]
	run -0 "$CLIENT_BIN" "unix:$WORK/sock/agent.sock" call ping
	[ "$(jq -r .pid <<<"$output")" = 1 ]
	run -0 "$CLIENT_BIN" "unix:$WORK/sock/agent.sock" call stats
	[ "$(jq -r '.meminfo.MemTotal > 0' <<<"$output")" = true ] # it mounted /proc
	run -0 "$CLIENT_BIN" "unix:$WORK/sock/agent.sock" call poweroff
	for _ in $(seq 100); do kill -0 "$(cat "$WORK/pid")" 2>/dev/null || break; sleep 0.05; done
	run ! kill -0 "$(cat "$WORK/pid")"
	rm -f "$WORK/pid"
}

@test "agent: --poweroff-on-exit ends the agent after the last container, events delivered" {
	start_agent --poweroff-on-exit
	make_config "$WORK/c.json" '.process.args=["sh","-c","exit 4"]'
	agent_client events 1 >"$WORK/ev" &
	evpid=$!
	sleep 0.2
	params=$(jq -c -n --slurpfile s "$WORK/c.json" '{container:"only",spec:$s[0]}')
	run -0 agent_client call create "$params"
	run -0 agent_client call start '{"container":"only"}'
	upid=$(cat "$AGENT_DIR/unshare.pid")
	for _ in $(seq 100); do kill -0 "$upid" 2>/dev/null || break; sleep 0.05; done
	run ! kill -0 "$upid"
	wait "$evpid" || true
	[ "$(jq -r .exit_code "$WORK/ev")" = 4 ]
	stop_agent
}
