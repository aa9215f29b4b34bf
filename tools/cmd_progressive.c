/* ddpm progressive: what is already decided at t (Ho et al. 2020, section
 * 4.3, Figs. 6-7).  One run keeps its x_t every K steps; from each kept x_t
 * N finishes are sampled with the run's seed (finish j uses seed + j, so
 * finish 0 is the run itself).  The grid has one row per kept step: x_t,
 * the predicted x0, then the N finishes. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <unistd.h>

#include "cli.h"
#include "png_io.h"

#define MAX_FINISHES 64
#define MAX_ROWS 64

typedef struct {
  run_state rs;
  int every, n_run, rows, kept;
  size_t item;
  float *x_t, *x0; /* [rows, item] */
  int *step, *t;   /* [rows] */
} keep_state;

static bool on_keep(const ddpm_progress *p, void *user) {
  keep_state *ks = user;
  if (p->x_t && p->step < ks->n_run && p->step % ks->every == 0 && ks->kept < ks->rows) {
    memcpy(ks->x_t + ks->kept * ks->item, p->x_t, ks->item * sizeof(float));
    memcpy(ks->x0 + ks->kept * ks->item, p->x0_pred, ks->item * sizeof(float));
    ks->step[ks->kept] = p->step;
    ks->t[ks->kept++] = p->t;
  }
  return on_progress(p, &ks->rs);
}

/* The core: n finishes of `run` from its sample x_t after `step` steps,
 * into out [n, item].  Finish j is the run resumed with seed + j. */
static bool finishes_from(ddpm_model *m, const ddpm_sample_params *run, int step,
                          const float *x_t, size_t item, int n, float *out,
                          GError **err) {
  float *start = g_new(float, item * n);
  for (int j = 0; j < n; j++) memcpy(start + j * item, x_t, item * sizeof(float));
  ddpm_sample_params p = *run;
  p.batch = n;
  p.start_step = step;
  p.start_x = start;
  p.preview_every = 0;
  p.progress = NULL;
  bool ok = ddpm_sample(m, &p, out, err);
  g_free(start);
  return ok;
}

/* Mean over pairs of the RMS difference per value. */
static double mean_pairwise(const float *x, int n, size_t item) {
  double sum = 0;
  int pairs = 0;
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++, pairs++) {
      double s = 0;
      for (size_t k = 0; k < item; k++) {
        double d = (double)x[i * item + k] - x[j * item + k];
        s += d * d;
      }
      sum += sqrt(s / item);
    }
  return pairs ? sum / pairs : 0;
}

int cmd_progressive(int argc, char **argv) {
  cli_sampler_opts so;
  cli_sampler_opts_init(&so);
  int every = 0, n_fin = 4;
  char *out_path = NULL;
  GOptionEntry e[8] = {
    {"every", 0, 0, G_OPTION_ARG_INT, &every,
     "Keep x_t every K steps (default: a fifth of the run)", "K"},
    {"finishes", 0, 0, G_OPTION_ARG_INT, &n_fin, "Finishes per kept x_t (default 4)", "N"},
    {"output", 'o', 0, G_OPTION_ARG_FILENAME, &out_path, "The grid", "OUT.png"},
  };
  cli_sampler_entries(&so, e + 3);
  e[7] = (GOptionEntry){NULL};
  GOptionContext *oc = g_option_context_new(
    "[MODEL] - x_t, predicted x0 and N finishes every K steps of one run");
  g_option_context_add_main_entries(oc, e, NULL);
  GError *err = NULL;
  int rc = 1;
  char *model_dir = NULL;
  ddpm_context *ctx = NULL;
  ddpm_model *m = NULL;
  keep_state ks = {0};
  float *final = NULL, *grid = NULL;
  if (!g_option_context_parse(oc, &argc, &argv, &err)) goto out;
  if (argc > 2 || !out_path) {
    g_set_error_literal(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                        argc > 2 ? "wrong arguments; see ddpm progressive --help"
                                 : "give -o OUT.png");
    goto out;
  }
  ddpm_sample_params p = ddpm_sample_default_params();
  if (!cli_sampler_apply(&so, &p.sampler, &p.steps, &p.eta, &p.seed, &err)) goto out;
  if (p.sampler == DDPM_SAMPLER_DDIM && p.eta == 0) {
    g_set_error_literal(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                        "--sampler ddim with --eta 0 is deterministic: every "
                        "finish of an x_t would be the same image; use "
                        "--sampler ddpm or --eta > 0");
    goto out;
  }
  if (n_fin < 1 || n_fin > MAX_FINISHES) {
    g_set_error(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "--finishes %d out of range 1..%d", n_fin, MAX_FINISHES);
    goto out;
  }
  int size, c;
  if (!(m = open_model(argc == 2 ? argv[1] : NULL, &model_dir, &ctx, &size, &c, &err)))
    goto out;
  int n_run = ddpm_sample_steps_run(m, &p, &err);
  if (n_run < 0) goto out;
  if (n_run < 2) {
    g_set_error(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "--steps %d: a run of one step keeps no x_t", p.steps);
    goto out;
  }
  if (every == 0) every = MAX(1, n_run / 5);
  if (every < 1 || every >= n_run || (n_run - 1) / every > MAX_ROWS) {
    g_set_error(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "--every %d out of range %d..%d (a %d-step run, at most %d rows)",
                every, MAX(1, (n_run - 1 + MAX_ROWS - 1) / MAX_ROWS), n_run - 1,
                n_run, MAX_ROWS);
    goto out;
  }
  size_t item = (size_t)c * size * size;
  ks.rs = (run_state){g_get_monotonic_time(), isatty(STDERR_FILENO), NULL, 1, c, size, size, NULL};
  ks.every = every;
  ks.n_run = n_run;
  ks.rows = (n_run - 1) / every;
  ks.item = item;
  ks.x_t = g_new(float, item * ks.rows);
  ks.x0 = g_new(float, item * ks.rows);
  ks.step = g_new(int, ks.rows);
  ks.t = g_new(int, ks.rows);
  p.preview_every = every;
  p.progress = on_keep;
  p.user = &ks;
  final = g_new(float, item);
  if (!ddpm_sample(m, &p, final, &err)) goto out;
  p.progress = NULL;
  p.user = NULL;
  int cols = n_fin + 2;
  grid = g_new(float, item * cols * ks.kept);
  for (int r = 0; r < ks.kept; r++) {
    float *row = grid + (size_t)r * cols * item;
    memcpy(row, ks.x_t + r * item, item * sizeof(float));
    memcpy(row + item, ks.x0 + r * item, item * sizeof(float));
    if (!finishes_from(m, &p, ks.step[r], ks.x_t + r * item, item, n_fin,
                       row + 2 * item, &err))
      goto out;
    printf("step %d (t = %d): finishes' mean pairwise RMS distance %.4f\n",
           ks.step[r], ks.t[r], mean_pairwise(row + 2 * item, n_fin, item));
  }
  if (!png_write_grid(out_path, grid, cols * ks.kept, c, size, size, cols, &err))
    goto out;
  printf("%s: %d rows (every %d of %d steps) x (x_t, x0, %d finishes), %s, seed %"
         G_GUINT64_FORMAT ", %.1f s\n", out_path, ks.kept, every, n_run, n_fin,
         p.sampler == DDPM_SAMPLER_DDIM ? "DDIM" : "DDPM", p.seed,
         (g_get_monotonic_time() - ks.rs.start) / 1e6);
  rc = 0;
out:
  if (rc) fail(err);
  g_free(model_dir);
  g_free(final);
  g_free(grid);
  g_free(ks.x_t);
  g_free(ks.x0);
  g_free(ks.step);
  g_free(ks.t);
  ddpm_model_free(m);
  ddpm_context_free(ctx);
  cli_sampler_opts_clear(&so);
  g_free(out_path);
  g_option_context_free(oc);
  return rc;
}
