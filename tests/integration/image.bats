#!/usr/bin/env bats
# kvrun image: import (a docker-archive of the busybox fixture, a two-layer
# image with whiteouts), ls, rm, prune, in a store of the test's own; and a
# hostile corpus (tests/integration/image_corpus.py), each archive refused
# with its entry named, nothing outside the store changed, nothing left in it.

load helpers

function setup() {
	[ -x "$KVRUN" ] || skip "kvrun not built: run make"
	command -v mkfs.erofs >/dev/null || skip "test requires erofs-utils"
	[ "$(id -u)" -eq 0 ] || skip "test requires root (owners and device nodes in the staging directory)"
	KVRUN_IMAGE_STORE=$(mktemp -d "$BATS_RUN_TMPDIR/store.XXXXXX")
	WORK=$(mktemp -d "$BATS_RUN_TMPDIR/work.XXXXXX")
	export KVRUN_IMAGE_STORE WORK
	CORPUS="$INTEGRATION_ROOT/image_corpus.py"
}

function teardown() {
	rm -rf "$KVRUN_IMAGE_STORE" "$WORK"
}

function img() {
	local expect=()
	if [[ "${1:-}" =~ ^(-[0-9]+|!)$ ]]; then
		expect=("$1")
		shift
	fi
	run "${expect[@]}" "$KVRUN" image "$@"
	echo "kvrun image $* (status=$status):" >&2
	printf '%s\n' "$output" >&2
}

# The erofs image of diff_id $1, extracted into $2.
function extract_layer() {
	fsck.erofs --extract="$2" "$KVRUN_IMAGE_STORE/layers/${1#sha256:}.erofs"
}

@test "image import: the busybox fixture as a docker-archive" {
	requires busybox jq
	"$INTEGRATION_ROOT/clients/mkimage" "$BUSYBOX_ROOTFS" "$WORK/busybox.tar" busybox:test
	img -0 import "$WORK/busybox.tar"
	[[ "$output" == "busybox:test sha256:"* ]]
	img -0 ls
	[[ "${lines[0]}" == NAME*ID*LAYERS*SIZE*CREATED ]]
	[[ "${lines[1]}" == busybox:test*1970-01-01T00:00:00Z ]]
	img -0 ls --format json
	diff=$(jq -r '.[0].layers[0]' <<<"$output")
	[ "$(jq -r '.[0].name' <<<"$output")" = busybox:test ]
	# The layer's diff_id is the sha256 of the layer tar in the archive.
	tar -xOf "$WORK/busybox.tar" "${diff#sha256:}/layer.tar" | sha256sum | grep -q "^${diff#sha256:} "
	extract_layer "$diff" "$WORK/x"
	cmp "$WORK/x/bin/busybox" "$BUSYBOX_ROOTFS/bin/busybox"
	[ "$(readlink "$WORK/x/bin/sh")" = /bin/busybox ]
	[ "$(cat "$WORK/x/etc/passwd")" = "root:x:0:0:root:/root:/bin/sh" ]
	# A second import of the same archive is the same image.
	img -0 import "$WORK/busybox.tar" other
	img -0 ls --format json
	[ "$(jq length <<<"$output")" -eq 1 ]
	[ "$(jq -r '.[0].name' <<<"$output")" = other ]
}

@test "image import: two layers, whiteouts, an opaque directory, a shared layer" {
	requires jq
	python3 "$CORPUS" two-layer "$WORK/two.tar"
	img -0 import "$WORK/two.tar"
	img -0 import "$WORK/two-base.tar"
	img -0 ls --format json
	[ "$(jq length <<<"$output")" -eq 2 ]
	base=$(jq -r '.[] | select(.name == "base:1") | .layers[0]' <<<"$output")
	[ "$(jq -r '.[] | select(.name == "twolayer:1") | .layers[0]' <<<"$output")" = "$base" ]
	top=$(jq -r '.[] | select(.name == "twolayer:1") | .layers[1]' <<<"$output")
	[ "$(ls "$KVRUN_IMAGE_STORE/layers" | wc -l)" -eq 2 ] # the base is stored once
	L="$KVRUN_IMAGE_STORE/layers/${top#sha256:}.erofs"
	extract_layer "$top" "$WORK/top"
	[ "$(stat -c '%F %t,%T' "$WORK/top/gone")" = "character special file 0,0" ]
	[ ! -e "$WORK/top/opq/.wh..wh..opq" ]
	[ "$(cat "$WORK/top/opq/new")" = new ]
	# fsck.erofs 1.5 extracts no xattrs: dump.erofs shows the opaque one is there.
	dump.erofs --path=/opq "$L" | grep -q 'Xattr size: [1-9]'
	dump.erofs --path=/etc/motd "$L" | grep -q 'Uid: 1000   Gid: 100'
	dump.erofs --path=/etc/motd "$L" | grep -q 'Links: 2'
	dump.erofs --path=/etc/motd "$L" | grep -q 'Xattr size: [1-9]'
	# Whole blocks, no tail inlined in metadata: the guest's erofs maps only
	# such files with DAX (a file's layout 2 would go through its page cache).
	dump.erofs --path=/etc/motd "$L" | grep -q 'Layout: 0 '
	[ "$(readlink "$WORK/top/etc/sym")" = /etc/motd ]
	[ "$(stat -c '%F' "$WORK/top/etc/fifo")" = fifo ]
	[ "$(stat -c '%F %t,%T' "$WORK/top/etc/null")" = "character special file 1,3" ]
	extract_layer "$base" "$WORK/base"
	[ "$(cat "$WORK/base/opq/old")" = "hidden by the opaque dir" ]

	# rm keeps layers until prune; prune drops only the unreferenced one.
	img -0 rm twolayer:1
	img ! rm twolayer:1
	[[ "$output" == *"no such image"* ]]
	img -0 prune
	[[ "$output" == "removed layer $top"* ]]
	[ -e "$KVRUN_IMAGE_STORE/layers/${base#sha256:}.erofs" ]
	img -0 rm "$(jq -r '.[] | select(.name == "base:1") | .id' <<<"$(__img_json)")"
	img -0 prune
	[ -z "$(ls "$KVRUN_IMAGE_STORE/layers")" ]
	img -0 ls
	[ "${#lines[@]}" -eq 1 ]
}

function __img_json() {
	"$KVRUN" image ls --format json
}

# Refused, naming the entry; no layer, image or staging left; nothing outside.
function refused() {
	local kind=$1 want=$2
	python3 "$CORPUS" "$kind" "$WORK/$kind.tar"
	local before
	before=$(find "$BATS_RUN_TMPDIR" / -maxdepth 1 2>/dev/null | sort | md5sum)
	img ! import --max-size 1M "$WORK/$kind.tar"
	[[ "$output" == *"$want"* ]] || fail "want: $want"
	[ -z "$(ls "$KVRUN_IMAGE_STORE/layers")" ]
	[ -z "$(ls "$KVRUN_IMAGE_STORE/images")" ]
	[ -z "$(ls "$KVRUN_IMAGE_STORE/tmp")" ]
	[ "$(find "$BATS_RUN_TMPDIR" / -maxdepth 1 2>/dev/null | sort | md5sum)" = "$before" ]
}

@test "image import: a hostile corpus is refused, naming the entry" {
	refused dotdot 'entry "../escape": path escapes the layer'
	refused abs 'entry "/abs": absolute path escapes the layer'
	refused symlink 'entry "l/etc/x": path escapes the layer through symlink "l"'
	[ ! -e /etc/x ]
	refused hardlink 'entry "h": hard link target "../../x": path escapes the layer'
	refused bigdecl 'entry "big": declared size 2147483648 is over the size limit'
	refused bomb 'entry "zeros": declared size 8388608 is over the size limit'
	refused bombpad 'uncompressed layer data is over the size limit'
	refused mismatch 'diff_id mismatch'
}

@test "image bundle: config.json from the image's config, the layers linked, refusals named" {
	requires jq busybox
	python3 "$CORPUS" layered "$WORK/oci" "$BUSYBOX_ROOTFS"
	img -0 import "$WORK/oci" layered:1
	img -0 bundle layered:1 "$WORK/b"
	local c=$WORK/b/config.json
	[ "$(jq -c .process.args "$c")" = '["sh"]' ]
	[ "$(jq -r .process.cwd "$c")" = /etc ]
	[ "$(jq -c .process.env "$c")" = '["PATH=/bin:/sbin","LAYERED=1"]' ]
	[ "$(jq -r .process.terminal "$c")" = false ]
	[ "$(jq -c .root "$c")" = '{"path":"rootfs","readonly":false}' ]
	[ "$(jq -r '.annotations["io.kvrun.image.layers"]' "$c")" = layers/0.erofs,layers/1.erofs,layers/2.erofs ]
	[ "$(jq -r '.annotations["org.opencontainers.image.exposedPorts"]' "$c")" = 8080/tcp ]
	[[ "$(jq -r '.annotations["io.kvrun.image"]' "$c")" == layered:1@sha256:* ]]
	[ -d "$WORK/b/rootfs" ] && [ -z "$(ls -A "$WORK/b/rootfs")" ]
	# The layers are the store's files (hard links): rm and prune leave them to the bundle.
	local l
	for l in 0 1 2; do
		[ "$(stat -c %h "$WORK/b/layers/$l.erofs")" -eq 2 ]
	done
	img -0 rm layered:1
	img -0 prune
	[ -z "$(ls "$KVRUN_IMAGE_STORE/layers")" ]
	[ "$(stat -c %h "$WORK/b/layers/2.erofs")" -eq 1 ]
	fsck.erofs "$WORK/b/layers/2.erofs"
	# An existing directory is not overwritten.
	img -0 import "$WORK/oci" layered:1
	img -1 bundle layered:1 "$WORK/b"
	[[ "$output" == *"$WORK/b exists"* ]]
	[ "$(stat -c %h "$WORK/b/layers/2.erofs")" -eq 1 ]
	# What a bundle cannot say is refused, naming it, leaving no directory.
	python3 "$CORPUS" named-user "$WORK/user.tar"
	img -0 import "$WORK/user.tar"
	img -1 bundle user:1 "$WORK/u"
	[[ "$output" == *"image config: User nobody: no such user in the image's /etc/passwd"* ]]
	[ ! -e "$WORK/u" ]
	python3 "$CORPUS" no-cmd "$WORK/nocmd.tar"
	img -0 import "$WORK/nocmd.tar"
	img -1 bundle nocmd:1 "$WORK/n"
	[[ "$output" == *"no Entrypoint or Cmd"* ]]
	[ ! -e "$WORK/n" ]
}

# import_users PREFIX: the corpus's User images named PREFIX-*, imported.
function import_users() {
	python3 "$CORPUS" users "$WORK/u"
	local f
	for f in "$WORK"/u/"$1"-*.tar; do
		img -0 import "$f"
	done
}

# bundle_user NAME: kvrun image bundle NAME:1, process.user of its config.json.
function bundle_user() {
	rm -rf "$WORK/b"
	img -0 bundle "$1:1" "$WORK/b"
	jq -c .process.user "$WORK/b/config.json"
}

@test "image bundle: User names resolve through the image's /etc/passwd and /etc/group" {
	requires jq
	import_users user
	# A name: passwd's uid and primary gid, the groups listing it as additionalGids.
	[ "$(bundle_user user-0)" = '{"uid":1000,"gid":1000,"additionalGids":[10,29]}' ]
	# A group given: its gid, no additional gids (Docker's rule).
	[ "$(bundle_user user-1)" = '{"uid":1000,"gid":2000}' ]
	[ "$(bundle_user user-2)" = '{"uid":1000,"gid":2000}' ]
	[ "$(bundle_user user-8)" = '{"uid":1000,"gid":10}' ]
	# A uid in passwd is its entry; one that is not stays, gid 0.
	[ "$(bundle_user user-4)" = '{"uid":1001,"gid":1001,"additionalGids":[29]}' ]
	[ "$(bundle_user user-5)" = '{"uid":4242,"gid":0}' ]
	# What does not resolve is refused, naming the field, leaving no directory.
	img -1 bundle user-3:1 "$WORK/n"
	[[ "$output" == *"image config: User nobody-missing: no such user in the image's /etc/passwd"* ]]
	[ ! -e "$WORK/n" ]
	img -1 bundle user-6:1 "$WORK/n"
	[[ "$output" == *"image config: User app:nogrp: no such group nogrp in the image's /etc/group"* ]]
	[ ! -e "$WORK/n" ]
	img -1 bundle user-7:1 "$WORK/n"
	[[ "$output" == *"User 4294967295: uid 4294967295 out of range"* ]]
	[ ! -e "$WORK/n" ]
	# An image recorded before kvrun kept /etc: asked to import it again.
	local rec
	for rec in "$KVRUN_IMAGE_STORE"/images/*.json; do
		jq -e '.name == "user-0:1"' "$rec" >/dev/null && break
	done
	jq -e .etc.passwd.base64 "$rec" >/dev/null
	jq 'del(.etc)' "$rec" >"$WORK/rec" && cat "$WORK/rec" >"$rec"
	img -1 bundle user-0:1 "$WORK/n"
	[[ "$output" == *"image config: User app: the image was imported before kvrun kept its /etc/passwd and /etc/group: import it again"* ]]
	[ ! -e "$WORK/n" ]
}

@test "image bundle: the User's entry comes from the top of the layer stack" {
	requires jq
	import_users stack
	# The base's app (1000) whited out by the middle layer, the top's (3000) in.
	[ "$(bundle_user stack-replace-app)" = '{"uid":3000,"gid":3000,"additionalGids":[10,29]}' ]
	# An opaque /etc in the top: the base's /etc/group is hidden too.
	[ "$(bundle_user stack-opaque-app)" = '{"uid":3000,"gid":3000}' ]
	img -1 bundle stack-gone-app:1 "$WORK/n"
	[[ "$output" == *"User app: no such user in the image's /etc/passwd"* ]]
	img -1 bundle stack-symlink-app:1 "$WORK/n"
	[[ "$output" == *"User app: the image's /etc/passwd is not a regular file (a symlink)"* ]]
	# Hostile lines: refused naming the line; the others still resolve.
	[ "$(bundle_user stack-hostile-app)" = '{"uid":3000,"gid":3000,"additionalGids":[10,29]}' ]
	[ "$(bundle_user stack-hostile-long)" = '{"uid":7,"gid":7}' ]
	img -1 bundle stack-hostile-big:1 "$WORK/n"
	[[ "$output" == *"User big: the image's /etc/passwd line 1: uid 4294967296 out of range (over 4294967294)"* ]]
	img -1 bundle stack-hostile-bad:1 "$WORK/n"
	[[ "$output" == *"User bad: the image's /etc/passwd line 2: uid \"12a\" is not a number"* ]]
	[ ! -e "$WORK/n" ]
	# The shared base layer was stored once, with what it does to /etc.
	[ "$(ls "$KVRUN_IMAGE_STORE/layers" | wc -l)" -eq 6 ]
	[ "$(ls "$KVRUN_IMAGE_STORE/layer-etc" | wc -l)" -eq 6 ]
	[ -z "$(ls "$KVRUN_IMAGE_STORE/tmp")" ]
	# A stored layer with its /etc delta is not read again: its bytes garbled
	# in the archive go unnoticed. Without the delta (a store from before
	# kvrun kept them) it is read again, and the garbling found.
	img -0 import "$WORK/u/garbled.tar"
	[ "$(bundle_user garbled)" = '{"uid":3000,"gid":2000}' ]
	local base
	base=$(tar -xOf "$WORK/u/stack-replace-app.tar" manifest.json | jq -r '.[0].Layers[0]')
	base=$(tar -xOf "$WORK/u/stack-replace-app.tar" "$base" | sha256sum | cut -d' ' -f1)
	[ -e "$KVRUN_IMAGE_STORE/layer-etc/$base.json" ]
	rm "$KVRUN_IMAGE_STORE/layer-etc/$base.json"
	img ! import "$WORK/u/garbled.tar"
	[[ "$output" == *"diff_id mismatch"* ]]
	[ ! -e "$KVRUN_IMAGE_STORE/layer-etc/$base.json" ]
	img -0 import "$WORK/u/stack-replace-app.tar"
	[ -e "$KVRUN_IMAGE_STORE/layer-etc/$base.json" ]
	[ "$(bundle_user stack-replace-app)" = '{"uid":3000,"gid":3000,"additionalGids":[10,29]}' ]
	# prune takes a layer's delta with the layer.
	local id
	for id in $("$KVRUN" image ls --format json | jq -r '.[].id'); do
		img -0 rm "$id"
	done
	img -0 prune
	[ -z "$(ls "$KVRUN_IMAGE_STORE/layers")" ]
	[ -z "$(ls "$KVRUN_IMAGE_STORE/layer-etc")" ]
}

@test "image import: more layers than a VM takes, the lowest flattened into one image as umoci unpacks them" {
	requires jq umoci
	python3 "$CORPUS" flatten "$WORK/oci"
	img -0 import "$WORK/oci/full" flat:1
	local rec flat
	rec=$(cat "$KVRUN_IMAGE_STORE"/images/*.json)
	[ "$(jq -r .flat.layers <<<"$rec")" -eq 3 ]
	flat=$(jq -r .flat.digest <<<"$rec")
	local img=$KVRUN_IMAGE_STORE/layers/${flat#sha256:}.erofs
	# The flat image is the three lowest layers merged (whiteouts, an opaque
	# directory, a file over a directory and back, owners and modes), the
	# tree umoci unpacks from an image of those three alone.
	fsck.erofs --extract="$WORK/flat" "$img"
	umoci unpack --image "$WORK/oci/base:base" "$WORK/umoci" >&2
	(cd "$WORK/flat" && find . | sort | xargs stat -c '%n %f %u %g %s') >"$WORK/got"
	(cd "$WORK/umoci/rootfs" && find . | sort | xargs stat -c '%n %f %u %g %s') >"$WORK/want"
	diff -u "$WORK/want" "$WORK/got"
	[ "$(cat "$WORK/flat/keep/k")" = new ]
	[ "$(readlink "$WORK/flat/s")" = b ] && [ ! -e "$WORK/flat/b" ]
	# Its hard links stay links (fsck.erofs 1.5 extracts them apart: the image has one inode).
	[ "$(dump.erofs --path=/h1 "$img" | grep -o 'NID: [0-9]*')" = \
		"$(dump.erofs --path=/h2 "$img" | grep -o 'NID: [0-9]*')" ]
	# A bundle gets 7 layers: the flat one, then the top six.
	img -0 bundle flat:1 "$WORK/b"
	[ "$(jq -r '.annotations["io.kvrun.image.layers"]' "$WORK/b/config.json" | tr , '\n' | wc -l)" -eq 7 ]
	cmp "$WORK/b/layers/0.erofs" "$img"
	# prune keeps it while the image is there, and takes it with the image.
	img -0 prune
	[ -e "$img" ]
	img -0 rm flat:1
	img -0 prune
	[ ! -e "$img" ]
	[ -z "$(ls "$KVRUN_IMAGE_STORE/layers")" ]
}

@test "image bundle: kvrun create refuses bad layers before a VM boots, naming the entry" {
	requires jq busybox
	python3 "$CORPUS" layered "$WORK/oci" "$BUSYBOX_ROOTFS"
	img -0 import "$WORK/oci" layered:1
	img -0 bundle layered:1 "$WORK/b"
	KVRUN_ROOT=$WORK/root
	cd "$WORK/b"
	local good
	good=$(cat config.json)
	jq '.annotations["io.kvrun.image.layers"] = "layers/0.erofs,config.json"' <<<"$good" >config.json
	run -1 "$KVRUN" --root "$KVRUN_ROOT" create c1
	[[ "$output" == *"annotation io.kvrun.image.layers: layer 1 ($WORK/b/config.json) is not an erofs image"* ]]
	jq '.annotations["io.kvrun.image.layers"] = "layers/0.erofs,layers/9.erofs"' <<<"$good" >config.json
	run -1 "$KVRUN" --root "$KVRUN_ROOT" create c1
	[[ "$output" == *"annotation io.kvrun.image.layers: layer 1 ($WORK/b/layers/9.erofs): No such file"* ]]
	jq '.annotations["io.kvrun.image.layers"] = "'"$(printf 'layers/0.erofs,%.0s' 1 2 3 4 5 6 7)"'layers/1.erofs"' <<<"$good" >config.json
	run -1 "$KVRUN" --root "$KVRUN_ROOT" create c1
	[[ "$output" == *"annotation io.kvrun.image.layers: more than 7 layers"* ]]
	[ -z "$(ls -A "$KVRUN_ROOT" 2>/dev/null)" ]
	[ -z "$(pgrep -f "kvrun-(shim|vmm) .*$KVRUN_ROOT")" ]
}
