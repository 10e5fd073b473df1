#!/usr/bin/env bash
# Concurrent wait benchmark: N runners, each a fresh process with a one-step script (`wait` for a phrase), drive N
# text-dense screens at once; on every screen a dialog with the runner's phrase appears at the same moment,
# 1.5–3 s (random per trial) after the runners start. Latency = the runner's step passed − its dialog's X Map
# event. Three sides, one after the other against the same servers:
#   vmkit              changes first (the default): what was on the screen is read at idle priority
#   vmkit-full-first   the first look reads the whole screen before anything else (`--full-first`)
#   baseline           the original runner's loop: vncdotool full capture + pytesseract, once a second
#
#   crates/automate/benches/concurrent_wait.sh [N] [WIDTH] [HEIGHT] [TRIALS] [SIDES]
#       defaults: 8 1920 1080 3 "vmkit vmkit-full-first baseline"
#
# Screens are Xvnc desktops covered by a full-screen Tk text view of the GPL-3 text in DejaVu Sans Mono 11
# (fill_desktop.py). Both vmkit sides are release builds of crates/automate/examples/wait_once.rs; all sides run
# with OMP_THREAD_LIMIT=1. Needs Debian tigervnc-standalone-server, python3-tk, tesseract-ocr; the baseline's
# Python packages go into target/bench-venv (not committed).
set -euo pipefail
cd "$(dirname "$0")/../../.."
n=${1:-8}
width=${2:-1920}
height=${3:-1080}
trials=${4:-3}
sides=${5:-vmkit vmkit-full-first baseline}
bench=crates/automate/benches
venv=target/bench-venv
if [[ " $sides " == *" baseline "* ]]; then
    "$venv/bin/python" -c 'import vncdotool, pytesseract, PIL' 2>/dev/null || {
        python3 -m venv "$venv" && "$venv/bin/pip" install -q vncdotool pytesseract pillow
    }
fi
cargo build -q --release -p automate --example wait_once
export OMP_THREAD_LIMIT=1

work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

displays=()
ports=()
for i in $(seq 0 $((n - 1))); do
    display=:$((300 + RANDOM % 300))
    while [[ " ${displays[*]} " == *" $display "* ]] || [ -e "/tmp/.X11-unix/X${display#:}" ]; do
        display=:$((300 + RANDOM % 300))
    done
    port=$(free_port)
    Xvnc "$display" -geometry "${width}x${height}" -depth 24 -SecurityTypes None -localhost -nolisten tcp \
        -rfbport "$port" >"$work/xvnc-$i.log" 2>&1 &
    pids+=("$!")
    displays+=("$display")
    ports+=("$port")
done
for i in $(seq 0 $((n - 1))); do
    for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/${ports[$i]}") 2>/dev/null && break; sleep 0.05; done
    DISPLAY="${displays[$i]}" python3 "$bench/fill_desktop.py" "$width" "$height" /usr/share/common-licenses/GPL-3 &
    pids+=("$!")
done
sleep 5

run_side() {
    local side=$1 trial=$2
    local delay
    delay=$(python3 -c 'import random; print(f"{random.uniform(1.5, 3.0):.3f}")')
    local start=$(($(date +%s%N) / 1000))
    local helpers=() runners=()
    for i in $(seq 0 $((n - 1))); do
        local k=$((trial * n + i))
        IFS=$'\t' read -r phrase x y < <(python3 "$bench/phrases.py" "$k")
        # Positions are for 1920x1080; keep the 560x150 dialog on smaller screens.
        x=$((x < width - 600 ? x : width - 600))
        y=$((y < height - 200 ? y : height - 200))
        rm -f "$work/map-$side-$i"
        # The window is due `delay` after the common start, however long its own start took.
        local left
        left=$(python3 -c "import time; print(max(0.0, $start / 1e6 + $delay - time.time() - 0.25))")
        DISPLAY="${displays[$i]}" python3 "$bench/phrase_window.py" "$phrase" "$left" "$x" "$y" \
            "$work/map-$side-$i" &
        helpers+=("$!")
        case $side in
            vmkit) target/release/examples/wait_once "127.0.0.1:${ports[$i]}" "$phrase" >"$work/out-$side-$i" & ;;
            vmkit-full-first)
                target/release/examples/wait_once "127.0.0.1:${ports[$i]}" "$phrase" --full-first \
                    >"$work/out-$side-$i" &
                ;;
            baseline)
                (cd "$bench" && "../../../$venv/bin/python" baseline_wait_once.py "127.0.0.1::${ports[$i]}" \
                    "$phrase" "$work/shot-$i.png") >"$work/out-$side-$i" &
                ;;
        esac
        runners+=("$!")
    done
    for r in "${runners[@]}"; do wait "$r" || true; done
    kill "${helpers[@]}" 2>/dev/null || true
    for h in "${helpers[@]}"; do wait "$h" 2>/dev/null || true; done
    for i in $(seq 0 $((n - 1))); do
        local passed mapped
        passed=$(awk '/^PASSED/ {print $2}' "$work/out-$side-$i")
        mapped=$(cat "$work/map-$side-$i" 2>/dev/null || echo "")
        if [ -z "$passed" ] || [ -z "$mapped" ]; then
            echo "$side trial $trial runner $i: FAILED ($(head -c 200 "$work/out-$side-$i"))"
            continue
        fi
        python3 -c "print(f'{($passed - $mapped) * 1000:.1f}')" >>"$work/lat-$side"
        echo "$side trial $trial runner $i: $(tail -1 "$work/lat-$side") ms $(cut -d' ' -f3- "$work/out-$side-$i")"
    done
    sleep 1
}

for side in $sides; do
    for trial in $(seq 1 "$trials"); do
        run_side "$side" "$trial"
    done
done

echo
echo "== summary: $n runners, ${width}x${height} text-dense screens, $trials trials (latency from the dialog being mapped to the wait passing)"
for side in $sides; do
    [ -s "$work/lat-$side" ] || { echo "$side: no result"; continue; }
    python3 - "$work/lat-$side" "$side" <<'PY'
import statistics, sys
xs = sorted(float(l) for l in open(sys.argv[1]) if l.strip())
p90 = xs[max(0, int(len(xs) * 0.9) - 1)]
print(f"{sys.argv[2]}: n={len(xs)} median {statistics.median(xs):.1f} ms, p90 {p90:.1f} ms, min {xs[0]:.1f}, max {xs[-1]:.1f}")
PY
done
