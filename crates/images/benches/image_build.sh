#!/usr/bin/env bash
# Benchmarks of `vmkit image build` / `vmkit image test` (BENCHMARKS.md, section "Image builds").
#
#   1. boot-to-SSH: vmkit's boot of a built image (overlay, accelerator choice, QEMU from the typed model, sshd's
#      banner polled every 0.1 s, then a login with vmkit's client) against a bare QEMU boot of the same image
#      with the same argv (the output's `run` script, `-snapshot`, a free port), its banner polled every 0.1 s,
#      then a login with OpenSSH —
#      same image, same accelerator. The difference is vmkit's overhead; "vmkit to QEMU up" is its fixed part
#      (overlay, cached KVM-probe verdict, QEMU start and QMP handshake).
#   2. cache-hit rebuild: `vmkit image build` of an unchanged recipe, with hyperfine.
#
# Usage: crates/images/benches/image_build.sh [RUNS]     (default 3 boots each; needs hyperfine, openssh-client)
# Env: OUT (output dir, default target/bench-images/debian-12), VMKIT_CACHE_DIR (default the testbed cache),
#      VMKIT (a vmkit binary to use instead of building target/release/vmkit).
set -euo pipefail
cd "$(dirname "$0")/../../.."
RUNS=${1:-3}
OUT=${OUT:-target/bench-images/debian-12}
export VMKIT_CACHE_DIR=${VMKIT_CACHE_DIR:-$PWD/target/testbed-cache/vmkit-cache}
RECIPE=examples/debian-12.toml

if [ -z "${VMKIT:-}" ]; then
    cargo build --release -q -p vmkit
    VMKIT=$PWD/target/release/vmkit
fi
mkdir -p "$(dirname "$OUT")"
"$VMKIT" image build "$RECIPE" --out "$OUT" --quiet >/dev/null
echo "image: $OUT ($(du -sh "$OUT/disk.qcow2" | cut -f1) disk), accel $(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['machine']['accel'])" "$OUT/manifest.json")"

now() { date +%s.%N; }
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

bare_boot() {
    local port run pid start t
    port=$(free_port)
    run=$(mktemp "$OUT/.bench-run.XXXXXX")
    sed "s/hostfwd=tcp:127.0.0.1:[0-9]*-:22/hostfwd=tcp:127.0.0.1:$port-:22/" "$OUT/run" > "$run"
    start=$(now)
    sh "$run" -snapshot </dev/null >/dev/null 2>&1 &
    pid=$!
    # The best a hand-written loop can do: poll for sshd's banner (QEMU's user-mode network accepts connections
    # before the guest listens, so a plain `ssh` attempt can hang for its whole ConnectTimeout), then log in.
    until timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && head -c 4 <&3" 2>/dev/null | grep -q SSH-; do
        sleep 0.1
    done
    until ssh -q -i "$OUT/id_ed25519" -p "$port" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
            -o BatchMode=yes -o ConnectTimeout=30 agent@127.0.0.1 true 2>/dev/null; do
        sleep 0.1
    done
    t=$(echo "$(now) - $start" | bc)
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$run"
    echo "$t"
}

vmkit_boot() {
    "$VMKIT" image test "$OUT" --no-cache --json --quiet |
        python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["passed"], r; print(r["bootToSsh"], r["qemuUp"])'
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "== boot to SSH, $RUNS runs each, alternating (seconds)"
bare=(); vm=(); up=(); diff=()
for i in $(seq 1 "$RUNS"); do
    b=$(bare_boot); read -r v u < <(vmkit_boot)
    bare+=("$b"); vm+=("$v"); up+=("$u"); diff+=("$(echo "$v - $b" | bc)")
    printf 'run %d: bare QEMU %6.1f   vmkit %6.1f   difference %+6.1f   (vmkit to QEMU up %.2f)\n' \
        "$i" "$b" "$v" "${diff[-1]}" "$u"
done
mb=$(printf '%s\n' "${bare[@]}" | median); mv=$(printf '%s\n' "${vm[@]}" | median)
md=$(printf '%s\n' "${diff[@]}" | median); mu=$(printf '%s\n' "${up[@]}" | median)
printf 'median: bare QEMU %.1f s, vmkit %.1f s; median paired difference %+.1f s; vmkit to QEMU up %.2f s\n' \
    "$mb" "$mv" "$md" "$mu"

echo "== cache-hit rebuild"
hyperfine --warmup 3 --runs 30 -N "$VMKIT image build $RECIPE --out $OUT --quiet"
