# Two GIMPs at once (run by run-tests.sh in gimp-console-3.0's python-fu-eval
# interpreter): each runs its share of fixed-seed plug-in jobs on its own
# images and writes a digest of every result, so that run-tests.sh can
# compare two GIMP sessions running at the same time with the same jobs run
# one after the other in one session.
#   DDPM_CONC_ROLE  a or b: that share of the jobs; ab: all, one after the other
#   DDPM_CONC_PEER  the other role when running at the same time: both
#                   sessions wait for each other before their first job, so
#                   their plug-in runs overlap
#   DDPM_CONC_DIR   where ROLE.txt goes: lines "hash JOB SHA256" (or
#                   "fail JOB WHY") and "span JOB START END" (wall clock)
import os
import sys
import time
import traceback

sys.dont_write_bytecode = True
sys.path.insert(0, '/src/gimp-ddpm/tests/gimp')
import ddpm_jobs as J  # noqa: E402
from ddpm_jobs import Gimp  # noqa: E402

role = os.environ.get('DDPM_CONC_ROLE', 'ab')
peer = os.environ.get('DDPM_CONC_PEER', '')
out_dir = os.environ.get('DDPM_CONC_DIR', '/tmp/gimp-ddpm-conc')
lines = []


def job_generate_new(seed):
    ok, res, t0, t1 = J.run('plug-in-ddpm-generate', count=2, steps=3, seed=seed,
                            random_seed=False, new_image=True)
    if not ok:
        return None, t0, t1
    img = res.index(1)
    d = J.digest(img.get_layers())
    img.delete()
    return d, t0, t1


def job_generate_on_image(seed):
    img, base = J.pattern_image(40, 24)
    ok, res, t0, t1 = J.run('plug-in-ddpm-generate', image=img, drawables=[base], count=1,
                            steps=3, seed=seed, random_seed=False)
    d = J.digest(img.get_layers()) if ok else None
    img.delete()
    return d, t0, t1


def job_reimagine_rect(seed):
    img, layer = J.pattern_image(48, 40, shift=seed)
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 16, 12, 16, 14)
    ok, res, t0, t1 = J.run('plug-in-ddpm-reimagine', image=img, drawables=[layer], steps=4,
                            strength=0.6, seed=seed, random_seed=False)
    d = J.digest([layer]) if ok else None
    img.delete()
    return d, t0, t1


def job_reimagine_feathered(seed):
    img, layer = J.pattern_image(48, 40, alpha=False, shift=seed)
    img.select_ellipse(Gimp.ChannelOps.REPLACE, 10, 8, 28, 24)
    Gimp.Selection.feather(img, 6)
    ok, res, t0, t1 = J.run('plug-in-ddpm-reimagine', image=img, drawables=[layer], steps=4,
                            strength=0.8, harmonize=2, seed=seed, random_seed=False)
    d = J.digest([layer]) if ok else None
    img.delete()
    return d, t0, t1


# Each share has its own jobs and one the other share runs too (same seed:
# the same pixels expected).
JOBS = {
    'a': [('generate-new-101', job_generate_new, 101),
          ('reimagine-rect-201', job_reimagine_rect, 201),
          ('a:generate-on-image-999', job_generate_on_image, 999),
          ('generate-on-image-301', job_generate_on_image, 301)],
    'b': [('generate-on-image-102', job_generate_on_image, 102),
          ('reimagine-feathered-202', job_reimagine_feathered, 202),
          ('b:generate-on-image-999', job_generate_on_image, 999),
          ('generate-new-302', job_generate_new, 302)],
}


def barrier():
    """Both sessions ready (GIMP started, procedures found) before either
    runs a job."""
    open(os.path.join(out_dir, role + '.ready'), 'w').close()
    other = os.path.join(out_dir, peer + '.ready')
    deadline = time.time() + 180
    while not os.path.exists(other):
        if time.time() > deadline:
            lines.append('fail barrier the other session (%s) never got ready' % peer)
            return
        time.sleep(0.05)


def main():
    os.makedirs(out_dir, exist_ok=True)
    if J.pdb.lookup_procedure('plug-in-ddpm-generate') is None:
        lines.append('fail setup plug-in-ddpm-generate not registered')
    elif peer:
        barrier()
    jobs = JOBS['a'] + JOBS['b'] if role == 'ab' else JOBS[role]
    for name, fn, seed in jobs:
        try:
            d, t0, t1 = fn(seed)
            lines.append(('hash %s %s' % (name, d)) if d else ('fail %s the run failed' % name))
            lines.append('span %s %.3f %.3f' % (name, t0, t1))
            print('%s: %s (%.1f s)' % (role, name, t1 - t0), flush=True)
        except Exception:
            lines.append('fail %s %s' % (name, traceback.format_exc().replace('\n', ' | ')))
    with open(os.path.join(out_dir, role + '.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


main()
