#!/bin/sh
# Writes seed corpora for the iso_image and wim_header fuzz targets into corpus/ (not in git): small UDF, Joliet
# and plain ISO9660 images holding a two-edition install.wim (genisoimage, wimlib-imagex from wimtools), the WIM
# and a solid ESD, and their XML resources.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$here/corpus/iso_image" "$here/corpus/wim_header" "$work/img/Windows" "$work/iso/sources" "$work/iso/boot"
echo "stand-in" > "$work/img/Windows/a.txt"
wimlib-imagex capture "$work/img" "$work/iso/sources/install.wim" "Windows 11 Home" >/dev/null
wimlib-imagex append "$work/img" "$work/iso/sources/install.wim" "Windows 11 Pro" >/dev/null
wimlib-imagex info "$work/iso/sources/install.wim" 2 --image-property WINDOWS/EDITIONID=Professional \
    --image-property WINDOWS/ARCH=9 --image-property WINDOWS/VERSION/BUILD=26100 >/dev/null
wimlib-imagex export "$work/iso/sources/install.wim" all "$work/install.esd" --solid >/dev/null
cp "$work/iso/sources/install.wim" "$work/install.esd" "$here/corpus/wim_header/"
mkdir -p "$work/iso/viostor/w11/amd64"
echo "[Version]" > "$work/iso/viostor/w11/amd64/viostor.inf"
genisoimage -quiet -udf -iso-level 3 -V UDF -o "$here/corpus/iso_image/udf.iso" "$work/iso"
genisoimage -quiet -J -V JOLIET -o "$here/corpus/iso_image/joliet.iso" "$work/iso"
genisoimage -quiet -V PLAIN -o "$here/corpus/iso_image/plain.iso" "$work/iso"
ls -l "$here/corpus/iso_image" "$here/corpus/wim_header"
