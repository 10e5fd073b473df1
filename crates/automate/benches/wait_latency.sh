#!/usr/bin/env bash
# Wait-latency benchmark: how long after a window with a known phrase is mapped does `wait` return?
# vmkit (damage-driven, incremental OCR) against a loop in the style of the original runner (vncdotool capture +
# pytesseract on the full frame, once a second), on a 1920x1080 Xvnc desktop, mostly empty and then covered
# by a full-screen document.
#
#   crates/automate/benches/wait_latency.sh [TRIALS]      (default 20)
#
# vmkit runs twice per desktop: as is, and with `--debug` (screenshots, report, the replay recording), which
# shows what recording costs a wait.
#
# The baseline's Python packages (vncdotool, pytesseract, pillow) go into target/bench-venv (not committed);
# pytesseract needs the tesseract command (Debian tesseract-ocr). Both sides run with OMP_THREAD_LIMIT=1, which
# vmkit sets for itself anyway and which makes Tesseract 6x faster on this machine.
set -euo pipefail
cd "$(dirname "$0")/../../.."
trials=${1:-20}
bench=crates/automate/benches
venv=target/bench-venv
"$venv/bin/python" -c 'import vncdotool, pytesseract, PIL' 2>/dev/null || {
    python3 -m venv "$venv" && "$venv/bin/pip" install -q vncdotool pytesseract pillow
}
cargo build -q --release -p automate --example wait_latency
export OMP_THREAD_LIMIT=1

work=$(mktemp -d)
display=:$((300 + RANDOM % 300))
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
Xvnc "$display" -geometry 1920x1080 -depth 24 -SecurityTypes None -localhost -nolisten tcp -rfbport "$port" \
    >"$work/xvnc.log" 2>&1 &
pids=("$!")
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done

measure() {
    local desktop=$1
    echo "== $desktop desktop, $trials trials"
    target/release/examples/wait_latency "127.0.0.1:$port" "$display" "$trials" "$work" | tee "$work/vmkit-$desktop.txt"
    target/release/examples/wait_latency "127.0.0.1:$port" "$display" "$trials" "$work" --debug |
        tee "$work/vmkit-debug-$desktop.txt"
    rm -rf "$work/debug"
    (cd "$bench" && DISPLAY="$display" "../../../$venv/bin/python" baseline_wait.py "127.0.0.1::$port" "$display" \
        "$trials" "$work") | tee "$work/baseline-$desktop.txt"
}

measure empty
DISPLAY="$display" python3 "$bench/fill_desktop.py" 1920 1080 /usr/share/common-licenses/GPL-3 &
pids+=("$!")
sleep 3
measure full

echo
echo "== summary (latency from the window being mapped to the wait returning)"
for desktop in empty full; do
    echo "$desktop: vmkit    $(grep SUMMARY "$work/vmkit-$desktop.txt" | cut -d' ' -f2-)"
    echo "$desktop: vmkit with --debug $(grep SUMMARY "$work/vmkit-debug-$desktop.txt" | cut -d' ' -f2-)"
    echo "$desktop: baseline $(grep SUMMARY "$work/baseline-$desktop.txt" | cut -d' ' -f2-)"
done
