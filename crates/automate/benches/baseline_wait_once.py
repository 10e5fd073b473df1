#!/usr/bin/env python3
"""One runner of the concurrent benchmark's baseline: the original runner's loop (capture the whole screen with
vncdotool, pytesseract on the full frame, look for the phrase, sleep a second), waiting for one phrase, in a
fresh process. Prints `PASSED <seconds since the epoch>` when it sees the phrase.

Usage: baseline_wait_once.py HOST::PORT PHRASE WORKFILE
"""

import sys
import time

import pytesseract
from PIL import Image
from vncdotool import api

server, phrase, shot = sys.argv[1], sys.argv[2], sys.argv[3]
client = api.connect(server)
started = time.time()
while time.time() - started < 300:
    client.captureScreen(shot)
    data = pytesseract.image_to_data(Image.open(shot), output_type=pytesseract.Output.DICT)
    words = [w for w, c in zip(data["text"], data["conf"]) if w.strip() and float(c) >= 30]
    if phrase.lower() in " ".join(words).lower():
        print(f"PASSED {time.time():.6f}", flush=True)
        break
    time.sleep(1.0)
else:
    print("FAILED not found within 300 s", flush=True)
client.disconnect()
api.shutdown()
