#!/usr/bin/env python3
"""Seeds for fuzz_image_entry: image_seeds.py OUTDIR writes small layer blobs.

The layers of image.bats's two-layer image (whiteouts, an opaque directory,
a hard link, a symlink, a fifo, a device, an xattr, an owner), raw and
through three filters; the hostile layers of tests/integration/
image_corpus.py (bombs gzip'd, so that they stay small); a few escapes
aimed at the fuzzer's canary directory, a sibling of the staging one; and
the same as entry lists ("KVE1" records, which the fuzzer writes into a
valid tar itself: see fuzz_image_entry.c)."""
import bz2, gzip, lzma, os, struct, sys, tarfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
import image_corpus as ic  # noqa: E402


def escapes():
    ti = ic.ti
    return {
        "canary-symlink": ic.tar_bytes([ti("l", tarfile.SYMTYPE, linkname="../canary"),
                                        ti("l/x", data=b"x")]),
        "canary-dir-symlink": ic.tar_bytes([ti("d/", tarfile.DIRTYPE, mode=0o755),
                                            ti("d/l", tarfile.SYMTYPE, linkname="../../canary"),
                                            ti("d/l/", tarfile.DIRTYPE, mode=0o755),
                                            ti("d/l/y", data=b"y")]),
        "canary-hardlink": ic.tar_bytes([ti("h", tarfile.LNKTYPE, linkname="../canary")]),
        "symlink-then-file": ic.tar_bytes([ti("s", tarfile.SYMTYPE, linkname="/proc/self"),
                                           ti("s", data=b"replaced\n")]),
        "whiteout-through-symlink": ic.tar_bytes([ti("w", tarfile.SYMTYPE, linkname="/"),
                                                  ti("w/.wh.canary")]),
        "pax-dotdot": ic.tar_bytes([ti("ok", data=b"x", pax_headers={"path": "a/../../x"})]),
        "gnu-longname": ic.tar_bytes([ti("d" * 120 + "/" + "f" * 120, data=b"long\n")],
                                     fmt=tarfile.GNU_FORMAT),
        "ustar-root": ic.tar_bytes([ti("./", tarfile.DIRTYPE, mode=0o755),
                                    ti("./a", data=b"a")], fmt=tarfile.USTAR_FORMAT),
    }


REG, DIR, SYM, LINK, CHR, BLK, FIFO = range(7)


def rec(kind, name, target=b"", data=b"", mode=0o644, sel=0):
    return struct.pack("<BBBBHB", kind, len(name), len(target), len(data), mode, sel) + \
        name + target + data


def entry_lists():
    return {
        "entries-layer": b"KVE1" + b"".join([
            rec(DIR, b"etc", mode=0o755), rec(REG, b"etc/a", data=b"hello\n", sel=0x15),
            rec(SYM, b"etc/l", b"/etc/a"), rec(LINK, b"etc/h", b"etc/a"),
            rec(REG, b".wh.gone"), rec(DIR, b"opq"), rec(REG, b"opq/.wh..wh..opq"),
            rec(FIFO, b"etc/fifo"), rec(CHR, b"etc/null", sel=0x43),
            rec(BLK, b"etc/blk", sel=0x80), rec(REG, b"etc/x", data=b"y", sel=0x20)]),
        "entries-escape": b"KVE1" + b"".join([
            rec(SYM, b"l", b"../canary"), rec(REG, b"l/x", data=b"x"),
            rec(LINK, b"h", b"../canary"), rec(SYM, b"d", b"/"), rec(DIR, b"d/sub"),
            rec(REG, b"../up", data=b"x"), rec(REG, b"/abs", data=b"x")]),
        "entries-replace": b"KVE1" + b"".join([
            rec(DIR, b"a"), rec(REG, b"a", data=b"x"), rec(REG, b"b"), rec(DIR, b"b"),
            rec(SYM, b"c", b"b"), rec(REG, b"c", data=b"z"), rec(REG, b"./.wh.b")]),
    }


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    base, top = ic.two_layer_layers()
    seeds = {"base": base, "top": top, "top.gz": gzip.compress(top, mtime=0),
             "top.bz2": bz2.compress(top), "top.xz": lzma.compress(top)}
    for kind, make in ic.HOSTILE.items():
        raw = make()
        seeds["hostile-" + kind] = gzip.compress(raw, mtime=0) if kind.startswith("bomb") else raw
    seeds.update(escapes())
    seeds.update(entry_lists())
    for name, blob in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(blob)


main()
