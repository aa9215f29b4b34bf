/* What the subcommands in their own files (cmd_*.c) share with ddpm.c. */
#ifndef DDPM_CLI_H
#define DDPM_CLI_H

#include <stdbool.h>

#include <glib.h>

#include "ddpm/ddpm.h"

/* Prints "ddpm: MESSAGE" to stderr, frees err; returns 1. */
int fail(GError *err);

/* Resolves `spec` (a folder, a Hugging Face cache name, or NULL for the
 * default model) into *dir and loads it on a new context *ctx; *size is
 * the model's image side, *c its channels.  On failure the caller still
 * frees *dir and *ctx. */
ddpm_model *open_model(const char *spec, char **dir, ddpm_context **ctx,
                       int *size, int *c, GError **err);

/* The progress callback's state: a bar on a terminal, preview PNGs of
 * [batch, c, h, w] into `previews` when set. */
typedef struct {
  gint64 start;
  bool tty;
  const char *previews;
  int batch, c, h, w;
  GError *error;
} run_state;

bool on_progress(const ddpm_progress *p, void *user);

/* Subcommands: argv[0] is the command's name. */
int cmd_interpolate(int argc, char **argv); /* cmd_interpolate.c */
int cmd_progressive(int argc, char **argv); /* cmd_progressive.c */

/* ---- cli_common.c ---------------------------------------------------------- */

/* Sampler options as generate takes them: --sampler --steps --eta --seed. */
typedef struct {
  char *sampler;
  int steps;
  double eta;
  gint64 seed;
} cli_sampler_opts;

/* Fills entries[0..3] with the four options writing into o (initialised by
 * cli_sampler_opts_init); entries must have room for them. */
void cli_sampler_opts_init(cli_sampler_opts *o);
void cli_sampler_entries(cli_sampler_opts *o, GOptionEntry *entries);
/* Applies o to sampler, steps (default 1000 ddpm, 50 ddim), eta and seed
 * (default random); false with *err naming the bad option. */
bool cli_sampler_apply(const cli_sampler_opts *o, ddpm_sampler *sampler,
                       int *steps, float *eta, uint64_t *seed, GError **err);
void cli_sampler_opts_clear(cli_sampler_opts *o);

/* Reads a PNG into [c, size, size] model space as sdedit does: its channels
 * converted to c, resized to size x size. */
bool cli_load_image(const char *path, int c, int size, float *out, GError **err);

#endif
