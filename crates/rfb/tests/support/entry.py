# A text entry for vmkit's typing tests: a Tk window at the top-left corner of the screen (there is no window
# manager) holding one Entry. Enter writes the entry's content, UTF-8, to the file named by argv[1] and exits.
# argv[2] is the window title.
import sys
import tkinter as tk

out, title = sys.argv[1], sys.argv[2]
root = tk.Tk()
root.title(title)
root.geometry("900x60+0+0")
entry = tk.Entry(root, font=("DejaVu Sans Mono", 10))
entry.pack(fill="both", expand=True)
entry.focus_set()


def done(_event):
    with open(out, "w", encoding="utf-8") as f:
        f.write(entry.get())
    root.destroy()


entry.bind("<Return>", done)
root.mainloop()
