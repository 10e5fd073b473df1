#!/usr/bin/env python3
"""Covers the whole screen with a document: a full-screen Tk text view of a long licence text.

Usage: fill_desktop.py WIDTH HEIGHT TEXT_FILE
"""

import sys
import tkinter as tk

w, h, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
root = tk.Tk()
root.title("vmkit wait benchmark document")
root.geometry(f"{w}x{h}+0+0")
text = tk.Text(root, font=("DejaVu Sans Mono", 11), wrap="word", background="white", borderwidth=0)
with open(path, encoding="utf-8", errors="replace") as f:
    text.insert("1.0", f.read())
# No caret: a blinking insertion cursor would change the screen twice a second.
text.configure(state="disabled", insertwidth=0, insertofftime=0)
text.pack(fill="both", expand=True)
root.mainloop()
