#!/usr/bin/env python3
"""Shows a small dialog with a phrase after a delay, at a given position, and records when X mapped it.

Usage: phrase_window.py PHRASE DELAY_SECONDS X Y OUT_FILE

The window is built hidden first, so the delay is not spent starting Tk; when it is shown, the wall-clock time
of its <Map> event (time.time(), CLOCK_REALTIME) is written to OUT_FILE. It stays until killed.
"""

import sys
import time
import tkinter as tk

phrase, delay, x, y, out = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
root = tk.Tk()
root.withdraw()
root.title("vmkit wait benchmark")
root.geometry(f"560x150+{x}+{y}")
root.configure(background="#ececec")
tk.Label(root, text=phrase, font=("DejaVu Sans", 18), background="#ececec").pack(expand=True)
tk.Button(root, text="OK", font=("DejaVu Sans", 14)).pack(pady=10)
written = False


def mapped(_event):
    global written
    if not written:
        written = True
        with open(out, "w") as f:
            f.write(f"{time.time():.6f}\n")


root.bind("<Map>", mapped)
root.update_idletasks()
root.after(int(delay * 1000), root.deiconify)
root.mainloop()
