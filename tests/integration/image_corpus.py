#!/usr/bin/env python3
"""Archives for image.bats, made offline: image_corpus.py KIND OUT.tar.

KIND two-layer: a docker-archive of two layers, the second with a whiteout
(.wh.gone) and an opaque directory (opq/.wh..wh..opq), a hard link, a
symlink, a fifo, a device, an xattr and an owner. Every other KIND is a
one-layer docker-archive whose layer is hostile (see HOSTILE)."""
import gzip, hashlib, io, json, sys, tarfile


def tar_bytes(entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for info, data in entries:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def ti(name, type=tarfile.REGTYPE, data=b"", mode=0o644, **kw):
    i = tarfile.TarInfo(name)
    i.type, i.mode, i.mtime = type, mode, 1000000000
    for k, v in kw.items():
        setattr(i, k, v)
    if type == tarfile.REGTYPE:
        i.size = len(data)
    return (i, data if type == tarfile.REGTYPE else None)


def docker_archive(layers, out, name="test:latest", diff_ids=None, compress=None):
    files, paths = {}, []
    ids = []
    for n, raw in enumerate(layers):
        ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        blob = gzip.compress(raw, mtime=0) if compress == "gzip" else raw
        paths.append("layer%d/layer.tar" % n)
        files[paths[-1]] = blob
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "created": "2001-09-09T01:46:40Z",
                      "config": {"Cmd": ["sh"]},
                      "rootfs": {"type": "layers", "diff_ids": diff_ids or ids}}).encode()
    cfgname = hashlib.sha256(cfg).hexdigest() + ".json"
    files[cfgname] = cfg
    files["manifest.json"] = json.dumps(
        [{"Config": cfgname, "RepoTags": [name], "Layers": paths}]).encode()
    with open(out, "wb") as f:
        f.write(tar_bytes([ti(k, data=v) for k, v in sorted(files.items())],
                          fmt=tarfile.GNU_FORMAT))


def two_layer_layers():
    """The two layers of two-layer, raw tars (tests/fuzz/image_seeds.py uses them too)."""
    base = tar_bytes([
        ti("etc/", tarfile.DIRTYPE, mode=0o755),
        ti("etc/hostname", data=b"base\n"),
        ti("gone", data=b"to be whited out\n"),
        ti("opq/", tarfile.DIRTYPE, mode=0o755),
        ti("opq/old", data=b"hidden by the opaque dir\n"),
    ])
    top = tar_bytes([
        ti("etc/", tarfile.DIRTYPE, mode=0o755),
        ti("etc/motd", data=b"hello\n", mode=0o4755, uid=1000, gid=100,
           pax_headers={"SCHILY.xattr.user.kvrun": "yes"}),
        ti("etc/motd.link", tarfile.LNKTYPE, linkname="etc/motd"),
        ti("etc/sym", tarfile.SYMTYPE, linkname="/etc/motd", mode=0o777),
        ti("etc/fifo", tarfile.FIFOTYPE, mode=0o600),
        ti("etc/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
        ti(".wh.gone"),
        ti("opq/", tarfile.DIRTYPE, mode=0o755),
        ti("opq/.wh..wh..opq"),
        ti("opq/new", data=b"new\n"),
    ])
    return base, top


def two_layer(out):
    base, top = two_layer_layers()
    docker_archive([base, top], out, "twolayer:1")
    # The same base layer in a second image: stored once.
    docker_archive([base], out.replace(".tar", "-base.tar"), "base:1")


def sparse_declared():
    # An entry declaring 2 GiB (GNU sparse: the stream holds almost nothing).
    i = tarfile.TarInfo("big")
    i.size = 2 << 30
    hdr = i.tobuf(format=tarfile.GNU_FORMAT)
    return hdr  # header only: --max-size refuses it before any data is read


HOSTILE = {
    "dotdot": lambda: tar_bytes([ti("../escape", data=b"x")]),
    "abs": lambda: tar_bytes([ti("/abs", data=b"x")]),
    "symlink": lambda: tar_bytes([ti("l", tarfile.SYMTYPE, linkname="/"),
                                  ti("l/etc/x", data=b"x")]),
    "hardlink": lambda: tar_bytes([ti("h", tarfile.LNKTYPE, linkname="../../x")]),
    "bigdecl": sparse_declared,
    "bomb": lambda: tar_bytes([ti("zeros", data=bytes(8 << 20))]),
    # Small entries, then megabytes of zeros past the end-of-archive blocks:
    # only the count of uncompressed bytes stops it.
    "bombpad": lambda: tar_bytes([ti("f", data=b"x")]) + bytes(8 << 20),
}


def main():
    kind, out = sys.argv[1], sys.argv[2]
    if kind == "two-layer":
        return two_layer(out)
    if kind == "mismatch":
        raw = tar_bytes([ti("file", data=b"x")])
        return docker_archive([raw], out, "mismatch:1", diff_ids=["sha256:" + "0" * 64])
    raw = HOSTILE[kind]()
    docker_archive([raw], out, kind + ":1", compress="gzip" if kind.startswith("bomb") else None)


if __name__ == "__main__":
    main()
