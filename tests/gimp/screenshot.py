# Saves the X display (Xvfb, no window manager) as a PNG cropped to what is
# drawn on it: GIMP's window with the plug-in's dialog on top.  Run inside
# the trixie root by tests/gimp/screenshots.sh.   screenshot.py OUT.png
import sys

import gi
gi.require_version('Gdk', '3.0')
from gi.repository import Gdk  # noqa: E402

root = Gdk.get_default_root_window()
w, h = root.get_width(), root.get_height()
pb = Gdk.pixbuf_get_from_window(root, 0, 0, w, h)
px, stride, n = pb.get_pixels(), pb.get_rowstride(), pb.get_n_channels()
xs = ys = None
for y in range(0, h):
    row = px[y * stride:y * stride + w * n]
    if any(row):
        last = max(i for i in range(0, w * n, n) if any(row[i:i + n])) // n
        xs = last if xs is None else max(xs, last)
        ys = y
if xs is not None:
    pb = pb.new_subpixbuf(0, 0, xs + 1, ys + 1)
pb.savev(sys.argv[1], 'png', [], [])
print('saved %s (%dx%d)' % (sys.argv[1], pb.get_width(), pb.get_height()))
