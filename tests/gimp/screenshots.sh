#!/usr/bin/env bash
# Screenshots of the plug-in's dialogs in a real GIMP 3 window under Xvfb,
# in the trixie root of make-root.sh (run run-tests.sh first so the plug-in
# is installed there).   screenshots.sh OUT_DIR [PROCEDURE...]
# (procedures: generate reimagine denoise continue interpolate; default all)
set -euo pipefail
out=$(mkdir -p "$1" && cd "$1" && pwd)
shift
procs=("$@")
[ ${#procs[@]} -gt 0 ] || procs=(generate reimagine denoise continue interpolate)
root=${DDPM_GIMP_ROOT:-/var/cache/gimp-ddpm/trixie-root}
exec 8>"$root.run.lock"
flock 8  # not while run-tests.sh uses the root
cleanup() { umount "$root/proc" 2>/dev/null || true; }
trap cleanup EXIT
cleanup
mount -t proc proc "$root/proc"
cp "$(dirname "$0")/screenshot.py" "$root/tmp/screenshot.py"
for proc in "${procs[@]}"; do
  rm -rf "$root/tmp/shot-home" && mkdir -p "$root/tmp/shot-home"
  # GIMP opens a test image and calls the procedure interactively (its
  # dialog blocks); after a while the screenshot is taken and GIMP and its
  # plug-ins (by their parent id: never other GIMPs on the machine) killed.
  script="import gi
gi.require_version('Gimp', '3.0')
from gi.repository import Gimp
img = Gimp.Image.new(256, 192, Gimp.ImageBaseType.RGB)
layer = Gimp.Layer.new(img, 'photo', 256, 192, Gimp.ImageType.RGB_IMAGE, 100, Gimp.LayerMode.NORMAL)
img.insert_layer(layer, None, 0)
Gimp.Display.new(img)
img.select_rectangle(Gimp.ChannelOps.REPLACE, 64, 48, 96, 80)
pdb = Gimp.get_pdb()
drawables = [layer]
if '$proc' == 'continue':  # a kept step to continue from
    cfg = pdb.lookup_procedure('plug-in-ddpm-generate').create_config()
    for k, v in (('image', img), ('run-mode', Gimp.RunMode.NONINTERACTIVE), ('steps', 4),
                 ('preview-every', 2), ('preview-kind', 'xt')):
        cfg.set_property(k, v)
    pdb.lookup_procedure('plug-in-ddpm-generate').run(cfg)
    group = [l for l in img.get_layers() if l.is_group()][0]
    drawables = [group.get_children()[-1]]
elif '$proc' == 'interpolate':
    other = Gimp.Layer.new(img, 'other', 256, 192, Gimp.ImageType.RGB_IMAGE, 100, Gimp.LayerMode.NORMAL)
    img.insert_layer(other, None, 0)
    drawables = [layer, other]
proc = pdb.lookup_procedure('plug-in-ddpm-$proc')
cfg = proc.create_config()
cfg.set_property('image', img)
cfg.set_core_object_array('drawables', drawables)
cfg.set_property('run-mode', Gimp.RunMode.INTERACTIVE)
proc.run(cfg)"
  chroot "$root" env -i HOME=/tmp/shot-home PATH=/usr/bin:/bin LANG=C.UTF-8 \
    xvfb-run -a -s "-screen 0 1280x900x24" sh -c "
      gimp-3.0 -n -d -f --batch-interpreter=python-fu-eval -b \"\$0\" >/dev/null 2>&1 &
      sleep \$1
      python3 /tmp/screenshot.py /tmp/dialog-$proc.png
      pkill -P \$! 2>/dev/null; kill \$! 2>/dev/null; wait \$!; true" "$script" \
    "$([ "$proc" = continue ] && echo 120 || echo 45)"  # continue generates first
  cp "$root/tmp/dialog-$proc.png" "$out/"
done
