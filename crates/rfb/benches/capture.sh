#!/usr/bin/env bash
# Capture benchmark: vmkit's rfb client against vncdotool, same Xvnc (1920x1080), a noisy screen and a dark one.
#
#   crates/rfb/benches/capture.sh [VNCDOTOOL_VENV]
#
# VNCDOTOOL_VENV (default target/bench-venv) is created with `pip install vncdotool` if missing. Needs Xvnc,
# python3-tk and hyperfine. Prints hyperfine tables (connect + first full frame + write a PPM, fresh process
# each run) and the kept-connection figures (full-screen refreshes over one connection). Both sides write an
# uncompressed image: PPM for vmkit's example, BMP for vncdotool (which cannot write PPM).
set -euo pipefail
cd "$(dirname "$0")/../../.."
venv=${1:-target/bench-venv}
[ -x "$venv/bin/vncdo" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q vncdotool; }
cargo build -q --release -p rfb --example capture
capture=target/release/examples/capture

work=$(mktemp -d)
display=:$((300 + RANDOM % 300))
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
Xvnc "$display" -geometry 1920x1080 -depth 24 -SecurityTypes None -localhost -nolisten tcp -rfbport "$port" \
    >"$work/xvnc.log" 2>&1 &
xvnc=$!
pids=("$xvnc")
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done

run() {
    local label=$1
    echo "== $label screen"
    hyperfine -N --warmup 2 --runs "${RUNS:-15}" \
        -n "vmkit rfb (capture example)" "$capture 127.0.0.1:$port $work/vmkit.ppm" \
        -n "vncdotool capture" "$venv/bin/vncdo -s 127.0.0.1::$port capture $work/vncdo.bmp" \
        -n "vncdotool --delay=0 capture" "$venv/bin/vncdo --delay=0 -s 127.0.0.1::$port capture $work/vncdo.bmp"
    "$capture" "127.0.0.1:$port" "$work/vmkit.ppm" --repeat "${REPEAT:-30}"
    "$venv/bin/python" crates/rfb/benches/vncdotool_kept.py "127.0.0.1::$port" "${REPEAT:-30}"
}

run dark
python3 - "$work/noise.ppm" <<'PY'
import os, sys
w, h = 1920, 1080
with open(sys.argv[1], "wb") as f:
    f.write(b"P6\n%d %d\n255\n" % (w, h))
    f.write(os.urandom(w * h * 3))
PY
DISPLAY=$display python3 crates/rfb/tests/support/image.py "$work/noise.ppm" noise >"$work/tk.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do DISPLAY=$display xdotool search --onlyvisible --name noise >/dev/null 2>&1 && break; sleep 0.05; done
sleep 1
run noisy
