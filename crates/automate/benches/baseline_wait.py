#!/usr/bin/env python3
"""The baseline of the wait-latency benchmark: a loop in the style of the original runner.

Every second: capture the whole screen with vncdotool (to a PNG, as the original did), run pytesseract on the
full frame, look for the phrase; sleep a second between polls. Unlike the original (which compared single
words and so never matched a multi-word phrase), the phrase is looked for in the words joined by spaces, so the
baseline can succeed at all.

Usage: baseline_wait.py HOST::PORT DISPLAY TRIALS WORKDIR
Prints one line per trial and a JSON summary line at the end.
"""

import json
import os
import random
import statistics
import subprocess
import sys
import time

import pytesseract
from PIL import Image
from vncdotool import api

from phrases import PHRASES, position

server, display, trials, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
here = os.path.dirname(os.path.abspath(__file__))
env = dict(os.environ, DISPLAY=display)
client = api.connect(server)
shot = os.path.join(work, "baseline.png")
latencies, ocr_calls, idle_calls, misses = [], 0, 0, 0

for k in range(trials + 1):  # trial 0 warms up and is not counted
    phrase = PHRASES[k % len(PHRASES)]
    delay = random.uniform(1.0, 3.0)
    mark = os.path.join(work, f"baseline-map-{k}")
    x, y = position(k)
    helper = subprocess.Popen(
        [sys.executable, os.path.join(here, "phrase_window.py"), phrase, f"{delay}", str(x), str(y), mark], env=env
    )
    started = time.time()
    found_at = None
    while time.time() - started < 60:
        client.captureScreen(shot)
        data = pytesseract.image_to_data(Image.open(shot), output_type=pytesseract.Output.DICT)
        ocr_calls += 1
        if not os.path.exists(mark):
            idle_calls += 1
        words = [w for w, c in zip(data["text"], data["conf"]) if w.strip() and float(c) >= 30]
        if phrase.lower() in " ".join(words).lower():
            found_at = time.time()
            break
        time.sleep(1.0)
    helper.kill()
    helper.wait()
    if k == 0:
        continue
    if found_at is None or not os.path.exists(mark):
        misses += 1
        print(f"trial {k}: not found within 60 s", flush=True)
        continue
    with open(mark) as f:
        mapped = float(f.read())
    latencies.append((found_at - mapped) * 1000)
    print(f"trial {k}: {latencies[-1]:.0f} ms", flush=True)
    time.sleep(0.5)

client.disconnect()
api.shutdown()
summary = {
    "trials": trials,
    "found": len(latencies),
    "misses": misses,
    "median_ms": statistics.median(latencies) if latencies else None,
    "p90_ms": sorted(latencies)[int(len(latencies) * 0.9) - 1] if len(latencies) >= 10 else None,
    "ocr_calls": ocr_calls,
    "ocr_calls_before_the_window": idle_calls,
}
print("SUMMARY " + json.dumps(summary), flush=True)
