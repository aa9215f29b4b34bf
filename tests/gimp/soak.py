# Soak (not part of CI; run by run-soak.sh in gimp-console-3.0's
# python-fu-eval interpreter): many plug-in runs in ONE GIMP session, cycling
# generate on an image, re-imagine a selection and generate a new image
# (each image deleted after its run), with GIMP's resident set size, the
# plug-in processes left and the images open sampled every few runs.
# Passes when every run succeeded, no plug-in process and no image was left
# behind, and GIMP's RSS grew by at most DDPM_SOAK_MAX_GROWTH_MIB over the
# last three quarters of the runs (the first quarter warms GIMP's caches).
#   DDPM_SOAK_RUNS (200), DDPM_SOAK_STEPS (2), DDPM_SOAK_EVERY (20),
#   DDPM_SOAK_MAX_GROWTH_MIB (8), DDPM_GIMP_RESULT (the summary line);
#   DDPM_SOAK_CONTROL=1: no plug-in, GIMP alone; DDPM_SOAK_PACE: seconds
#   to wait after each run.  run-soak.sh turns babl's LUTs off (see there).
import os
import sys
import time
import traceback

sys.dont_write_bytecode = True
sys.path.insert(0, '/src/gimp-ddpm/tests/gimp')
import ddpm_jobs as J  # noqa: E402
from ddpm_jobs import Gimp  # noqa: E402

RUNS = int(os.environ.get('DDPM_SOAK_RUNS', '200'))
STEPS = int(os.environ.get('DDPM_SOAK_STEPS', '2'))
EVERY = int(os.environ.get('DDPM_SOAK_EVERY', '20'))
MAX_GROWTH = float(os.environ.get('DDPM_SOAK_MAX_GROWTH_MIB', '8'))
# The same images, selections and new layers without the plug-in: what GIMP
# itself does with memory over such a session (the plug-in's share is the
# difference).
CONTROL = os.environ.get('DDPM_SOAK_CONTROL', '0') == '1'
# Seconds to wait after each run (a control as long as a real soak).
PACE = float(os.environ.get('DDPM_SOAK_PACE', '0'))


def proc_status(pid):
    d = {}
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                k, _, v = line.partition(':')
                d[k] = v.strip()
    except OSError:
        pass
    return d


def gimp_pid():
    """GIMP: the nearest ancestor of this script's process named gimp*
    (python-fu-eval runs as a plug-in process GIMP started)."""
    pid = os.getppid()
    while pid > 1:
        st = proc_status(pid)
        if st.get('Name', '').startswith('gimp'):
            return pid
        pid = int(st.get('PPid', '0') or 0)
    raise RuntimeError('no gimp process above pid %d' % os.getpid())


def rss_mib(pid, field='VmRSS'):
    v = proc_status(pid).get(field, '0 kB').split()[0]
    return int(v) / 1024.0


def children(pid):
    """Names of GIMP's child processes (its plug-ins, this script's)."""
    out = []
    for d in os.listdir('/proc'):
        if d.isdigit():
            st = proc_status(int(d))
            if st.get('PPid') == str(pid):
                out.append(st.get('Name', '?'))
    return out


def plug_ins_left(pid):
    """gimp-ddpm processes under GIMP, after giving the last one up to 5 s
    to exit."""
    deadline = time.time() + 5
    while True:
        n = children(pid).count('gimp-ddpm')
        if n == 0 or time.time() > deadline:
            return n
        time.sleep(0.1)


def new_layer(img, name, w, h, shift):
    """What a generate run adds, made by the script: a layer of pixels."""
    src, layer = J.pattern_image(w, h, alpha=False, shift=shift)
    px = J.pixels(layer)
    src.delete()
    layer = Gimp.Layer.new(img, name, w, h, Gimp.ImageType.RGB_IMAGE, 100,
                           Gimp.LayerMode.NORMAL)
    img.insert_layer(layer, None, 0)
    buf = layer.get_buffer()
    buf.set(J.Gegl.Rectangle.new(0, 0, w, h), J.fmt(layer), px)
    buf.flush()
    return layer


def control_once(i):
    kind = i % 3
    if kind == 0:
        img, base = J.pattern_image(64, 48, shift=i)
        img.undo_group_start()
        new_layer(img, 'sample', 64, 48, i + 1)
        img.undo_group_end()
    elif kind == 1:
        img, layer = J.pattern_image(48, 40, shift=i)
        img.select_rectangle(Gimp.ChannelOps.REPLACE, 4 + i % 16, 6, 20, 16)
        layer.invert(False)
    else:
        img = Gimp.Image.new(32, 32, Gimp.ImageBaseType.RGB)
        new_layer(img, 'sample', 32, 32, i)
    img.delete()
    return None


def run_once(i):
    """Run i of the cycle; returns why it failed, or None."""
    if CONTROL:
        return control_once(i)
    seed = 1000 + i
    kind = i % 3
    if kind == 0:  # generate on an image
        img, base = J.pattern_image(64, 48, shift=i)
        ok, res, t0, t1 = J.run('plug-in-ddpm-generate', image=img, drawables=[base],
                                count=1, steps=STEPS, seed=seed, random_seed=False)
        good = ok and len(img.get_layers()) == 2
        img.delete()
        return None if good else 'generate on image: %s' % res.index(0)
    if kind == 1:  # re-imagine a selection
        img, layer = J.pattern_image(48, 40, shift=i)
        img.select_rectangle(Gimp.ChannelOps.REPLACE, 4 + i % 16, 6, 20, 16)
        before = J.pixels(layer)
        ok, res, t0, t1 = J.run('plug-in-ddpm-reimagine', image=img, drawables=[layer],
                                steps=STEPS * 2, strength=0.5, seed=seed, random_seed=False)
        good = ok and J.pixels(layer) != before
        img.delete()
        return None if good else 're-imagine: %s' % res.index(0)
    ok, res, t0, t1 = J.run('plug-in-ddpm-generate', count=1, steps=STEPS, seed=seed,
                            random_seed=False, new_image=True)  # a new image
    if not ok:
        return 'generate new image: %s' % res.index(0)
    res.index(1).delete()
    return None


def main():
    gimp = gimp_pid()
    images0 = len(Gimp.get_images())
    t_start = time.time()
    samples = []  # (run, gimp RSS, script RSS, plug-ins left, images open, seconds)
    failures = []
    trace = []  # GIMP's RSS after every run

    def sample(n):
        s = (n, rss_mib(gimp), rss_mib(os.getpid()), plug_ins_left(gimp),
             len(Gimp.get_images()) - images0, time.time() - t_start)
        samples.append(s)
        print('soak: after %3d runs: GIMP RSS %.1f MiB, script RSS %.1f MiB, '
              'gimp-ddpm processes %d, images left %d, %.0f s' % s +
              ' (GIMP: anon %.1f, file %.1f, shmem %.1f MiB, %s threads)' %
              (rss_mib(gimp, 'RssAnon'), rss_mib(gimp, 'RssFile'), rss_mib(gimp, 'RssShmem'),
               proc_status(gimp).get('Threads', '?')), flush=True)

    sample(0)
    for i in range(RUNS):
        try:
            why = run_once(i)
        except Exception:
            why = traceback.format_exc().replace('\n', ' | ')
        if why:
            failures.append('run %d: %s' % (i + 1, why))
            print('soak: FAIL run %d: %s' % (i + 1, why), flush=True)
        time.sleep(PACE)
        trace.append(rss_mib(gimp))
        if (i + 1) % EVERY == 0 or i + 1 in (RUNS // 4, RUNS):
            sample(i + 1)

    # Growth over the last three quarters: from run RUNS/4 (50 of 200) to
    # the end.
    quarter = [s for s in samples if s[0] == RUNS // 4][0]
    with open('/tmp/gimp-ddpm-soak-trace.txt', 'w') as f:
        f.write(''.join('%d %.1f\n' % (n + 1, r) for n, r in enumerate(trace)))
    late = trace[RUNS // 4:]
    print('soak: GIMP RSS after each of runs %d..%d: min %.1f, max %.1f MiB '
          '(every run: /tmp/gimp-ddpm-soak-trace.txt)' %
          (RUNS // 4 + 1, RUNS, min(late or [0]), max(late or [0])), flush=True)
    growth = samples[-1][1] - quarter[1]
    problems = list(failures[:5])
    if failures:
        problems.insert(0, '%d of %d runs failed' % (len(failures), RUNS))
    if growth > MAX_GROWTH:
        problems.append('GIMP RSS grew %.1f MiB from run %d to %d (at most %.0f)' %
                        (growth, quarter[0], RUNS, MAX_GROWTH))
    if any(s[3] for s in samples):
        problems.append('gimp-ddpm processes left behind')
    if samples[-1][4]:
        problems.append('%d images left open' % samples[-1][4])
    figures = (('control, no plug-in: ' if CONTROL else '') +
               '%d runs, %d steps, %.0f s; GIMP RSS %.1f MiB at start, %.1f after %d runs, '
               '%.1f at the end (+%.1f MiB over the last %d runs, at most %.0f allowed)' %
               (RUNS, STEPS, samples[-1][5], samples[0][1], quarter[1], quarter[0],
                samples[-1][1], growth, RUNS - quarter[0], MAX_GROWTH))
    summary = ('PASS ' + figures) if not problems else ('FAIL ' + '; '.join(problems) +
                                                        '; ' + figures)
    print(summary, flush=True)
    with open(os.environ.get('DDPM_GIMP_RESULT', '/tmp/gimp-ddpm-soak-result'), 'w') as f:
        f.write(summary + '\n')


main()
