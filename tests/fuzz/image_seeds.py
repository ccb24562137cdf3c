#!/usr/bin/env python3
"""Seeds for fuzz_image_entry: image_seeds.py OUTDIR writes small layer blobs.

The layers of image.bats's two-layer image (whiteouts, an opaque directory,
a hard link, a symlink, a fifo, a device, an xattr, an owner), raw and
through three filters; the hostile layers of tests/integration/
image_corpus.py (bombs gzip'd, so that they stay small); and a few escapes
aimed at the fuzzer's canary directory, a sibling of the staging one."""
import bz2, gzip, lzma, os, sys, tarfile

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
    for name, blob in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(blob)


main()
