#!/bin/sh
# Benchmark: listing the editions of a ~5 GB Windows-like ISO with vmkit (header + XML only) against
# `wimlib-imagex info` on the extracted install.wim and `7z l` on the same ISO.
#
# Makes the test media once under "${CARGO_TARGET_DIR:-target}/bench-media" (never committed): a UDF ISO made by
# genisoimage holding sources/install.wim of ~4.6 GB — one image captured from a file of random (incompressible)
# bytes, stored uncompressed, plus two small images — so the XML sits at the end of a 4.6 GB file, past the
# 4 GiB mark, split over several UDF extents.
#
# vmkit's side is the media crate's `iso_ls --editions` example (the code `vmkit image windows-editions` runs,
# without the CLI around it), built in release.
# Needs: wimtools, genisoimage, p7zip-full, hyperfine.
# Usage: crates/media/benches/editions.sh [RUNS]
set -eu
runs=${1:-10}
root=$(cd "$(dirname "$0")/../../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
dir=$target/bench-media
lister=$target/release/examples/iso_ls
mkdir -p "$dir"
if [ ! -f "$dir/win.iso" ]; then
    rm -rf "$dir/tree" "$dir/iso" "$dir/install.wim"
    mkdir -p "$dir/tree/Windows" "$dir/small/Windows" "$dir/iso/sources" "$dir/iso/boot"
    head -c 4600M /dev/urandom > "$dir/tree/Windows/payload.bin"
    echo small > "$dir/small/Windows/readme.txt"
    wimlib-imagex capture "$dir/tree" "$dir/install.wim" "Windows 11 Home" --compress=none
    rm -rf "$dir/tree"
    wimlib-imagex append "$dir/small" "$dir/install.wim" "Windows 11 Pro"
    wimlib-imagex append "$dir/small" "$dir/install.wim" "Windows 11 Education"
    for i in 1:Core 2:Professional 3:Education; do
        wimlib-imagex info "$dir/install.wim" "${i%%:*}" --image-property "WINDOWS/EDITIONID=${i#*:}" \
            --image-property WINDOWS/ARCH=9 --image-property WINDOWS/VERSION/BUILD=26100 >/dev/null
    done
    ln "$dir/install.wim" "$dir/iso/sources/install.wim"
    echo bcd > "$dir/iso/boot/bcd"
    genisoimage -quiet -udf -iso-level 3 -allow-limited-size -V BENCH_WIN -o "$dir/win.iso.part" "$dir/iso"
    rm -rf "$dir/iso"
    mv "$dir/win.iso.part" "$dir/win.iso"
fi
ls -l "$dir/win.iso" "$dir/install.wim"
(cd "$root" && cargo build --release -q -p media --example iso_ls)
"$lister" "$dir/win.iso" --editions --count
hyperfine --warmup 2 --runs "$runs" -N \
    "$lister $dir/win.iso --editions" \
    "wimlib-imagex info $dir/install.wim" \
    "7z l $dir/win.iso"
