#!/usr/bin/env bats
# VM templates (runtime/template.h): `kvrun template create|list|rm`, and
# containers whose VMs are clones of a template. One cold boot makes the
# template (setup_file); the clones then start in a fraction of a second,
# each with its own root filesystem and its own identity: randomness,
# boot_id, hostname.

load helpers

TEMPLATE_ROOT=""

setup_file() {
	[ -e /dev/kvm ] && [ -x "$KVRUN" ] || return 0
	export KVRUN_TEMPLATE_DIR="$BATS_FILE_TMPDIR/templates"
	local start end
	start=$(date +%s.%N)
	"$KVRUN" template create > "$BATS_FILE_TMPDIR/create.log" 2>&1 || true
	end=$(date +%s.%N)
	echo "$start $end" > "$BATS_FILE_TMPDIR/create.times"
}

function setup() {
	requires jq kvm busybox
	export KVRUN_TEMPLATE_DIR="$BATS_FILE_TMPDIR/templates"
	TEMPLATE_ID=$(awk '{ print $1; exit }' "$BATS_FILE_TMPDIR/create.log" 2>/dev/null)
	[ -n "$TEMPLATE_ID" ] && [ -d "$KVRUN_TEMPLATE_DIR/$TEMPLATE_ID" ] ||
		fail "kvrun template create failed: $(cat "$BATS_FILE_TMPDIR/create.log")"
	setup_bundle
}

function teardown() {
	teardown_bundle
}

# The container sees the VM's hostname: no UTS namespace, no spec hostname.
function no_uts() {
	update_config "$1"'
		| del(.hostname)
		| .linux.namespaces |= map(select(.type != "uts"))' "${2:-$BUNDLE}"
}

# The kvrun-vmm processes of this test's --root, with their command lines.
function vmm_cmdlines() {
	pgrep -af 'kvrun-vmm ' | grep -F -- "$KVRUN_ROOT/" || true
}

@test "template: create made one; list shows it current; its files" {
	read -r start end < "$BATS_FILE_TMPDIR/create.times"
	echo "# template create (cold boot to agent-ready + snapshot): $(echo "$end - $start" | bc) s" >&3
	kvrun -0 template list
	[[ "${lines[1]}" == "$TEMPLATE_ID "*" 256M "*current* ]]
	kvrun -0 template list --format json
	[ "$(echo "$output" | jq -r '.[0].id')" = "$TEMPLATE_ID" ]
	[ "$(echo "$output" | jq -r '.[0].current')" = true ]
	local d=$KVRUN_TEMPLATE_DIR/$TEMPLATE_ID
	[ -f "$d/state" ] && [ -f "$d/memory" ] && [ -f "$d/template.json" ]
	jq -e '.cpus == 1 and .memory == 268435456' "$d/template.json"
	# A second create of the same shape keeps it.
	kvrun -0 template create
	[[ "$output" == "$TEMPLATE_ID "* ]]
}

@test "template: rm refuses what is not a template id; rm and --all remove" {
	kvrun -1 template rm nonsense
	[[ "$output" == *"16 hex digits"* ]]
	kvrun -1 template rm 0123456789abcdef
	[[ "$output" == *"does not exist"* ]]
	kvrun -1 template rm
	# Fake templates (a real one costs a boot): rm removes them, and only them.
	mkdir "$KVRUN_TEMPLATE_DIR/00000000000000aa" "$KVRUN_TEMPLATE_DIR/00000000000000bb"
	kvrun -0 template rm 00000000000000aa
	[ ! -e "$KVRUN_TEMPLATE_DIR/00000000000000aa" ]
	[ -d "$KVRUN_TEMPLATE_DIR/$TEMPLATE_ID" ]
	local other=$BATS_TEST_TMPDIR/other
	mkdir -p "$other/00000000000000cc"
	KVRUN_TEMPLATE_DIR=$other kvrun -0 template rm --all
	[ ! -e "$other/00000000000000cc" ]
	rmdir "$KVRUN_TEMPLATE_DIR/00000000000000bb"
}

@test "template: run clones the VM: a busybox container runs, fast" {
	no_uts '.process.args = ["sh", "-c", "echo hello-from-a-clone; hostname"]'
	local t0 t1
	t0=$(date +%s.%N)
	kvrun -0 --debug run c1
	t1=$(date +%s.%N)
	[[ "$output" == *"cloned from $KVRUN_TEMPLATE_DIR/$TEMPLATE_ID"* ]]
	[[ "$output" == *hello-from-a-clone* ]]
	# The VM's hostname is its own (the container's id), not the template's.
	printf '%s\n' "${lines[@]}" | grep -qx c1
	echo "# kvrun run of a busybox container in a clone: $(echo "$t1 - $t0" | bc) s" >&3
}

@test "template: 5 clones at once: own rootfs, own urandom, boot_id and hostname" {
	local i pids=() script
	# Each writes a file into its own root (virtio-fs: it lands in its bundle),
	# lists the markers it can see, then shows its identity.
	script='echo $0 > /written-by-$0; ls / | grep written-by | tr "\n" " "; echo;
		cat /proc/sys/kernel/random/boot_id; hostname;
		head -c 16 /dev/urandom | od -An -tx1 | tr -d " \n"; echo'
	for i in 1 2 3 4 5; do
		mkdir -p "$BUNDLE/b$i"
		cp -a "$BUSYBOX_ROOTFS" "$BUNDLE/b$i/rootfs"
		cp "$BUNDLE/config.json" "$BUNDLE/b$i/"
		no_uts '.root.readonly = false | .process.args = ["sh", "-c", '"$(jq -Rn --arg s "$script" '$s')"', "c'"$i"'"]' "$BUNDLE/b$i"
	done
	local t0 t1
	t0=$(date +%s.%N)
	for i in 1 2 3 4 5; do
		(cd "$BUNDLE/b$i" && "$KVRUN" --root "$KVRUN_ROOT" --debug run "c$i" \
			> "$BUNDLE/out$i" 2> "$BUNDLE/err$i") &
		pids+=($!)
	done
	for i in 1 2 3 4 5; do
		wait "${pids[$((i - 1))]}" || fail "run c$i failed: $(cat "$BUNDLE/err$i")"
	done
	t1=$(date +%s.%N)
	echo "# 5 containers in 5 clones, run at once: $(echo "$t1 - $t0" | bc) s" >&3
	for i in 1 2 3 4 5; do
		echo "c$i: $(tr '\n' '|' < "$BUNDLE/out$i")" >&2
		grep -q "cloned from" "$BUNDLE/err$i"
		# Only its own file, in its own bundle's rootfs on the host.
		[ "$(sed -n 1p "$BUNDLE/out$i")" = "written-by-c$i " ]
		[ "$(cat "$BUNDLE/b$i/rootfs/written-by-c$i")" = "c$i" ]
		[ "$(ls "$BUNDLE/b$i/rootfs" | grep -c written-by)" -eq 1 ]
		[ "$(sed -n 3p "$BUNDLE/out$i")" = "c$i" ]
	done
	# boot_id and 16 bytes of /dev/urandom: all five differ.
	[ "$(for i in 1 2 3 4 5; do sed -n 2p "$BUNDLE/out$i"; done | sort -u | wc -l)" -eq 5 ]
	[ "$(for i in 1 2 3 4 5; do sed -n 4p "$BUNDLE/out$i"; done | sort -u | wc -l)" -eq 5 ]
	[ "$(for i in 1 2 3 4 5; do sed -n 4p "$BUNDLE/out$i"; done | awk 'length($0) == 32' | wc -l)" -eq 5 ]
}

# start_create ID [env...]: kvrun create in the background (its VM boots);
# CREATOR is its pid.
function start_create() {
	local id=$1
	shift
	(cd "$BUNDLE" && env "$@" "$KVRUN" --root "$KVRUN_ROOT" create "$id" \
		</dev/null >"$BUNDLE/create-$id.log" 2>&1) &
	CREATOR=$!
}

# stop_create ID: kill the background create (its shim then undoes the VM).
function stop_create() {
	kill "$CREATOR" 2>/dev/null || true
	wait "$CREATOR" 2>/dev/null || true
	"$KVRUN" --root "$KVRUN_ROOT" delete --force "$1" 2>/dev/null || true
	kvrun_procs_kill
}

# A cold boot shows as a kvrun-vmm with --kernel in the container's state dir.
function cold_vmm_of() {
	pgrep -af 'kvrun-vmm ' | grep -F -- "$KVRUN_ROOT/$1" | grep -q -- --kernel
}

@test "template: off by annotation or config: a cold boot" {
	update_config '.process.args = ["true"] | .annotations = {"io.kvrun.template": "false"}'
	start_create c1 KVRUN_TEMPLATE_DIR="$KVRUN_TEMPLATE_DIR"
	wait_for 30 cold_vmm_of c1
	! vmm_cmdlines | grep -q -- --restore || false
	stop_create c1
	echo '{"templates": false}' > "$BUNDLE/kvrun.json"
	update_config '.annotations = {}'
	start_create c2 KVRUN_CONFIG="$BUNDLE/kvrun.json" KVRUN_TEMPLATE_DIR="$KVRUN_TEMPLATE_DIR"
	wait_for 30 cold_vmm_of c2
	stop_create c2
}

@test "template: a damaged template is refused by the restore; the shim boots cold instead" {
	local bad=$BATS_TEST_TMPDIR/templates
	cp -r --sparse=always "$KVRUN_TEMPLATE_DIR" "$bad"
	printf 'XXXX' | dd of="$bad/$TEMPLATE_ID/state" bs=1 seek=2000 conv=notrunc 2>/dev/null
	update_config '.process.args = ["true"]'
	start_create c1 KVRUN_TEMPLATE_DIR="$bad"
	# The restore fails at once, naming why; then a cold VMM takes over.
	wait_for 30 cold_vmm_of c1
	grep -q "checksum mismatch" "$KVRUN_ROOT/c1/vmm.log"
	stop_create c1
}

@test "template: one recorded with other devices is named, not restored into; a cold boot" {
	local other=$BATS_TEST_TMPDIR/templates
	cp -r --sparse=always "$KVRUN_TEMPLATE_DIR" "$other"
	# As if it had been made without the binds share (its key still matches).
	jq '.devices |= sub("fs binds\n"; "")' "$other/$TEMPLATE_ID/template.json" >"$other/t.json"
	mv "$other/t.json" "$other/$TEMPLATE_ID/template.json"
	update_config '.process.args = ["true"]'
	start_create c1 KVRUN_TEMPLATE_DIR="$other"
	wait_for 30 cold_vmm_of c1
	! vmm_cmdlines | grep -q -- --restore || false
	cat "$BUNDLE/create-c1.log" >&2
	grep -qF "device 2 is 'fs pod live' in the template, 'fs binds' in this VM" \
		"$BUNDLE/create-c1.log"
	stop_create c1
}

@test "template: a cold boot of a new shape leaves one behind; nearby limits share it; budget and stale ones" {
	local dir=$BATS_TEST_TMPDIR/templates
	cp -r --sparse=always "$KVRUN_TEMPLATE_DIR" "$dir"
	# A stale one (another kernel's, say): replaced, not only flagged.
	cp -r --sparse=always "$dir/$TEMPLATE_ID" "$dir/0123456789abcdef"
	jq '.key = "kvrun-template 2\nvmm gone"' "$dir/0123456789abcdef/template.json" >"$dir/t.json"
	mv "$dir/t.json" "$dir/0123456789abcdef/template.json"
	echo '{"template_max": 1}' >"$BUNDLE/kvrun.json"
	update_config '.process.args = ["true"] | .annotations = {"io.kvrun.vm.memory": "300M"}'
	run -0 env KVRUN_CONFIG="$BUNDLE/kvrun.json" KVRUN_TEMPLATE_DIR="$dir" \
		"$KVRUN" --root "$KVRUN_ROOT" run c1
	# 300M is a 384M VM (memory comes in ~1.5x steps); it booted cold and
	# left its template; the budget (1) let the older one go, the stale one
	# went first.
	run -0 env KVRUN_TEMPLATE_DIR="$dir" "$KVRUN" template list --format json
	echo "$output" >&2
	[ "$(jq length <<<"$output")" -eq 1 ]
	[ "$(jq -r '.[0].memory' <<<"$output")" -eq $((384 << 20)) ]
	[ "$(jq -r '.[0].current' <<<"$output")" = true ]
	# A nearby limit (200M + memory_overhead: 328M) is the same shape: a clone.
	update_config '.annotations = {} | .linux.resources.memory = {"limit": 209715200}'
	start_create c2 KVRUN_CONFIG="$BUNDLE/kvrun.json" KVRUN_TEMPLATE_DIR="$dir"
	wait_for 30 bash -c "pgrep -af 'kvrun-vmm ' | grep -F -- '$KVRUN_ROOT/c2' | grep -q -- --restore"
	stop_create c2
}
