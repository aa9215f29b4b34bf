# Helpers for the GIMP batch scripts test_concurrent.py and soak.py (run in
# gimp-console-3.0's python-fu-eval interpreter, which imports this from
# /src/gimp-ddpm/tests/gimp): calling the plug-in's procedures, test images,
# their pixels.
import hashlib
import time

import gi
gi.require_version('Gimp', '3.0')
gi.require_version('Gegl', '0.4')
from gi.repository import Gimp, Gegl  # noqa: E402

pdb = Gimp.get_pdb()


def run(proc_name, image=None, drawables=None, **props):
    """Runs a procedure non-interactively; returns (ok, result values,
    start time, end time)."""
    proc = pdb.lookup_procedure(proc_name)
    cfg = proc.create_config()
    cfg.set_property('run-mode', Gimp.RunMode.NONINTERACTIVE)
    if image is not None:
        cfg.set_property('image', image)
    if drawables is not None:
        cfg.set_core_object_array('drawables', drawables)
    for k, v in props.items():
        cfg.set_property(k.replace('_', '-'), v)
    t0 = time.time()
    res = proc.run(cfg)
    t1 = time.time()
    return res.index(0) == Gimp.PDBStatusType.SUCCESS, res, t0, t1


def fmt(layer):
    if layer.is_gray():
        return "Y'A u8" if layer.has_alpha() else "Y' u8"
    return "R'G'B'A u8" if layer.has_alpha() else "R'G'B' u8"


def pattern_image(w, h, alpha=True, shift=0):
    """A new RGB(A) image with one layer of a smooth colour pattern."""
    img = Gimp.Image.new(w, h, Gimp.ImageBaseType.RGB)
    kind = Gimp.ImageType.RGBA_IMAGE if alpha else Gimp.ImageType.RGB_IMAGE
    layer = Gimp.Layer.new(img, 'base', w, h, kind, 100, Gimp.LayerMode.NORMAL)
    img.insert_layer(layer, None, 0)
    ch = 4 if alpha else 3
    data = bytearray()
    for y in range(h):
        for x in range(w):
            px = [(x * 255) // max(1, w - 1), (y * 255) // max(1, h - 1),
                  ((x + y) * 3 + shift) % 256, 128 + (x * 7 + y * 3) % 128]
            data.extend(px[:ch])
    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), fmt(layer), bytes(data))
    buf.flush()
    layer.update(0, 0, w, h)
    return img, layer


def pixels(layer):
    w, h = layer.get_width(), layer.get_height()
    buf = layer.get_buffer()
    return bytes(buf.get(Gegl.Rectangle.new(0, 0, w, h), 1.0, fmt(layer),
                         Gegl.AbyssPolicy.NONE))


def digest(layers):
    """sha256 over the layers' names, sizes and pixels, in stack order."""
    h = hashlib.sha256()
    for layer in layers:
        h.update(('%s %dx%d\n' % (layer.get_name(), layer.get_width(),
                                  layer.get_height())).encode())
        h.update(pixels(layer))
    return h.hexdigest()
