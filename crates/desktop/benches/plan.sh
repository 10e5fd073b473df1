#!/usr/bin/env bash
# Benchmark of `vmkit desktop plan` over a 50-VM config (parse + generate + validate XML + compare with libvirt),
# with the per-file schema check virt-xml-validate does as the reference point.
#
#   crates/desktop/benches/plan.sh            (needs hyperfine, libvirtd on qemu:///system, root)
#
# The 50 VMs mix every kind of the examples: Windows with TPM and Secure Boot, Linux with two virtiofs shares,
# pinned VMs, VNC-only servers, PCI passthrough. They are defined in a storage pool of their own under a
# temporary directory and undefined again at the end (the host's own domains are not touched).
set -euo pipefail
cd "$(dirname "$0")/../../.."

cargo build --release -p vmkit
V="$PWD/target/release/vmkit"
URI=qemu:///system
if ! virsh -c "$URI" version >/dev/null 2>&1; then
  virtlogd -d || true
  libvirtd -d
  sleep 3
fi

work=$(mktemp -d /tmp/vmkit-bench-XXXXXX)
chmod 755 "$work"
tag="vmkit-bench-$$"
cfg="$work/fifty.toml"
mkdir -p "$work/share-a" "$work/share-b" "$work/xml"

cleanup() {
  for i in $(seq -w 1 50); do
    virsh -c "$URI" undefine "$tag-$i" --nvram >/dev/null 2>&1 || true
  done
  virsh -c "$URI" pool-destroy "$tag" >/dev/null 2>&1 || true
  virsh -c "$URI" pool-undefine "$tag" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

{
  echo 'enable = true'
  echo "defaultStoragePool = \"$tag\""
  echo "defaultStoragePath = \"$work/pool\""
  for i in $(seq -w 1 50); do
    echo
    echo "[vms.$tag-$i]"
    echo 'memory = "4G"'
    echo 'vcpus = 4'
    echo 'diskSize = "40G"'
    case $((10#$i % 5)) in
      0) echo 'osType = "windows"'; echo 'installMedia = ["/var/lib/libvirt/boot/win11.iso"]' ;;
      1) echo "sharedFolders = { a = \"$work/share-a\", b = \"$work/share-b\" }" ;;
      2) echo 'cpuPinning = ["2", "3", "4", "5"]'; echo 'emulatorPinning = "0-1"' ;;
      3) echo 'display = "vnc"'; echo 'firmware = "bios"'; echo "extraDevices = '<watchdog model=\"i6300esb\"/>'" ;;
      4) printf 'pciDevices = ["0000:%02x:00.0"]\n' "$((10#$i))"; echo 'network = "none"' ;;
    esac
  done
} > "$cfg"

# The reference: the 50 domain XMLs checked one file at a time, as virt-xml-validate does.
"$V" desktop xml "$cfg" --skip-path-checks | csplit -s -z -f "$work/xml/d" -b '%02d.xml' - '/^<domain /' '{*}'
ls "$work/xml" | wc -l

hyperfine --warmup 2 --export-markdown "$work/before.md" \
  -n 'xml (parse + generate)' "$V desktop xml $cfg --skip-path-checks" \
  -n 'xml --validate (+ libvirt schema, one xmllint run)' "$V desktop xml $cfg --skip-path-checks --validate" \
  -n 'plan, nothing defined yet (50 defines + volumes)' "$V desktop plan $cfg --skip-path-checks --connect $URI" \
  -n 'plan --validate, nothing defined yet' "$V desktop plan $cfg --skip-path-checks --connect $URI --validate" \
  -n 'reference: virt-xml-validate x50' "for f in $work/xml/*.xml; do virt-xml-validate \$f domain >/dev/null; done"

"$V" desktop apply "$cfg" --skip-path-checks --connect "$URI" | tail -1
hyperfine --warmup 2 --export-markdown "$work/after.md" \
  -n 'plan --validate, 50 defined (no changes)' "$V desktop plan $cfg --skip-path-checks --connect $URI --validate" \
  -n 'apply, 50 defined (no changes)' "$V desktop apply $cfg --skip-path-checks --connect $URI"

cat "$work/before.md" "$work/after.md"
