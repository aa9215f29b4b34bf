# The plug-in inside a real GIMP 3, through the PDB (run by run-tests.sh in
# gimp-console-3.0's python-fu-eval batch interpreter).  Every check prints
# PASS or FAIL; the summary goes to $DDPM_GIMP_RESULT, because GIMP's exit
# status does not tell whether a batch script failed.
import os
import sys
import time
import traceback

import gi
gi.require_version('Gimp', '3.0')
gi.require_version('Gegl', '0.4')
from gi.repository import Gimp, Gegl, Gio  # noqa: E402

pdb = Gimp.get_pdb()
results = []
timings = []
made = []  # images to delete at the end (no "stray image" notices)


def check(name, cond, why=''):
    results.append((name, bool(cond)))
    print(('PASS ' if cond else 'FAIL ') + name + ('' if cond else ': ' + why), flush=True)


def run(proc_name, image=None, drawables=None, **props):
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
    timings.append((proc_name, time.time() - t0))
    if res.index(0) == Gimp.PDBStatusType.SUCCESS and proc_name == 'plug-in-ddpm-generate':
        made.append(res.index(1))
    return res


def rgba_image(w, h, precision=Gimp.Precision.U8_NON_LINEAR, gray=False, alpha=True):
    base = Gimp.ImageBaseType.GRAY if gray else Gimp.ImageBaseType.RGB
    img = Gimp.Image.new_with_precision(w, h, base, precision)
    made.append(img)
    if gray:
        kind = Gimp.ImageType.GRAYA_IMAGE if alpha else Gimp.ImageType.GRAY_IMAGE
    else:
        kind = Gimp.ImageType.RGBA_IMAGE if alpha else Gimp.ImageType.RGB_IMAGE
    layer = Gimp.Layer.new(img, 'base', w, h, kind, 100, Gimp.LayerMode.NORMAL)
    img.insert_layer(layer, None, 0)
    fill_pattern(layer)
    return img, layer


def fmt(layer):
    if layer.is_gray():
        return "Y'A u8" if layer.has_alpha() else "Y' u8"
    return "R'G'B'A u8" if layer.has_alpha() else "R'G'B' u8"


def fill_pattern(layer, noise=0):
    """A smooth colour pattern (plus Gaussian noise), alpha varying."""
    import random
    rnd = random.Random(7)
    w, h = layer.get_width(), layer.get_height()
    ch = (1 if layer.is_gray() else 3) + (1 if layer.has_alpha() else 0)
    data = bytearray()
    for y in range(h):
        for x in range(w):
            px = [(x * 255) // max(1, w - 1), (y * 255) // max(1, h - 1), ((x + y) * 3) % 256]
            if noise:
                px = [min(255, max(0, int(v + rnd.gauss(0, noise)))) for v in px]
            px = px[:1] if layer.is_gray() else px
            if layer.has_alpha():
                px.append(128 + (x * 7 + y * 3) % 128)
            data.extend(px[:ch])
    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), fmt(layer), bytes(data))
    buf.flush()
    layer.update(0, 0, w, h)


def pixels(layer):
    w, h = layer.get_width(), layer.get_height()
    buf = layer.get_buffer()
    return bytes(buf.get(Gegl.Rectangle.new(0, 0, w, h), 1.0, fmt(layer),
                         Gegl.AbyssPolicy.NONE))


def selection_mask(image, layer):
    """Selection coverage (0..255) over the layer's pixels."""
    ox, oy = layer.get_offsets()[1:]
    w, h = layer.get_width(), layer.get_height()
    sel = image.get_selection()
    if Gimp.Selection.is_empty(image):
        return bytes([255]) * (w * h)
    buf = sel.get_buffer()
    return bytes(buf.get(Gegl.Rectangle.new(ox, oy, w, h), 1.0, 'Y u8',
                         Gegl.AbyssPolicy.NONE))


def compare(name, image, layer, before, after):
    """Outside the selection bit-identical, inside changed, alpha kept."""
    mask = selection_mask(image, layer)
    ch = len(before) // len(mask)
    colour = ch - (1 if layer.has_alpha() else 0)
    outside_same = all(before[i * ch:(i + 1) * ch] == after[i * ch:(i + 1) * ch]
                       for i, m in enumerate(mask) if m == 0)
    inside = [i for i, m in enumerate(mask) if m == 255]
    changed = sum(1 for i in inside if before[i * ch:i * ch + colour] != after[i * ch:i * ch + colour])
    alpha_same = (not layer.has_alpha() or
                  all(before[i * ch + colour] == after[i * ch + colour] for i in range(len(mask))))
    check(name + ': pixels outside the selection unchanged', outside_same)
    check(name + ': pixels inside the selection changed', changed > len(inside) // 2,
          '%d of %d changed' % (changed, len(inside)))
    check(name + ': alpha kept', alpha_same)


OUT = '/tmp/gimp-ddpm-out'


def export(image, name):
    """PNG of the visible image for people to look at (run-tests.sh copies
    them to $DDPM_GIMP_OUT)."""
    os.makedirs(OUT, exist_ok=True)
    copy = image.duplicate()
    copy.flatten()
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, copy,
                   Gio.File.new_for_path(os.path.join(OUT, name)), None)
    copy.delete()


def ok(res):
    return res.index(0) == Gimp.PDBStatusType.SUCCESS


def test_arguments():
    want = {
        'plug-in-ddpm-generate': ['model', 'device', 'sampler', 'steps', 'eta', 'seed',
                                  'random-seed', 'preview-every', 'preview-kind', 'count',
                                  'new-image'],
        'plug-in-ddpm-reimagine': ['model', 'device', 'sampler', 'steps', 'eta', 'seed',
                                   'random-seed', 'preview-every', 'preview-kind', 'strength',
                                   'harmonize', 'context-margin'],
        'plug-in-ddpm-denoise': ['model', 'device', 'sampler', 'steps', 'eta', 'seed',
                                 'random-seed', 'preview-every', 'preview-kind', 'sigma',
                                 'context-margin'],
        'plug-in-ddpm-interpolate': ['model', 'device', 'sampler', 'steps', 'eta', 'seed',
                                     'random-seed', 'timestep', 'frames', 'spherical',
                                     'new-image', 'frame-delay'],
        'plug-in-ddpm-continue': ['model', 'device', 'count', 'keep-seed', 'seed',
                                  'random-seed', 'preview-every', 'preview-kind'],
    }
    for name, args in want.items():
        proc = pdb.lookup_procedure(name)
        check(name + ' registered', proc is not None)
        if proc:
            have = [a.name for a in proc.get_arguments()]
            check(name + ' arguments', all(a in have for a in args), 'have %s' % have)
            menus = proc.get_menu_paths()
            check(name + ' menu', any('Diffusion (DDPM)' in m for m in menus), str(menus))


def test_generate_new_image():
    res = run('plug-in-ddpm-generate', count=2, steps=5, seed=1234, random_seed=False,
              new_image=True)
    check('generate new image: success', ok(res), str(res.index(0)))
    if not ok(res):
        return
    img = res.index(1)
    check('generate new image: undo enabled on it', img.undo_is_enabled())
    names = [l.get_name() for l in img.get_layers()]
    check('generate new image: layer names', names == [
        'DDPM sample 2 (seed 1235, ddim 5)', 'DDPM sample 1 (seed 1234, ddim 5)'], str(names))
    layer = img.get_layers()[0]
    px = pixels(layer)
    export(img, 'generated.png')
    check('generate new image: not constant', len(set(px)) > 16, '%d values' % len(set(px)))
    par = layer.get_parasite('ddpm-params')
    text = bytes(par.get_data()).decode() if par else ''
    check('generate new image: parasite records the seed', 'seed=1235' in text, text)
    # The same seed makes the same picture: sample 1 of a new run with seed 1235.
    res2 = run('plug-in-ddpm-generate', count=1, steps=5, seed=1235, random_seed=False,
               new_image=True)
    same = ok(res2) and pixels(res2.index(1).get_layers()[0]) == px
    check('generate: a recorded seed reproduces its sample alone', same)


def test_generate_on_image_with_previews():
    img, base = rgba_image(40, 24)
    before = pixels(base)
    img.clean_all()
    res = run('plug-in-ddpm-generate', image=img, drawables=[base], count=1, steps=4,
              seed=7, random_seed=False, preview_every=2, preview_kind='both')
    check('generate on image: success', ok(res), str(res.index(0)))
    if not ok(res):
        return
    # GIMP 3.0 offers scripts no way to undo (no PDB procedure): what can be
    # seen is that the run pushed undo steps (dirtied the clean image) and
    # left undo enabled; the result is the image it was given.
    check('generate on image: undo enabled, image dirtied', img.undo_is_enabled() and
          img.is_dirty())
    check('generate on image: returns the image', res.index(1).get_id() == img.get_id())
    layers = img.get_layers()
    names = [l.get_name() for l in layers]
    check('generate on image: sample layer on top', names[0] == 'DDPM sample 1 (seed 7, ddim 4)',
          str(names))
    check('generate on image: sized to the image',
          (layers[0].get_width(), layers[0].get_height()) == (40, 24))
    group = [l for l in layers if l.get_name() == 'DDPM generate seed 7 previews']
    check('generate on image: previews group', len(group) == 1, str(names))
    if group:
        g = group[0]
        kids = [c.get_name() for c in g.get_children()]
        check('generate on image: previews hidden', not g.get_visible() and
              all(not c.get_visible() for c in g.get_children()))
        check('generate on image: previews x0 and x_t at two steps',
              sorted(kids) == sorted(['t=%d %s' % (t, k) for t in (500, 0)
                                      for k in ('x0', 'x_t')]), str(kids))
    check('generate on image: base layer untouched', pixels(base) == before)
    check('generate on image: sample visible', layers[0].get_visible())


def test_reimagine_rect():
    img, layer = rgba_image(48, 40)
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 16, 12, 16, 14)
    before = pixels(layer)
    n_layers = len(img.get_layers())
    img.clean_all()
    res = run('plug-in-ddpm-reimagine', image=img, drawables=[layer], steps=10, strength=0.6,
              seed=3, random_seed=False)
    check('reimagine rectangle: success', ok(res), str(res.index(0)))
    check('reimagine rectangle: undo enabled, image dirtied', img.undo_is_enabled() and
          img.is_dirty())
    compare('reimagine rectangle', img, layer, before, pixels(layer))
    check('reimagine rectangle: no layer added', len(img.get_layers()) == n_layers)


def test_reimagine_feathered():
    img, layer = rgba_image(48, 40)
    img.select_ellipse(Gimp.ChannelOps.REPLACE, 10, 8, 28, 24)
    Gimp.Selection.feather(img, 6)
    before = pixels(layer)
    export(img, 'reimagine-before.png')
    res = run('plug-in-ddpm-reimagine', image=img, drawables=[layer], steps=10, strength=0.8,
              harmonize=2, seed=5, random_seed=False, preview_every=3, preview_kind='x0')
    check('reimagine feathered: success', ok(res), str(res.index(0)))
    compare('reimagine feathered', img, layer, before, pixels(layer))
    export(img, 'reimagine-after.png')
    groups = [l for l in img.get_layers() if l.get_name() == 'DDPM re-imagine seed 5 previews']
    check('reimagine feathered: previews group', len(groups) == 1 and
          all(c.get_name().endswith(' x0') for c in groups[0].get_children()))


def test_reimagine_gray16_offset():
    img = Gimp.Image.new_with_precision(50, 30, Gimp.ImageBaseType.GRAY,
                                        Gimp.Precision.U16_NON_LINEAR)
    made.append(img)
    layer = Gimp.Layer.new(img, 'grey', 30, 20, Gimp.ImageType.GRAY_IMAGE, 100,
                           Gimp.LayerMode.NORMAL)
    img.insert_layer(layer, None, 0)
    layer.set_offsets(25, 15)  # partly outside the image
    fill_pattern(layer)
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 20, 10, 20, 12)  # partly off the layer
    before = pixels(layer)
    res = run('plug-in-ddpm-reimagine', image=img, drawables=[layer], steps=8, strength=0.7,
              seed=9, random_seed=False)
    check('reimagine grey 16-bit offset layer: success', ok(res), str(res.index(0)))
    compare('reimagine grey 16-bit offset layer', img, layer, before, pixels(layer))
    Gimp.Selection.none(img)
    before = pixels(layer)
    res = run('plug-in-ddpm-reimagine', image=img, drawables=[layer], steps=8, strength=0.5,
              seed=9, random_seed=False)
    check('reimagine without selection: success', ok(res))
    compare('reimagine without selection (whole layer)', img, layer, before, pixels(layer))


def test_denoise():
    img, layer = rgba_image(32, 32, alpha=False)
    fill_pattern(layer, noise=25)
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 4, 4, 24, 20)
    before = pixels(layer)
    res = run('plug-in-ddpm-denoise', image=img, drawables=[layer], steps=20, seed=2,
              random_seed=False)
    check('denoise: success', ok(res), str(res.index(0)))
    if ok(res):
        sigma = res.index(1)
        print('denoise: estimated sigma %.2f (true 25, plus the pattern)' % sigma, flush=True)
        check('denoise: estimated sigma plausible', 10 < sigma < 60, str(sigma))
    compare('denoise', img, layer, before, pixels(layer))


def test_bad_model():
    img, layer = rgba_image(24, 24)
    before = pixels(layer)
    img.clean_all()
    res = run('plug-in-ddpm-reimagine', image=img, drawables=[layer], steps=5,
              model='/nonexistent/model', random_seed=False)
    check('bad model: fails', res.index(0) == Gimp.PDBStatusType.EXECUTION_ERROR,
          str(res.index(0)))
    err = res.index(1) if res.length() > 1 else ''
    print('bad model error: %s' % err, flush=True)
    check('bad model: image unchanged', pixels(layer) == before and len(img.get_layers()) == 1)
    res = run('plug-in-ddpm-generate', image=img, drawables=[layer], steps=5,
              model='/nonexistent/model')
    check('bad model: generate fails, no layer added',
          not ok(res) and len(img.get_layers()) == 1)
    check('bad model: nothing pushed on the undo stack (image still clean)',
          not img.is_dirty())


def test_indexed():
    img, layer = rgba_image(24, 24, alpha=False)
    img.convert_indexed(Gimp.ConvertDitherType.NONE, Gimp.ConvertPaletteType.GENERATE,
                        16, False, False, '')
    res = run('plug-in-ddpm-reimagine', image=img, drawables=[layer], steps=5)
    check('indexed: refused with an error', not ok(res), str(res.index(0)))
    check('indexed: no layer added', len(img.get_layers()) == 1)


HOOKS = '/tmp/gimp-ddpm-hooks'


def hooks(text=''):
    """The plug-in's test switch (plugin/testhooks.c), read by each run."""
    with open(HOOKS, 'w') as f:
        f.write(text)


def state_of(layer):
    par = layer.get_parasite('ddpm-state')
    return bytes(b & 0xff for b in par.get_data()) if par else None


def kept_layers(image, group_name):
    groups = [l for l in image.get_layers() if l.get_name() == group_name]
    return list(reversed(groups[0].get_children())) if groups else []  # oldest first


def test_continue_generate():
    res = run('plug-in-ddpm-generate', count=1, sampler='ddpm',
              steps=6, seed=21, random_seed=False, new_image=True, preview_every=2,
              preview_kind='xt')
    check('continue: generate with kept steps', ok(res), str(res.index(0)))
    if not ok(res):
        return
    img = res.index(1)
    final = [l for l in img.get_layers() if l.get_name().startswith('DDPM sample 1')][0]
    kept = kept_layers(img, 'DDPM generate seed 21 previews')
    names = [l.get_name() for l in kept]
    check('continue: kept x_t layers', len(kept) == 3, str(names))
    if len(kept) != 3:
        return
    check('continue: run state on the kept steps before the end',
          state_of(kept[0]) is not None and state_of(kept[1]) is not None and
          state_of(kept[2]) is None, str([state_of(l) is not None for l in kept]))
    n_before = len(img.get_layers())
    img.clean_all()
    res = run('plug-in-ddpm-continue', image=img, drawables=[kept[0]])
    check('continue: success', ok(res), str(res.index(0)))
    layers = img.get_layers()
    check('continue: one layer added, one undo step', len(layers) == n_before + 1 and
          img.is_dirty())
    top = layers[0]
    print('continue: made "%s"' % top.get_name(), flush=True)
    check('continue: the run\'s own seed finishes as the uninterrupted run did (bit-identical)',
          pixels(top) == pixels(final))
    res = run('plug-in-ddpm-continue', image=img, drawables=[kept[1]], count=2,
              keep_seed=False, seed=99, random_seed=False)
    check('continue: branch with a new seed', ok(res), str(res.index(0)))
    layers = img.get_layers()
    a, b = layers[0], layers[1]
    check('continue: two branches, named by seed', 'seed 100' in a.get_name() and
          'seed 99' in b.get_name(), '%s / %s' % (a.get_name(), b.get_name()))
    check('continue: branches differ from the run and from each other',
          pixels(a) != pixels(b) and pixels(a) != pixels(final))
    export(img, 'continue.png')
    res = run('plug-in-ddpm-continue', image=img, drawables=[final])
    check('continue: a layer without a run state is refused', not ok(res))


def test_continue_edit():
    img, layer = rgba_image(48, 40)
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 12, 10, 20, 16)
    res = run('plug-in-ddpm-reimagine', image=img, drawables=[layer], sampler='ddpm',
              steps=10, strength=0.6, seed=4, random_seed=False, preview_every=2,
              preview_kind='x0', context_margin=4)
    check('continue edit: re-imagine with kept steps', ok(res), str(res.index(0)))
    kept = kept_layers(img, 'DDPM re-imagine seed 4 previews')
    if not ok(res) or not kept:
        return
    res = run('plug-in-ddpm-continue', image=img, drawables=[kept[0]])
    check('continue edit: success', ok(res), str(res.index(0)))
    top = img.get_layers()[0]
    ox, oy = top.get_offsets()[1:]
    kx, ky = kept[0].get_offsets()[1:]
    check('continue edit: placed and sized like the kept layer, with the selection as alpha',
          (ox, oy, top.get_width(), top.get_height()) ==
          (kx, ky, kept[0].get_width(), kept[0].get_height()) and top.has_alpha(),
          str((ox, oy, top.get_width(), top.get_height(), kx, ky)))
    # Inside the selection the edit wrote the model's output unblended: the
    # finished layer must show the same pixels there.
    w = top.get_width()
    got = pixels(top)
    edited = bytes(layer.get_buffer().get(Gegl.Rectangle.new(ox, oy, w, top.get_height()),
                                          1.0, "R'G'B'A u8", Gegl.AbyssPolicy.NONE))
    same = total = 0
    for y in range(2, top.get_height() - 2):
        for x in range(2, w - 2):
            if 12 + 1 <= ox + x < 12 + 20 - 1 and 10 + 1 <= oy + y < 10 + 16 - 1:
                i = (y * w + x) * 4
                total += 1
                same += got[i:i + 3] == edited[i:i + 3]
    check('continue edit: same pixels as the uninterrupted edit inside the selection',
          total > 0 and same == total, '%d of %d' % (same, total))


def test_finishes():
    res = run('plug-in-ddpm-generate', count=1, sampler='ddpm', steps=4, seed=8,
              random_seed=False, new_image=True, preview_every=2, preview_finishes=2)
    check('finishes: success', ok(res), str(res.index(0)))
    if not ok(res):
        return
    kept = kept_layers(res.index(1), 'DDPM generate seed 8 previews')
    names = [l.get_name() for l in kept]
    want = ['t=%d %s' % (t, k) for t, k in ((500, 'x0'), (500, 'finish 1'), (500, 'finish 2'),
                                            (0, 'x0'))]
    check('finishes: layers at the kept step before the end', names == want, str(names))
    if names == want:
        check('finishes: two different finishes', pixels(kept[1]) != pixels(kept[2]))
    export(res.index(1), 'finishes.png')


def image_snapshot(img):
    """Everything a failed run must leave as it was."""
    def walk(items):
        out = []
        for l in items:
            out.append((l.get_name(), l.get_offsets()[1:], l.get_visible(), pixels(l)
                        if not l.is_group() else None))
            if l.is_group():
                out.append(walk(l.get_children()))
        return out
    sel = img.get_selection()
    selpx = bytes(sel.get_buffer().get(Gegl.Rectangle.new(0, 0, img.get_width(),
                                                          img.get_height()), 1.0, 'Y u8',
                                       Gegl.AbyssPolicy.NONE))
    return walk(img.get_layers()), selpx


def test_integrity():
    """Cancels and failures injected at every stage leave the image as it was."""
    import random
    rnd = random.Random(2026)
    img, layer = rgba_image(40, 32)
    img.select_ellipse(Gimp.ChannelOps.REPLACE, 6, 5, 24, 20)
    base = image_snapshot(img)
    cases = [('cancel-at-step=%d' % rnd.randint(1, 7), 'reimagine'),
             ('cancel-at-step=%d' % rnd.randint(1, 7), 'generate'),
             ('cancel-at-finish=0', 'generate-finishes'),
             ('fail-prepare=0', 'generate'), ('fail-prepare=1', 'reimagine'),
             ('fail-insert=0', 'generate'), ('fail-insert=2', 'generate'),
             ('fail-insert=%d' % rnd.randint(3, 6), 'generate'),
             ('fail-insert=1', 'reimagine'), ('fail-merge=0', 'reimagine')]
    for hook, what in cases:
        img.clean_all()
        hooks(hook)
        common = dict(image=img, drawables=[layer], sampler='ddpm', steps=8, seed=3,
                      random_seed=False, preview_every=2, preview_kind='both')
        if what == 'reimagine':
            res = run('plug-in-ddpm-reimagine', strength=0.9, **common)
        elif what == 'generate-finishes':
            res = run('plug-in-ddpm-generate', preview_finishes=1, **common)
        else:
            res = run('plug-in-ddpm-generate', **common)
        hooks('')
        status = res.index(0)
        want = (Gimp.PDBStatusType.CANCEL if hook.startswith('cancel')
                else Gimp.PDBStatusType.EXECUTION_ERROR)
        name = 'integrity %s during %s' % (hook, what)
        check(name + ': fails with ' + str(want), status == want, str(status))
        check(name + ': layers, pixels and selection as before', image_snapshot(img) == base)
        # Before the image is touched nothing reaches the undo stack; a failed
        # insert or merge is rolled back inside one undo group (GIMP offers
        # plug-ins no way to drop it).
        if not hook.startswith(('fail-insert', 'fail-merge')):
            check(name + ': nothing on the undo stack', not img.is_dirty())
    res = run('plug-in-ddpm-reimagine', image=img, drawables=[layer], steps=4, seed=3,
              random_seed=False)
    check('integrity: a run after the failures succeeds', ok(res), str(res.index(0)))


def test_interpolate():
    img, a = rgba_image(48, 40, alpha=False)
    b = Gimp.Layer.new(img, 'other', 48, 40, Gimp.ImageType.RGB_IMAGE, 100,
                       Gimp.LayerMode.NORMAL)
    img.insert_layer(b, None, 0)
    b.fill(Gimp.FillType.WHITE)
    img.clean_all()
    args = dict(image=img, drawables=[a, b], sampler='ddim', steps=10, seed=5,
                random_seed=False, timestep=400, frames=4)
    res = run('plug-in-ddpm-interpolate', **args)
    check('interpolate: success', ok(res), str(res.index(0)))
    groups = [l for l in img.get_layers() if l.get_name().startswith('DDPM interpolation')]
    check('interpolate: one group, one undo step', len(groups) == 1 and img.is_dirty())
    if not groups:
        return
    frames = list(reversed(groups[0].get_children()))
    names = [f.get_name() for f in frames]
    check('interpolate: frames lambda 0..1, first at the bottom',
          names == ['lambda 0.000', 'lambda 0.333', 'lambda 0.667', 'lambda 1.000'], str(names))
    px = [pixels(f) for f in frames]
    check('interpolate: frames differ', len(set(px)) == 4)
    # The white layer's end is lighter than the pattern's end.
    check('interpolate: the ends follow their layers', sum(px[3]) > sum(px[0]))
    export(img, 'interpolate.png')
    res = run('plug-in-ddpm-interpolate', new_image=True, **args)
    check('interpolate: new image for animation', ok(res), str(res.index(0)))
    if ok(res):
        made.append(res.index(1))
        layers = list(reversed(res.index(1).get_layers()))
        check('interpolate: animation frames named for playback',
              [l.get_name() for l in layers][0] == 'Frame 1 (lambda 0.000) (100ms) (replace)'
              and len(layers) == 4, str([l.get_name() for l in layers]))
        check('interpolate: animation frames at the model\'s size',
              all((l.get_width(), l.get_height()) == (32, 32) for l in layers))
    res = run('plug-in-ddpm-interpolate', image=img, drawables=[a], frames=3)
    check('interpolate: one layer is refused', not ok(res))


def test_modes():
    """Every base type and precision, with and without alpha."""
    P = Gimp.Precision
    for prec in (P.U8_NON_LINEAR, P.U8_LINEAR, P.U16_NON_LINEAR, P.U32_LINEAR,
                 P.HALF_LINEAR, P.FLOAT_NON_LINEAR, P.DOUBLE_LINEAR):
        for gray in (False, True):
            alpha = prec in (P.U8_NON_LINEAR, P.FLOAT_NON_LINEAR, P.HALF_LINEAR)
            name = 'mode %s %s%s' % (prec.value_nick, 'grey' if gray else 'rgb',
                                     ' alpha' if alpha else '')
            img, layer = rgba_image(24, 20, precision=prec, gray=gray, alpha=alpha)
            img.select_rectangle(Gimp.ChannelOps.REPLACE, 6, 5, 12, 10)
            before = pixels(layer)
            res = run('plug-in-ddpm-reimagine', image=img, drawables=[layer], steps=3,
                      strength=0.8, seed=2, random_seed=False, context_margin=2)
            check(name + ': re-imagine succeeds', ok(res), str(res.index(0)))
            compare(name, img, layer, before, pixels(layer))


def plugin_peak_watch():
    """Polls the gimp-ddpm processes' VmHWM in a thread; the returned
    function stops it and gives the largest seen (KiB)."""
    import threading
    best = [0]
    stop = threading.Event()

    def poll():
        while not stop.wait(0.05):
            for pid in os.listdir('/proc'):
                try:
                    with open('/proc/%s/status' % pid) as f:
                        st = f.read()
                except (OSError, ValueError):
                    continue
                if 'Name:\tgimp-ddpm' in st:
                    for line in st.splitlines():
                        if line.startswith('VmHWM:'):
                            best[0] = max(best[0], int(line.split()[1]))
    t = threading.Thread(target=poll, daemon=True)
    t.start()

    def done():
        stop.set()
        t.join()
        return best[0]
    return done


def test_huge():
    """A 16k x 16k layer: read and written a strip at a time (no float copy
    of the whole layer), in sensible time."""
    side = 16384
    img = Gimp.Image.new(side, side, Gimp.ImageBaseType.RGB)
    made.append(img)
    layer = Gimp.Layer.new(img, 'huge', side, side, Gimp.ImageType.RGB_IMAGE, 100,
                           Gimp.LayerMode.NORMAL)
    img.insert_layer(layer, None, 0)
    layer.fill(Gimp.FillType.WHITE)
    corner = Gegl.Rectangle.new(side - 64, side - 64, 64, 64)

    def patch(l):
        return bytes(l.get_buffer().get(corner, 1.0, "R'G'B' u8", Gegl.AbyssPolicy.NONE))
    before = patch(layer)
    peak = plugin_peak_watch()
    Gimp.Selection.all(img)
    res = run('plug-in-ddpm-reimagine', image=img, drawables=[layer], steps=2, strength=0.9,
              seed=1, random_seed=False, context_margin=0)
    check('16k x 16k: re-imagine the whole layer', ok(res), str(res.index(0)))
    check('16k x 16k: pixels written', patch(layer) != before)
    Gimp.Selection.none(img)
    res = run('plug-in-ddpm-generate', image=img, drawables=[layer], steps=2, seed=1,
              random_seed=False)
    top = img.get_layers()[0]
    check('16k x 16k: generate a layer the size of the image', ok(res) and
          (top.get_width(), top.get_height()) == (side, side))
    kib = peak()
    print('16k x 16k: plug-in peak RSS %.0f MiB (a float copy of the layer would '
          'be 3072 MiB)' % (kib / 1024), flush=True)
    check('16k x 16k: plug-in memory bounded (< 1.5 GiB)', 0 < kib < 3 << 19, '%d KiB' % kib)
    img.delete()


def main():
    for t in (test_arguments, test_generate_new_image, test_generate_on_image_with_previews,
              test_reimagine_rect, test_reimagine_feathered, test_reimagine_gray16_offset,
              test_denoise, test_bad_model, test_indexed, test_continue_generate,
              test_continue_edit, test_finishes, test_integrity, test_interpolate,
              test_modes, test_huge):
        try:
            t()
        except Exception:
            check(t.__name__, False, traceback.format_exc())
    for img in made:
        if img.is_valid():
            img.delete()
    for name, secs in timings:
        print('time %-24s %.1f s' % (name, secs), flush=True)
    failed = [n for n, good in results if not good]
    summary = 'PASS %d checks' % len(results) if not failed else 'FAIL ' + '; '.join(failed)
    print(summary, flush=True)
    with open(os.environ.get('DDPM_GIMP_RESULT', '/tmp/gimp-ddpm-result'), 'w') as f:
        f.write(summary + '\n')


main()
