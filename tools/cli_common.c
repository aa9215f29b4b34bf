/* Helpers of the subcommands in their own files: sampler options and
 * input images at the model's size. */
#include <math.h>
#include <string.h>

#include "cli.h"
#include "png_io.h"

void cli_sampler_opts_init(cli_sampler_opts *o) {
  memset(o, 0, sizeof *o);
  o->steps = -1;
  o->eta = NAN;
  o->seed = -1;
}

void cli_sampler_entries(cli_sampler_opts *o, GOptionEntry *e) {
  e[0] = (GOptionEntry){"sampler", 0, 0, G_OPTION_ARG_STRING, &o->sampler,
                        "ddpm (default) or ddim", "NAME"};
  e[1] = (GOptionEntry){"steps", 0, 0, G_OPTION_ARG_INT, &o->steps,
                        "Steps of the grid (default 1000 ddpm, 50 ddim)", "S"};
  e[2] = (GOptionEntry){"eta", 0, 0, G_OPTION_ARG_DOUBLE, &o->eta,
                        "DDIM eta in [0, 1]", "E"};
  e[3] = (GOptionEntry){"seed", 0, 0, G_OPTION_ARG_INT64, &o->seed,
                        "Seed (default: random)", "K"};
}

bool cli_sampler_apply(const cli_sampler_opts *o, ddpm_sampler *sampler,
                       int *steps, float *eta, uint64_t *seed, GError **err) {
  if (!o->sampler || !strcmp(o->sampler, "ddpm")) *sampler = DDPM_SAMPLER_DDPM;
  else if (!strcmp(o->sampler, "ddim")) *sampler = DDPM_SAMPLER_DDIM;
  else {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "--sampler: '%s' is not ddpm or ddim", o->sampler);
    return false;
  }
  if (!isnan(o->eta) && *sampler != DDPM_SAMPLER_DDIM) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "--eta %g: only the ddim sampler takes eta", o->eta);
    return false;
  }
  *steps = o->steps >= 0 ? o->steps : *sampler == DDPM_SAMPLER_DDIM ? 50 : 1000;
  *eta = isnan(o->eta) ? 0.0f : (float)o->eta;
  *seed = o->seed >= 0 ? (uint64_t)o->seed : g_random_int();
  return true;
}

void cli_sampler_opts_clear(cli_sampler_opts *o) { g_free(o->sampler); }

bool cli_load_image(const char *path, int c, int size, float *out, GError **err) {
  png_image_f img = {0};
  if (!png_read_float(path, &img, err)) return false;
  size_t hw = (size_t)img.h * img.w;
  float *planes = g_new(float, hw * c);
  ddpm_convert_channels(img.data, img.c, planes, c, hw);
  ddpm_resize(planes, c, img.h, img.w, out, size, size);
  g_free(planes);
  png_image_clear(&img);
  return true;
}
