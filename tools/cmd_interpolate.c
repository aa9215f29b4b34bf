/* ddpm interpolate: frames between two pictures through the diffusion's
 * latent at t (ddpm_interpolate), as a horizontal strip and optionally one
 * PNG per frame. */
#include <stdio.h>
#include <string.h>

#include <unistd.h>

#include "cli.h"
#include "png_io.h"

int cmd_interpolate(int argc, char **argv) {
  cli_sampler_opts so;
  cli_sampler_opts_init(&so);
  int t = 500, frames = 8;
  gboolean slerp = FALSE;
  char *out_path = NULL, *frames_dir = NULL;
  GOptionEntry e[10] = {
    {"t", 0, 0, G_OPTION_ARG_INT, &t, "Timestep both pictures are noised to (default 500)", "T"},
    {"frames", 0, 0, G_OPTION_ARG_INT, &frames, "Frames, the two ends included (default 8)", "N"},
    {"slerp", 0, 0, G_OPTION_ARG_NONE, &slerp, "Spherical instead of linear mixing", NULL},
    {"output", 'o', 0, G_OPTION_ARG_FILENAME, &out_path, "The strip of frames", "OUT.png"},
    {"frames-dir", 0, 0, G_OPTION_ARG_FILENAME, &frames_dir,
     "Also write frameNNN.png into this folder", "DIR"},
  };
  cli_sampler_entries(&so, e + 5);
  e[9] = (GOptionEntry){NULL};
  GOptionContext *oc = g_option_context_new(
    "[MODEL] A.png B.png - interpolate two pictures through the latent x_t");
  g_option_context_add_main_entries(oc, e, NULL);
  GError *err = NULL;
  int rc = 1;
  char *model_dir = NULL;
  ddpm_context *ctx = NULL;
  ddpm_model *m = NULL;
  float *a = NULL, *b = NULL, *res = NULL;
  if (!g_option_context_parse(oc, &argc, &argv, &err)) goto out;
  if (argc != 3 && argc != 4) {
    g_set_error_literal(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                        "give two pictures A.png B.png; see ddpm interpolate --help");
    goto out;
  }
  if (!out_path && !frames_dir) {
    g_set_error_literal(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                        "give -o OUT.png (or --frames-dir DIR)");
    goto out;
  }
  ddpm_interpolate_params p = ddpm_interpolate_default_params();
  if (!cli_sampler_apply(&so, &p.sampler, &p.steps, &p.eta, &p.seed, &err)) goto out;
  p.t = t;
  p.frames = frames;
  p.spherical = slerp;
  /* Cheap checks first: a bad --frames should not wait for the model. */
  if (frames < 2 || frames > DDPM_INTERPOLATE_MAX_FRAMES) {
    g_set_error(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "--frames %d out of range 2..%d", frames, DDPM_INTERPOLATE_MAX_FRAMES);
    goto out;
  }
  const char *pa = argv[argc - 2], *pb = argv[argc - 1];
  int size, c;
  if (!(m = open_model(argc == 4 ? argv[1] : NULL, &model_dir, &ctx, &size, &c, &err)))
    goto out;
  size_t item = (size_t)c * size * size;
  a = g_new(float, item);
  b = g_new(float, item);
  if (!cli_load_image(pa, c, size, a, &err) || !cli_load_image(pb, c, size, b, &err))
    goto out;
  run_state rs = {g_get_monotonic_time(), isatty(STDERR_FILENO), NULL, 1, c, size, size, NULL};
  p.progress = on_progress;
  p.user = &rs;
  res = g_new(float, item * frames);
  if (!ddpm_interpolate(m, a, b, &p, res, &err)) goto out;
  double secs = (g_get_monotonic_time() - rs.start) / 1e6;
  if (out_path && !png_write_grid(out_path, res, frames, c, size, size, frames, &err))
    goto out;
  if (frames_dir) {
    if (g_mkdir_with_parents(frames_dir, 0755) != 0) {
      g_set_error(&err, DDPM_ERROR, DDPM_ERROR_IO, "%s: cannot create folder", frames_dir);
      goto out;
    }
    for (int i = 0; i < frames; i++) {
      char name[32];
      g_snprintf(name, sizeof name, "frame%03d.png", i);
      char *path = g_build_filename(frames_dir, name, NULL);
      bool ok = png_write_grid(path, res + i * item, 1, c, size, size, 1, &err);
      g_free(path);
      if (!ok) goto out;
    }
  }
  printf("%s: %d frames, %s, t = %d, %s, %d-step grid, seed %" G_GUINT64_FORMAT
         ", %.1f s\n", out_path ? out_path : frames_dir, frames,
         slerp ? "slerp" : "linear", t,
         p.sampler == DDPM_SAMPLER_DDIM ? "DDIM" : "DDPM", p.steps, p.seed, secs);
  rc = 0;
out:
  if (rc) fail(err);
  g_free(model_dir);
  g_free(a);
  g_free(b);
  g_free(res);
  ddpm_model_free(m);
  ddpm_context_free(ctx);
  cli_sampler_opts_clear(&so);
  g_free(out_path);
  g_free(frames_dir);
  g_option_context_free(oc);
  return rc;
}
