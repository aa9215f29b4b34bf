/* What `ddpm progressive` relies on (Ho et al. 2020, Figs. 6-7), with the
 * trained default model (models/default, DDPM_TEST_MODEL): a run's x_t kept
 * through the preview callback and resumed as a batch of N with the run's
 * seed gives finish 0 = the uninterrupted run, bit for bit, and finishes
 * from an early (large t) x_t differ more from one another than finishes
 * from a late one. */
#include <string.h>

#include "golden.h"

#define STEPS 20
#define EVERY 5
#define FINISHES 4
#define SEED 21

static ddpm_context *ctx;

typedef struct {
  size_t item;
  int kept, step[STEPS], t[STEPS];
  float *x_t; /* [STEPS, item] */
} keep;

static bool on_keep(const ddpm_progress *p, void *user) {
  keep *k = user;
  if (p->x_t && p->step < p->total) {
    memcpy(k->x_t + k->kept * k->item, p->x_t, k->item * sizeof(float));
    k->step[k->kept] = p->step;
    k->t[k->kept++] = p->t;
  }
  return true;
}

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
  return sum / pairs;
}

static void test_finishes(void) {
  const char *dir = g_getenv("DDPM_TEST_MODEL");
  if (!dir) {
    g_test_skip("DDPM_TEST_MODEL not set");
    return;
  }
  GError *err = NULL;
  ddpm_model *m = ddpm_model_load(ctx, dir, &err);
  g_assert_no_error(err);
  ddpm_model_info info;
  ddpm_model_get_info(m, &info);
  keep k = {.item = (size_t)info.in_channels * info.sample_size * info.sample_size};
  k.x_t = g_new(float, STEPS * k.item);
  ddpm_sample_params p = ddpm_sample_default_params();
  p.steps = STEPS;
  p.seed = SEED;
  p.preview_every = EVERY;
  p.progress = on_keep;
  p.user = &k;
  float *final = g_new(float, k.item);
  g_assert_true(ddpm_sample(m, &p, final, &err));
  g_assert_cmpint(k.kept, ==, (STEPS - 1) / EVERY);

  float *start = g_new(float, FINISHES * k.item), *fin = g_new(float, FINISHES * k.item);
  double dist[STEPS];
  for (int r = 0; r < k.kept; r++) {
    for (int j = 0; j < FINISHES; j++)
      memcpy(start + j * k.item, k.x_t + r * k.item, k.item * sizeof(float));
    ddpm_sample_params q = p;
    q.progress = NULL;
    q.preview_every = 0;
    q.batch = FINISHES;
    q.start_step = k.step[r];
    q.start_x = start;
    g_assert_true(ddpm_sample(m, &q, fin, &err));
    g_assert_true(memcmp(fin, final, k.item * sizeof(float)) == 0);
    dist[r] = mean_pairwise(fin, FINISHES, k.item);
    g_printerr("step %d (t = %d): finish 0 == the run; %d finishes' mean pairwise "
               "RMS distance %.4f\n", k.step[r], k.t[r], FINISHES, dist[r]);
  }
  g_assert_cmpfloat(dist[0], >, dist[k.kept - 1]);
  g_assert_cmpfloat(dist[k.kept - 1], >, 0);
  g_free(start); g_free(fin); g_free(final); g_free(k.x_t);
  ddpm_model_free(m);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  ctx = test_context();
  g_test_add_func("/progressive/finishes", test_finishes);
  int rc = g_test_run();
  return test_context_finish(ctx, rc);
}
