# Shows a PPM image at the top-left corner of the screen, pixel for pixel (no window manager, no border), for
# vmkit's pixel-accuracy tests and capture benchmark. argv: image.ppm title
import sys
import tkinter as tk

path, title = sys.argv[1], sys.argv[2]
root = tk.Tk()
root.title(title)
image = tk.PhotoImage(file=path)
root.geometry(f"{image.width()}x{image.height()}+0+0")
label = tk.Label(root, image=image, borderwidth=0, highlightthickness=0, padx=0, pady=0)
label.pack()
root.mainloop()
