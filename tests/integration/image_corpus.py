#!/usr/bin/env python3
"""Archives for image.bats, made offline: image_corpus.py KIND OUT.tar.

KIND two-layer: a docker-archive of two layers, the second with a whiteout
(.wh.gone) and an opaque directory (opq/.wh..wh..opq), a hard link, a
symlink, a fifo, a device, an xattr and an owner. KIND layered OUTDIR
ROOTFS: an OCI layout of three gzip'd layers, ROOTFS (the busybox fixture)
under those two. Every other KIND is a one-layer docker-archive whose layer
is hostile (see HOSTILE)."""
import gzip, hashlib, io, json, os, sys, tarfile


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


def docker_archive(layers, out, name="test:latest", diff_ids=None, compress=None,
                   config=None):
    files, paths = {}, []
    ids = []
    for n, raw in enumerate(layers):
        ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        blob = gzip.compress(raw, mtime=0) if compress == "gzip" else raw
        paths.append("layer%d/layer.tar" % n)
        files[paths[-1]] = blob
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "created": "2001-09-09T01:46:40Z",
                      "config": config or {"Cmd": ["sh"]},
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


def tar_dir(root):
    """A reproducible tar of a directory: sorted, root-owned, mtime 0."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        def add(rel):
            path = os.path.join(root, rel) if rel else root
            i = t.gettarinfo(path, rel or ".")
            i.uid = i.gid = 0
            i.uname = i.gname = ""
            i.mtime = 0
            if i.isreg():
                with open(path, "rb") as f:
                    t.addfile(i, f)
            else:
                t.addfile(i)
            if i.isdir():
                for n in sorted(os.listdir(path)):
                    if n != ".done":
                        add(os.path.join(rel, n) if rel else n)
        add("")
    return buf.getvalue()


def oci_layout(layers, out, name, cmd):
    """An OCI image layout directory of gzip'd layers (skopeo's oci: output)."""
    blobs = os.path.join(out, "blobs", "sha256")
    os.makedirs(blobs)

    def blob(data):
        d = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, d), "wb") as f:
            f.write(data)
        return {"digest": "sha256:" + d, "size": len(data)}

    descs = []
    for raw in layers:
        b = blob(gzip.compress(raw, mtime=0))
        b["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
        descs.append(b)
    cfg = blob(json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2001-09-09T01:46:40Z",
        "config": {"Cmd": cmd, "Env": ["PATH=/bin:/sbin", "LAYERED=1"],
                   "WorkingDir": "/etc", "ExposedPorts": {"8080/tcp": {}}},
        "rootfs": {"type": "layers",
                   "diff_ids": ["sha256:" + hashlib.sha256(r).hexdigest() for r in layers]},
    }).encode())
    cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"
    man = blob(json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": cfg, "layers": descs}).encode())
    man["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    man["annotations"] = {"org.opencontainers.image.ref.name": name}
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [man]}, f)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


def layered(out, rootfs):
    """Busybox (the fixture's rootfs) under the two layers of two_layer, as an
    OCI layout: an image to run, with whiteouts and an opaque directory."""
    base, top = two_layer_layers()
    oci_layout([tar_dir(rootfs), base, top], out, "layered", ["sh"])


def flatten_cases(out):
    """Nine layers whose lowest three (flattened at import) exercise the merge:
    a whiteout of a file and of a file in a directory, an opaque directory, a
    file replaced by a directory and a directory by a file, a changed file, a
    directory's new mode and owner, hard links and a symlink. OUT/full is the
    image, OUT/base an image of the lowest three alone (what umoci unpacks to
    compare with the flat image)."""
    d = tarfile.DIRTYPE
    l0 = tar_bytes([
        ti("a/", d, mode=0o755), ti("a/f1", data=b"f1"), ti("a/f2", data=b"f2"),
        ti("b", data=b"b"), ti("c/", d, mode=0o755), ti("c/x", data=b"x"),
        ti("h1", data=b"hard"), ti("h2", tarfile.LNKTYPE, linkname="h1"),
        ti("keep/", d, mode=0o755), ti("keep/k", data=b"old"),
        ti("s", tarfile.SYMTYPE, linkname="b", mode=0o777),
        ti("e/", d, mode=0o755), ti("e/1", data=b"1"), ti("d", data=b"d"),
    ])
    l1 = tar_bytes([
        ti(".wh.b"), ti("a/", d, mode=0o755), ti("a/.wh.f1"),
        ti("c/", d, mode=0o755), ti("c/.wh..wh..opq"), ti("c/y", data=b"y"),
        ti("n/", d, mode=0o755), ti("n/deep/", d, mode=0o755), ti("n/deep/z", data=b"z"),
    ])
    l2 = tar_bytes([
        ti("d/", d, mode=0o750, uid=7, gid=8), ti("d/z", data=b"dz"), ti("e", data=b"now a file"),
        ti("keep/", d, mode=0o755), ti("keep/k", data=b"new", mode=0o600, uid=1000, gid=100),
        ti("a/", d, mode=0o700, uid=1000, gid=100),
    ])
    top = [tar_bytes([ti("t%d" % i, data=b"%d" % i)]) for i in range(3, 9)]
    oci_layout([l0, l1, l2] + top, os.path.join(out, "full"), "flat", ["sh"])
    oci_layout([l0, l1, l2], os.path.join(out, "base"), "base", ["sh"])


PASSWD = (b"root:x:0:0:root:/root:/bin/sh\n"
          b"app:x:1000:1000:App:/home/app:/bin/sh\n"
          b"other:x:1001:1001::/:/bin/sh\n")
GROUP = (b"root:x:0:\napp:x:1000:\ngrp:x:2000:\n"
         b"wheel:x:10:root,app\naudio:x:29:other,app\n")


def etc_layer(passwd=None, group=None, extra=()):
    e = [ti("etc/", tarfile.DIRTYPE, mode=0o755)]
    if passwd is not None:
        e.append(ti("etc/passwd", data=passwd))
    if group is not None:
        e.append(ti("etc/group", data=group))
    return tar_bytes(e + list(extra))


def users(out):
    """OUT/USER.tar (name user-N:1) for each User over one layer with
    /etc/passwd and /etc/group; OUT/stack-KIND.tar, a base layer with them
    under layers that change /etc/passwd (name stack-KIND:1)."""
    os.makedirs(out)
    base = etc_layer(PASSWD, GROUP)
    for n, user in enumerate(["app", "app:grp", "1000:grp", "nobody-missing", "1001",
                              "4242", "app:nogrp", "4294967295", "app:10"]):
        docker_archive([base], os.path.join(out, "user-%d.tar" % n), "user-%d:1" % n,
                       config={"Cmd": ["sh"], "User": user})
    app3000 = b"app:x:3000:3000::/:/bin/sh\n"
    stacks = {
        # A whiteout, then a new file in the layer above: the top's entry.
        "replace": [base, etc_layer(extra=[ti("etc/.wh.passwd")]), etc_layer(app3000)],
        # The top's whiteout alone: no /etc/passwd.
        "gone": [base, etc_layer(extra=[ti("etc/.wh.passwd")])],
        # An opaque /etc: the lower /etc/group is hidden too.
        "opaque": [base, etc_layer(app3000, extra=[ti("etc/.wh..wh..opq")])],
        # A symlink over it: not read.
        "symlink": [base, etc_layer(extra=[ti("etc/passwd", tarfile.SYMTYPE,
                                               linkname="/usr/lib/passwd", mode=0o777)])],
        # Hostile lines: a huge uid, a non-numeric one, a long line.
        "hostile": [base, etc_layer(b"big:x:4294967296:1::/:/bin/sh\n"
                                    b"bad:x:12a:1::/:/bin/sh\n"
                                    b"long:x:7:7:" + b"g" * 200000 + b":/:/bin/sh\n"
                                    b"app:x:3000:3000::/:/bin/sh\n")],
    }
    # The replace stack with its base layer's bytes garbled, its diff_id kept:
    # it imports only while the store has that layer and its /etc delta.
    ids = ["sha256:" + hashlib.sha256(r).hexdigest() for r in stacks["replace"]]
    garbled = [tar_bytes([ti("x", data=b"garbled")])] + stacks["replace"][1:]
    docker_archive(garbled, os.path.join(out, "garbled.tar"), "garbled:1", diff_ids=ids,
                   config={"Cmd": ["sh"], "User": "app:grp"})
    for kind, layers in stacks.items():
        for user in ["app", "big", "bad", "long"] if kind == "hostile" else ["app"]:
            docker_archive(layers, os.path.join(out, "stack-%s-%s.tar" % (kind, user)),
                           "stack-%s-%s:1" % (kind, user),
                           config={"Cmd": ["sh"], "User": user})


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
    if kind == "layered":
        return layered(out, sys.argv[3])
    if kind == "flatten":
        return flatten_cases(out)
    if kind == "users":
        return users(out)
    if kind == "named-user":
        raw = tar_bytes([ti("file", data=b"x")])
        return docker_archive([raw], out, "user:1", config={"Cmd": ["sh"], "User": "nobody"})
    if kind == "no-cmd":
        raw = tar_bytes([ti("file", data=b"x")])
        return docker_archive([raw], out, "nocmd:1", config={"Env": ["A=1"]})
    if kind == "many-layers":
        raws = [tar_bytes([ti("f%d" % i, data=b"%d" % i)]) for i in range(9)]
        return docker_archive(raws, out, "many:1")
    if kind == "mismatch":
        raw = tar_bytes([ti("file", data=b"x")])
        return docker_archive([raw], out, "mismatch:1", diff_ids=["sha256:" + "0" * 64])
    raw = HOSTILE[kind]()
    docker_archive([raw], out, kind + ":1", compress="gzip" if kind.startswith("bomb") else None)


if __name__ == "__main__":
    main()
