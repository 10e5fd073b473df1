#!/usr/bin/env python3
"""A multi-screen, installer-like Tk application for vmkit's automation engine tests.

It imitates the screens an OS installer or setup assistant shows, so a YAML script can be driven through it end
to end over VNC: a welcome screen, a licence with both "I Agree" and "I Disagree", an optional sign-in screen
that can be skipped ("Set Up Later"), a "Create a Computer Account" form (full name, account name, password,
verify password), a progress screen that takes a few seconds, and a final screen.

Everything the app receives is written as JSON to the file given with --record (rewritten atomically after
every screen), so a test can assert each value, including passwords with symbols. Exit status: 0 after "Done",
3 after "I Disagree", 4 if the two passwords differ when continuing from the form.
"""

import argparse
import json
import os
import sys
import tkinter as tk
from tkinter import ttk

FONT = ("DejaVu Sans", 16)
TITLE_FONT = ("DejaVu Sans", 24, "bold")


class Installer:
    def __init__(self, root, record_path, progress_seconds):
        self.root = root
        self.record_path = record_path
        self.progress_seconds = progress_seconds
        self.record = {"screens": [], "licence": None, "sign_in": None, "account": None, "finished": False}
        self.frame = None
        root.title("vmkit test installer")
        root.geometry("900x640+40+40")
        root.configure(background="#f4f4f4")
        self.welcome()

    # -- helpers ---------------------------------------------------------------------------------------------

    def save(self):
        tmp = self.record_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.record, f, ensure_ascii=False, indent=2)
        os.replace(tmp, self.record_path)

    def screen(self, name, title):
        if self.frame is not None:
            self.frame.destroy()
        self.record["screens"].append(name)
        self.save()
        self.frame = tk.Frame(self.root, background="#f4f4f4", padx=40, pady=30)
        self.frame.pack(fill="both", expand=True)
        tk.Label(self.frame, text=title, font=TITLE_FONT, background="#f4f4f4").pack(anchor="w", pady=(0, 24))
        return self.frame

    def buttons(self, parent, *specs):
        row = tk.Frame(parent, background="#f4f4f4")
        row.pack(side="bottom", anchor="e", pady=10)
        for text, command in specs:
            tk.Button(row, text=text, font=FONT, command=command, padx=18, pady=6).pack(side="left", padx=12)

    # -- screens ---------------------------------------------------------------------------------------------

    def welcome(self):
        f = self.screen("welcome", "Welcome to the Installer")
        tk.Label(f, text="This assistant sets up your computer in a few steps.", font=FONT, background="#f4f4f4").pack(anchor="w")
        self.buttons(f, ("Continue", self.licence))

    def licence(self):
        f = self.screen("licence", "Software Licence Agreement")
        body = (
            "Please read the licence below. You must agree to its terms\n"
            "before you can continue with the installation.\n\n"
            "1. You may use this software for testing.\n"
            "2. There is no warranty of any kind."
        )
        tk.Label(f, text=body, font=FONT, justify="left", background="#f4f4f4").pack(anchor="w")
        self.buttons(f, ("I Disagree", self.disagree), ("I Agree", self.agree))

    def disagree(self):
        self.record["licence"] = "disagreed"
        self.save()
        self.root.after(100, lambda: sys.exit(3))

    def agree(self):
        self.record["licence"] = "agreed"
        self.sign_in()

    def sign_in(self):
        f = self.screen("sign_in", "Sign In with Your Account")
        tk.Label(f, text="Signing in is optional. You can do it later in Settings.", font=FONT, background="#f4f4f4").pack(anchor="w")
        self.buttons(f, ("Set Up Later", self.skip_sign_in), ("Sign In", self.do_sign_in))

    def skip_sign_in(self):
        self.record["sign_in"] = "later"
        self.account()

    def do_sign_in(self):
        self.record["sign_in"] = "signed_in"
        self.account()

    def account(self):
        f = self.screen("account", "Create a Computer Account")
        grid = tk.Frame(f, background="#f4f4f4")
        grid.pack(anchor="w")
        self.fields = {}
        for row, (key, label, secret) in enumerate(
            [
                ("full_name", "Full Name", False),
                ("account_name", "Account Name", False),
                ("password", "Password", True),
                ("verify_password", "Verify Password", True),
            ]
        ):
            tk.Label(grid, text=label, font=FONT, background="#f4f4f4").grid(row=row, column=0, sticky="w", pady=10)
            entry = tk.Entry(grid, font=FONT, width=28, show="•" if secret else "")
            entry.grid(row=row, column=1, sticky="w", padx=(30, 0), pady=10)
            self.fields[key] = entry
        self.buttons(f, ("Continue", self.create_account))

    def create_account(self):
        values = {k: e.get() for k, e in self.fields.items()}
        self.record["account"] = values
        self.save()
        if values["password"] != values["verify_password"]:
            self.root.after(100, lambda: sys.exit(4))
            return
        self.progress()

    def progress(self):
        f = self.screen("progress", "Installing")
        self.status = tk.Label(f, text="Copying files, please wait...", font=FONT, background="#f4f4f4")
        self.status.pack(anchor="w", pady=(0, 20))
        self.bar = ttk.Progressbar(f, length=700, maximum=100, mode="determinate")
        self.bar.pack(anchor="w")
        self.started = 0
        steps = 20
        interval = max(1, int(self.progress_seconds * 1000 / steps))

        def tick(i=0):
            self.bar["value"] = i * 100 / steps
            if i < steps:
                self.root.after(interval, tick, i + 1)
            else:
                self.final()

        tick()

    def final(self):
        f = self.screen("final", "Installation Complete")
        tk.Label(f, text="Your computer is ready to use.", font=FONT, background="#f4f4f4").pack(anchor="w")
        self.buttons(f, ("Done", self.done))

    def done(self):
        self.record["finished"] = True
        self.save()
        self.root.after(100, lambda: sys.exit(0))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", required=True, help="JSON file the received values are written to")
    parser.add_argument("--progress-seconds", type=float, default=4.0, help="how long the progress screen takes")
    args = parser.parse_args()
    root = tk.Tk()
    Installer(root, args.record, args.progress_seconds)
    root.mainloop()


if __name__ == "__main__":
    main()
