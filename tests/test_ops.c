/* Every kernel against its plain-C reference (tests/ref_ops.c) on random
 * shapes, including odd sizes and channel counts that do not divide the
 * workgroup size.  Runs with the validation layer; any message fails. */
#include <math.h>
#include <string.h>

#include "golden.h"
#include "model/safetensors.h"
#include "ops/ops.h"
#include "ref_ops.h"

static ddpm_context *ctx;
static GRand *rng;

static void fill(float *p, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; i++) p[i] = (float)g_rand_double_range(rng, lo, hi);
}

static float *rand_array(size_t n) {
  float *p = g_new(float, n ? n : 1);
  fill(p, n, -1, 1);
  return p;
}

/* A weight in `ws` holding a copy of host data. */
static gweight add_weight(wstore *ws, const float *data, size_t n) {
  gweight w;
  memcpy(wstore_add(ws, NULL, n, &w), data, n * sizeof(float));
  return w;
}

static void check_close(const char *what, const float *got, const float *want,
                        size_t n, double tol) {
  double max_err = 0, max_ref = 0;
  for (size_t i = 0; i < n; i++) {
    max_err = fmax(max_err, fabs((double)got[i] - want[i]));
    max_ref = fmax(max_ref, fabs(want[i]));
    if (!isfinite(got[i])) max_err = INFINITY;
  }
  double bound = tol * fmax(1.0, max_ref);
  if (g_test_verbose() || max_err > bound)
    g_printerr("%s: n=%zu max|err|=%.3g (bound %.3g)\n", what, n, max_err, bound);
  g_assert_cmpfloat(max_err, <=, bound);
}

/* Builds, compiles and runs a graph whose single output is named "y". */
typedef struct {
  wstore *ws;
  graph *g;
} harness;

static harness harness_new(void) {
  harness h;
  h.ws = wstore_new(ctx);
  h.g = graph_new(ctx, h.ws);
  return h;
}

static const float *harness_run(harness *h, gtensor y, gtensor *in,
                                const float **in_data, int n_in) {
  GError *err = NULL;
  graph_output(h->g, y, "y");
  g_assert_true(graph_compile(h->g, &err));
  g_assert_no_error(err);
  for (int i = 0; i < n_in; i++)
    memcpy(graph_input_data(h->g, in[i]), in_data[i],
           gtensor_count(in[i]) * sizeof(float));
  g_assert_true(graph_run(h->g, &err));
  g_assert_no_error(err);
  return graph_output_data(h->g, "y", NULL);
}

static void harness_free(harness *h) {
  graph_free(h->g);
  wstore_free(h->ws);
}

static void conv_case(int n, int cin, int hh, int ww, int cout, int k,
                      int stride, int pt, int pl, int pb, int pr, bool vec,
                      bool res, float scale) {
  harness h = harness_new();
  int ho = (hh + pt + pb - k) / stride + 1, wo = (ww + pl + pr - k) / stride + 1;
  float *x = rand_array((size_t)n * cin * hh * ww);
  float *wt = rand_array((size_t)cout * cin * k * k);
  float *b = rand_array(cout);
  /* vec: channels 2 .. cout + 1 of a wider tensor (the U-Net's resnets
   * read their slice of all time-embedding projections). */
  const int vw = cout + 3, voff = 2;
  float *vwide = rand_array((size_t)n * vw), *v = g_new(float, (size_t)n * cout);
  for (int i = 0; i < n; i++)
    memcpy(v + (size_t)i * cout, vwide + (size_t)i * vw + voff, cout * sizeof(float));
  float *r = rand_array((size_t)n * cout * ho * wo);
  gtensor in[3];
  const float *data[3] = {x, vwide, r};
  int n_in = 0;
  in[n_in++] = graph_input(h.g, n, cin, hh, ww);
  gtensor tv = graph_input(h.g, n, vw, 1, 1);
  gtensor tr = graph_input(h.g, n, cout, ho, wo);
  in[n_in++] = tv;
  in[n_in++] = tr;
  conv2d_params p = {.k = k, .stride = stride, .pad_t = pt, .pad_l = pl,
                     .pad_b = pb, .pad_r = pr, .vec = vec ? &tv : NULL, .vec_off = voff,
                     .residual = res ? &tr : NULL, .out_scale = scale};
  size_t nw = (size_t)cout * cin * k * k;
  if (ctx->fp16_weights && cin == 9) wt[nw / 2] = 70000.0f; /* beyond half: stays float32 */
  gweight gw = add_weight(h.ws, wt, nw);
  gtensor y = op_conv2d(h.g, in[0], gw, add_weight(h.ws, b, cout), cout, &p);
  /* With fp16 weights the kernel must compute exactly with the rounded ones. */
  if (ctx->fp16_weights && wstore_fits_f16(h.ws, gw))
    for (size_t i = 0; i < nw; i++) wt[i] = st_f16_to_f32(st_f32_to_f16(wt[i]));
  g_assert_cmpint(y.h, ==, ho);
  g_assert_cmpint(y.w, ==, wo);
  const float *got = harness_run(&h, y, in, data, n_in);
  float *want = g_new(float, gtensor_count(y));
  int rho, rwo;
  ref_conv2d(x, n, cin, hh, ww, wt, b, cout, k, stride, pt, pl, pb, pr,
             vec ? v : NULL, res ? r : NULL, scale ? scale : 1, want, &rho, &rwo);
  char *what = g_strdup_printf("conv2d n%d cin%d %dx%d cout%d k%d s%d pad%d%d%d%d%s",
                               n, cin, hh, ww, cout, k, stride, pt, pl, pb, pr,
                               ctx->fp16_weights ? " fp16" : "");
  /* Winograd F(4x4, 3x3) (cpu kernels, fp32 weights, 16 x 16 or more,
   * cin x cout <= 256 x 256) scales its terms by up to 8 and by sixths:
   * measured up to 1.0e-5 at 256 channels, against 1.6e-6 for the gpu
   * kernel's direct sums. */
  bool f4 = g_strcmp0(g_getenv("DDPM_KERNELS"), "cpu") == 0 && !ctx->fp16_weights && k == 3 &&
            stride == 1 && pt == 1 && pl == 1 && pb == 1 && pr == 1 && cin >= 16 && cout >= 16 &&
            cin * cout <= 256 * 256 && hh >= 16 && ww >= 16;
  check_close(what, got, want, gtensor_count(y), f4 ? 3e-5 : 1e-5);
  g_free(what);
  g_free(want);
  g_free(x); g_free(wt); g_free(b); g_free(v); g_free(vwide); g_free(r);
  harness_free(&h);
}

/* A later graph of the same weights (their host copies freed by the first
 * upload) must lay out a weight beyond the half range as the first graph
 * did: float32, with fp16 weights asked for. */
static void test_conv2d_fp16_later_graph(void) {
  const char *kernels[] = {"gpu", "cpu"};
  for (int v = 0; v < 2; v++) {
    g_setenv("DDPM_KERNELS", kernels[v], TRUE);
    ctx->fp16_weights = true;
    const int cin = 8, cout = 16, hw = 8, k = 3;
    size_t nw = (size_t)cout * cin * k * k;
    float *x = rand_array((size_t)cin * hw * hw), *wt = rand_array(nw);
    float *b = rand_array(cout);
    wt[3] = 70000.0f;
    harness h = harness_new();
    gweight gw = add_weight(h.ws, wt, nw), gb = add_weight(h.ws, b, cout);
    conv2d_params p = {.k = k, .stride = 1, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1};
    float *want = g_new(float, (size_t)cout * hw * hw);
    int rho, rwo;
    ref_conv2d(x, 1, cin, hw, hw, wt, b, cout, k, 1, 1, 1, 1, 1, NULL, NULL, 1, want, &rho,
               &rwo);
    for (int pass = 0; pass < 2; pass++) {
      gtensor in = graph_input(h.g, 1, cin, hw, hw);
      gtensor y = op_conv2d(h.g, in, gw, gb, cout, &p);
      const float *data[1] = {x};
      check_close("conv2d fp16, weight beyond the half range", harness_run(&h, y, &in, data, 1),
                  want, gtensor_count(y), 1e-5);
      graph_free(h.g);
      h.g = graph_new(ctx, h.ws); /* the second pass: a new graph, weights uploaded */
    }
    harness_free(&h);
    g_free(x); g_free(wt); g_free(b); g_free(want);
    ctx->fp16_weights = false;
  }
  g_unsetenv("DDPM_KERNELS");
}

/* A later graph of the same weights at another size keeps the form the
 * first graph chose (its copy is the only one on the device): F(4x4) made
 * at 32 x 32 serves 8 x 8 and 4 x 4, F(2x2) made at 8 x 8 serves 32 x 32,
 * the direct kernel's copy made at 4 x 4 serves 32 x 32. */
static void test_conv2d_winograd_later_graph(void) {
  g_setenv("DDPM_KERNELS", "cpu", TRUE);
  const int cin = 24, cout = 32, k = 3;
  const int sizes[4][2] = {{32, 8}, {8, 32}, {4, 32}, {32, 4}};
  size_t nw = (size_t)cout * cin * k * k;
  float *wt = rand_array(nw), *b = rand_array(cout);
  conv2d_params p = {.k = k, .stride = 1, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1};
  for (int order = 0; order < 4; order++) {
    harness h = harness_new();
    gweight gw = add_weight(h.ws, wt, nw), gb = add_weight(h.ws, b, cout);
    for (int pass = 0; pass < 2; pass++) {
      int hw = sizes[order][pass];
      float *x = rand_array((size_t)cin * hw * hw);
      float *want = g_new(float, (size_t)cout * hw * hw);
      int rho, rwo;
      ref_conv2d(x, 1, cin, hw, hw, wt, b, cout, k, 1, 1, 1, 1, 1, NULL, NULL, 1, want, &rho,
                 &rwo);
      gtensor in = graph_input(h.g, 1, cin, hw, hw);
      gtensor y = op_conv2d(h.g, in, gw, gb, cout, &p);
      const float *data[1] = {x};
      check_close("winograd, later graph", harness_run(&h, y, &in, data, 1), want,
                  gtensor_count(y), 1e-5);
      graph_free(h.g);
      h.g = graph_new(ctx, h.ws); /* the second pass: a new graph, weights uploaded */
      g_free(x); g_free(want);
    }
    harness_free(&h);
  }
  g_free(wt); g_free(b);
  g_unsetenv("DDPM_KERNELS");
}

/* The CPU kernel runs a small grid's slices in one dispatch plus their sum
 * (the conv2d cases above check both plans' results). */
static size_t cpu_conv_nodes(int cin, int hw, int cout) {
  harness h = harness_new();
  gtensor x = graph_input(h.g, 1, cin, hw, hw);
  float *wt = g_new0(float, (size_t)cout * cin * 9), *b = g_new0(float, cout);
  conv2d_params p = {.k = 3, .stride = 1, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1};
  op_conv2d(h.g, x, add_weight(h.ws, wt, (size_t)cout * cin * 9), add_weight(h.ws, b, cout),
            cout, &p);
  size_t nodes = graph_n_nodes(h.g);
  g_free(wt); g_free(b);
  harness_free(&h);
  return nodes;
}

static void test_conv2d_split(void) {
  g_setenv("DDPM_KERNELS", "cpu-direct", TRUE);
  g_assert_cmpuint(cpu_conv_nodes(96, 8, 64), ==, 2);  /* 4 workgroups a slice */
  g_assert_cmpuint(cpu_conv_nodes(96, 32, 64), ==, 3); /* 64 */
  g_unsetenv("DDPM_KERNELS");
}

/* Both kernels (tiled GEMM for GPUs, register-tiled kernel for CPUs) on
 * every shape; the CPU kernel's slices of input channels, ranges of output
 * channels and tiles all end ragged in some case. */
static void test_conv2d(void) {
  /* cpu: 3x3 convolutions of stride 1 and 16 or more channels in and out
   * by Winograd (fp32 weights), F(4x4, 3x3) or F(2x2, 3x3), the others
   * direct. */
  const char *kernels[] = {"gpu", "cpu", "cpu-direct"};
  for (int v = 0; v < 6; v++) {
    g_setenv("DDPM_KERNELS", kernels[v % 3], TRUE);
    ctx->fp16_weights = v >= 3; /* halves, packed two per word */
    conv_case(1, 3, 16, 16, 32, 3, 1, 1, 1, 1, 1, false, false, 0);
    conv_case(2, 5, 7, 9, 13, 3, 1, 1, 1, 1, 1, true, true, 1.5f);
    conv_case(3, 7, 9, 5, 6, 1, 1, 0, 0, 0, 0, false, true, 1.0f);
    conv_case(2, 6, 10, 10, 6, 3, 2, 1, 1, 1, 1, false, false, 0);
    conv_case(2, 6, 10, 12, 9, 3, 2, 0, 0, 1, 1, false, false, 0); /* diffusers pad 0 */
    conv_case(1, 33, 5, 3, 65, 3, 1, 1, 1, 1, 1, true, false, 0);
    conv_case(1, 4, 3, 3, 3, 1, 1, 0, 0, 0, 0, false, false, 0); /* < 4 pixels, channels */
    conv_case(1, 70, 11, 13, 72, 3, 1, 1, 1, 1, 1, true, true, 2.0f); /* 3 slices */
    conv_case(1, 8, 6, 6, 500, 3, 1, 1, 1, 1, 1, false, true, 1.0f);  /* 2 ranges */
    conv_case(2, 200, 4, 4, 24, 1, 1, 0, 0, 0, 0, true, false, 0);    /* 1x1, 2 slices of 128 */
    conv_case(1, 530, 3, 5, 20, 1, 1, 0, 0, 0, 0, false, true, 1.0f); /* 1x1, 3 slices of 256 */
    conv_case(1, 40, 17, 9, 16, 3, 2, 0, 0, 1, 1, false, false, 0);   /* stride 2, 2 slices */
    /* Widths a multiple of 4: the CPU kernel's vec4 staging and epilogue. */
    conv_case(1, 36, 12, 8, 500, 3, 1, 1, 1, 1, 1, true, true, 0.5f); /* 2 ranges */
    conv_case(2, 33, 16, 16, 20, 3, 2, 1, 1, 1, 1, false, true, 1.0f); /* stride 2 */
    conv_case(1, 9, 16, 12, 12, 3, 2, 0, 0, 1, 1, true, false, 0);    /* pad 0,1 */
    conv_case(1, 70, 4, 4, 96, 1, 1, 0, 0, 0, 0, false, true, 1.0f);  /* 1x1, 2 slices of 64 */
    /* Under 8 columns: direct (not Winograd), a 4 x 4 tile. */
    conv_case(1, 48, 4, 4, 40, 3, 1, 1, 1, 1, 1, true, true, 1.0f);   /* 2 slices */
    conv_case(1, 20, 8, 8, 24, 3, 2, 1, 1, 1, 1, false, true, 1.0f);  /* stride 2, to 4 x 4 */
    /* Slices of 64 workgroups each: dispatched one after the other; three
     * or more with fewer in one, then summed. */
    conv_case(1, 80, 32, 32, 16, 3, 1, 1, 1, 1, 1, true, true, 2.0f);
    conv_case(2, 80, 8, 8, 40, 3, 1, 1, 1, 1, 1, true, true, 0.5f);
    conv_case(1, 530, 4, 8, 20, 1, 1, 0, 0, 0, 0, true, false, 0);
    /* Winograd in two chunks of tile rows (V over 32 MiB), the second
     * starting inside the second image. */
    conv_case(2, 16, 8200, 16, 16, 3, 1, 1, 1, 1, 1, true, true, 1.0f);
    /* F(4x4, 3x3) (16 x 16 images or more, cin x cout <= 256 x 256): rows
     * of vec4s but not of 8 floats, h % 4 != 0, tile rows across images;
     * scalar rows; rows of 8 floats but not 16 (the input transform's
     * last quad half outside); the widest weights, whose sums round the
     * most. */
    conv_case(2, 24, 18, 20, 40, 3, 1, 1, 1, 1, 1, true, true, 1.5f);
    conv_case(1, 20, 17, 19, 24, 3, 1, 1, 1, 1, 1, false, true, 1.0f);
    conv_case(1, 16, 16, 24, 16, 3, 1, 1, 1, 1, 1, false, true, 0.5f); /* a pair past w */
    conv_case(1, 256, 16, 16, 256, 3, 1, 1, 1, 1, 1, true, false, 0);
    /* More tile rows than a dispatch's 65535: one dispatch per image. */
    conv_case(2, 1, 2 * 40000, 8, 4, 3, 1, 1, 1, 1, 1, true, true, 1.0f);
  }
  ctx->fp16_weights = false;
  g_unsetenv("DDPM_KERNELS");
}

static void groupnorm_case(int n, int c, int hh, int ww, int groups, bool silu) {
  harness h = harness_new();
  size_t cnt = (size_t)n * c * hh * ww;
  float *x = rand_array(cnt);
  for (size_t i = 0; i < cnt; i++) x[i] = x[i] * 3 + 0.5f; /* non-zero mean */
  float *gm = rand_array(c), *bt = rand_array(c);
  gtensor in = graph_input(h.g, n, c, hh, ww);
  gtensor y = op_groupnorm(h.g, in, add_weight(h.ws, gm, c),
                           add_weight(h.ws, bt, c), groups, 1e-5f, silu);
  const float *data[1] = {x};
  const float *got = harness_run(&h, y, &in, data, 1);
  float *want = g_new(float, cnt);
  ref_groupnorm(x, n, c, hh * ww, gm, bt, groups, 1e-5f, silu, want);
  check_close("groupnorm", got, want, cnt, 2e-5);
  g_free(want); g_free(x); g_free(gm); g_free(bt);
  harness_free(&h);
}

static void test_groupnorm(void) {
  const char *kernels[] = {"gpu", "cpu"};
  for (int v = 0; v < 2; v++) {
    g_setenv("DDPM_KERNELS", kernels[v], TRUE);
    groupnorm_case(2, 32, 16, 16, 8, false);
    groupnorm_case(3, 15, 7, 5, 5, true);
    groupnorm_case(1, 6, 33, 31, 3, true); /* more elements than threads */
    groupnorm_case(2, 4, 1, 1, 4, false);  /* one element per group */
    groupnorm_case(1, 64, 9, 9, 32, true); /* more groups than a workgroup */
    groupnorm_case(2, 96, 8, 4, 32, true); /* rows of whole vec4s, SiLU */
    groupnorm_case(1, 3, 1, 1, 3, true);   /* fewer elements than a vec4 */
    groupnorm_case(1, 65540, 1, 1, 4, false); /* 64 rows per workgroup */
    groupnorm_case(1, 65540, 9, 9, 16385, false); /* more row workgroups than 65535 */
    groupnorm_case(3, 10, 5, 5, 5, true);     /* 2 rows of 25 per workgroup */
    groupnorm_case(1, 7, 3, 4, 7, false);     /* 21 rows of 3 vec4s, only 7 */
    /* Groups whose statistics fit the CPU loops on llvmpipe, but not with
     * the one-dispatch form's third pass: statistics, then normalizing;
     * the second by its channel loop's passes (30000 channels of 1 pixel). */
    groupnorm_case(1, 2, 800, 1000, 2, true);
    groupnorm_case(1, 60000, 1, 1, 2, false);
    groupnorm_case(1, 40000, 1, 1, 2, true); /* one dispatch, near the limit */
    /* A group too large for the CPU statistics' loops on llvmpipe. */
    groupnorm_case(1, 2, 1152, 1152, 2, false);
  }
  g_unsetenv("DDPM_KERNELS");
}

static void linear_case(int n, int in_f, int out_f, bool si, bool so) {
  harness h = harness_new();
  float *x = rand_array((size_t)n * in_f);
  float *w = rand_array((size_t)in_f * out_f), *b = rand_array(out_f);
  gtensor in = graph_input(h.g, n, in_f, 1, 1);
  gtensor act = si ? op_silu(h.g, in) : in;
  gtensor y = op_linear(h.g, act, add_weight(h.ws, w, (size_t)in_f * out_f),
                        add_weight(h.ws, b, out_f), out_f, so);
  const float *data[1] = {x};
  const float *got = harness_run(&h, y, &in, data, 1);
  float *want = g_new(float, (size_t)n * out_f);
  ref_linear(x, n, in_f, w, b, out_f, si, so, want);
  check_close("linear", got, want, (size_t)n * out_f, 1e-5);
  g_free(want); g_free(x); g_free(w); g_free(b);
  harness_free(&h);
}

static void test_linear(void) {
  const char *kernels[] = {"gpu", "cpu"};
  for (int v = 0; v < 2; v++) {
    g_setenv("DDPM_KERNELS", kernels[v], TRUE);
    linear_case(2, 32, 128, false, true);
    linear_case(3, 129, 67, true, false);
    linear_case(1, 1, 1, false, false);
    linear_case(5, 600, 70, true, false); /* CPU kernels: three slices */
  }
  g_unsetenv("DDPM_KERNELS");
}

static void timestep_case(int n, int dim, float shift, bool flip) {
  harness h = harness_new();
  int half = dim / 2;
  float *freq = g_new(float, half ? half : 1);
  ref_timestep_freqs(half, shift, freq);
  float *t = g_new(float, n);
  for (int i = 0; i < n; i++) t[i] = (float)g_rand_int_range(rng, 0, 1000);
  t[0] = 999; /* the largest argument DDPM uses */
  gtensor in = graph_input(h.g, n, 1, 1, 1);
  gtensor y = op_timestep_embed(h.g, in, add_weight(h.ws, freq, half), dim,
                                half, flip);
  const float *data[1] = {t};
  const float *got = harness_run(&h, y, &in, data, 1);
  float *want = g_new(float, (size_t)n * dim);
  ref_timestep_embed(t, n, freq, dim, half, flip, want);
  check_close("timestep_embed", got, want, (size_t)n * dim, 1e-6);
  g_free(want); g_free(t); g_free(freq);
  harness_free(&h);
}

static void test_timestep_embed(void) {
  timestep_case(5, 32, 1, false);
  timestep_case(3, 16, 0, true);
  timestep_case(4, 33, 0, true); /* odd: zero pad */
  timestep_case(2, 256, 0, false);
}

static void attention_case(int n, int c, int hh, int ww, int heads) {
  harness h = harness_new();
  size_t cnt = (size_t)n * c * hh * ww;
  float *q = rand_array(cnt), *k = rand_array(cnt), *v = rand_array(cnt);
  for (size_t i = 0; i < cnt; i++) q[i] *= 4; /* peaky softmax */
  gtensor in[3] = {graph_input(h.g, n, c, hh, ww), graph_input(h.g, n, c, hh, ww),
                   graph_input(h.g, n, c, hh, ww)};
  gtensor y = op_attention(h.g, in[0], in[1], in[2], heads);
  const float *data[3] = {q, k, v};
  const float *got = harness_run(&h, y, in, data, 3);
  float *want = g_new(float, cnt);
  ref_attention(q, k, v, n, c, hh * ww, heads, want);
  check_close("attention", got, want, cnt, 1e-5);
  g_free(want); g_free(q); g_free(k); g_free(v);
  harness_free(&h);
}

static void test_attention(void) {
  /* cpu: the products as GEMMs through the convolution kernel where they
   * are large enough; cpu-direct: the direct CPU kernels throughout. */
  const char *kernels[] = {"gpu", "cpu", "cpu-direct"};
  for (int v = 0; v < 3; v++) {
    g_setenv("DDPM_KERNELS", kernels[v], TRUE);
    attention_case(2, 64, 8, 8, 1);
    attention_case(1, 48, 6, 6, 6);
    attention_case(3, 15, 5, 3, 3);
    attention_case(1, 8, 1, 1, 1);
    attention_case(1, 40, 9, 7, 2); /* dh 20: a partial channel block */
    /* With cpu, the GEMM form (256 tokens or more, 128 channels a head or more). */
    attention_case(2, 256, 16, 16, 2); /* 2 heads of 128 */
    attention_case(1, 128, 16, 17, 1); /* 272 tokens: rows not in vec4s */
  }
  g_unsetenv("DDPM_KERNELS");
}

/* Rows of whole vec4s (w % 4 == 0) or not. */
static void upsample_concat_case(int n, int c, int hh, int ww, int c2) {
  harness h = harness_new();
  size_t cnt = (size_t)n * c * hh * ww;
  float *x = rand_array(cnt);
  float *b = rand_array((size_t)n * c2 * 4 * hh * ww);
  gtensor in[2] = {graph_input(h.g, n, c, hh, ww),
                   graph_input(h.g, n, c2, 2 * hh, 2 * ww)};
  gtensor up = op_upsample_nearest2x(h.g, in[0]);
  graph_output(h.g, up, "up");
  gtensor y = op_concat(h.g, up, in[1]);
  const float *data[2] = {x, b};
  const float *got = harness_run(&h, y, in, data, 2);
  float *want_up = g_new(float, cnt * 4);
  ref_upsample2x(x, n * c, hh, ww, want_up);
  check_close("upsample", graph_output_data(h.g, "up", NULL), want_up, cnt * 4, 0);
  float *want = g_new(float, gtensor_count(y));
  ref_concat(want_up, b, n, c, c2, 4 * hh * ww, want);
  check_close("concat", got, want, gtensor_count(y), 0);
  g_free(want); g_free(want_up); g_free(x); g_free(b);
  harness_free(&h);
}

static void test_upsample_concat(void) {
  upsample_concat_case(2, 5, 3, 7, 3);
  upsample_concat_case(2, 5, 3, 8, 3);
  upsample_concat_case(1, 3, 4, 4, 2);
  /* 2^20 rows and more: exact divisions. */
  upsample_concat_case(1, 1, (1 << 20) + 3, 4, 1);
}

static void test_affine(void) {
  harness h = harness_new();
  size_t cnt = 1001;
  float *x = rand_array(cnt);
  gtensor in = graph_input(h.g, 1, 1, 7, 143);
  gtensor y = op_affine(h.g, in, 2.0f, -1.0f);
  const float *data[1] = {x};
  const float *got = harness_run(&h, y, &in, data, 1);
  float *want = g_new(float, cnt);
  for (size_t i = 0; i < cnt; i++) want[i] = 2.0f * x[i] - 1.0f;
  check_close("affine", got, want, cnt, 1e-7);
  g_free(want); g_free(x);
  harness_free(&h);
}

/* The device generator (shaders/philox.glsl) against ddpm_noise: the same
 * Philox bits, so values agree to float rounding of log/sincos.  The seed
 * straddles 2^32 so the per-item seed + b carries into the high word. */
static void test_noise(void) {
  harness h = harness_new();
  const uint64_t seed = 0xFFFFFFFEull;
  const uint32_t stream = 0x40000105u;
  gtensor shape = {.n = 3, .c = 3, .h = 17, .w = 19};
  gtensor y = op_noise(h.g, shape, seed, stream);
  const float *got = harness_run(&h, y, NULL, NULL, 0);
  size_t item = 3 * 17 * 19, cnt = 3 * item;
  float *want = g_new(float, cnt);
  for (size_t i = 0; i < cnt; i++)
    want[i] = ddpm_noise(seed + i / item, stream, i % item);
  check_close("noise", got, want, cnt, 2e-6);
  g_free(want);
  harness_free(&h);
}

/* Many tensors with overlapping lifetimes: the arena plan must not let two
 * live tensors share memory (a chain of adds checks every value). */
static void test_arena_reuse(void) {
  harness h = harness_new();
  float *x = rand_array(64);
  gtensor in = graph_input(h.g, 1, 4, 4, 4);
  gtensor a = op_affine(h.g, in, 1.0f, 1.0f);
  gtensor b = op_affine(h.g, a, 2.0f, 0.0f);
  gtensor c = op_concat(h.g, a, b); /* a still live here */
  gtensor d = op_affine(h.g, c, 1.0f, -3.0f);
  gtensor e = op_affine(h.g, d, 0.5f, 0.0f);
  const float *data[1] = {x};
  const float *got = harness_run(&h, e, &in, data, 1);
  float want[128];
  for (int i = 0; i < 64; i++) {
    want[i] = ((x[i] + 1) - 3) * 0.5f;
    want[64 + i] = ((x[i] + 1) * 2 - 3) * 0.5f;
  }
  check_close("arena", got, want, 128, 1e-6);
  g_assert_cmpuint(graph_plan_arena_bytes(h.g), <, 7 * vk_align(128 * 4));
  g_free(x);
  harness_free(&h);
}

static void reverse_fill(const float *src, float *dst, const void *arg) {
  int n = *(const int *)arg;
  for (int i = 0; i < n; i++) dst[i] = src[n - 1 - i];
}

/* A derived weight is made once, replaces its original on the device, and
 * holds the rearranged data. */
static void test_wstore_derive(void) {
  wstore *ws = wstore_new(ctx);
  gweight a, b;
  float *pa = wstore_add(ws, "a", 5, &a);
  for (int i = 0; i < 5; i++) pa[i] = (float)i;
  memcpy(wstore_add(ws, "b", 3, &b), (float[]){7, 8, 9}, sizeof(float[3]));
  uint64_t before = wstore_bytes(ws), params = wstore_params(ws);
  int n = 5;
  gweight d1 = wstore_derive(ws, a, "rev", 8, reverse_fill, &n);
  gweight d2 = wstore_derive(ws, a, "rev", 8, reverse_fill, &n);
  g_assert_cmpint(d1.id, ==, d2.id);
  g_assert_cmpint(d1.count, ==, 8);
  g_assert_cmpuint(wstore_params(ws), ==, params);
  g_assert_cmpuint(wstore_bytes(ws), ==, before - vk_align(5 * sizeof(float)) +
                                             vk_align(8 * sizeof(float)));
  GError *err = NULL;
  g_assert_true(wstore_upload(ws, &err));
  /* Read both back through a graph: y = concat(d1, b) as tensors. */
  vk_binding vd = wstore_binding(ws, d1.id), vb = wstore_binding(ws, b.id);
  g_assert_true(vd.offset != vb.offset);
  vk_buffer host;
  g_assert_true(vk_buffer_create(ctx, 64, VK_MEM_HOST, &host, &err));
  vk_program p;
  g_assert_true(vk_program_begin(ctx, &p, 1, &err));
  vk_program_copy(&p, vd.buffer, vd.offset, &host, 0, 8 * sizeof(float));
  vk_program_copy(&p, vb.buffer, vb.offset, &host, 32, 3 * sizeof(float));
  g_assert_true(vk_program_end(&p, &err) && vk_program_run(ctx, &p, &err));
  vk_program_destroy(ctx, &p);
  const float *got = host.mapped;
  const float want[8] = {4, 3, 2, 1, 0, 0, 0, 0};
  for (int i = 0; i < 8; i++) g_assert_cmpfloat(got[i], ==, want[i]);
  for (int i = 0; i < 3; i++) g_assert_cmpfloat(got[8 + i], ==, 7 + i);
  vk_buffer_destroy(ctx, &host);
  wstore_free(ws);
}

/* Arrays joined end to end: made once, replacing their parts on the
 * device, holding their data in order. */
static void test_wstore_concat(void) {
  wstore *ws = wstore_new(ctx);
  gweight parts[2], keep;
  memcpy(wstore_add(ws, "a", 3, &parts[0]), (float[]){1, 2, 3}, sizeof(float[3]));
  memcpy(wstore_add(ws, "b", 2, &parts[1]), (float[]){4, 5}, sizeof(float[2]));
  memcpy(wstore_add(ws, "c", 1, &keep), (float[]){6}, sizeof(float));
  uint64_t before = wstore_bytes(ws), params = wstore_params(ws);
  gweight j1 = wstore_concat(ws, "@ab", parts, 2), j2 = wstore_concat(ws, "@ab", parts, 2);
  g_assert_cmpint(j1.id, ==, j2.id);
  g_assert_cmpint(j1.count, ==, 5);
  g_assert_cmpuint(wstore_params(ws), ==, params);
  g_assert_cmpuint(wstore_bytes(ws), ==, before - vk_align(3 * sizeof(float)) -
                                             vk_align(2 * sizeof(float)) +
                                             vk_align(5 * sizeof(float)));
  GError *err = NULL;
  g_assert_true(wstore_upload(ws, &err));
  vk_binding vj = wstore_binding(ws, j1.id);
  vk_buffer host;
  g_assert_true(vk_buffer_create(ctx, 64, VK_MEM_HOST, &host, &err));
  vk_program p;
  g_assert_true(vk_program_begin(ctx, &p, 1, &err));
  vk_program_copy(&p, vj.buffer, vj.offset, &host, 0, 5 * sizeof(float));
  g_assert_true(vk_program_end(&p, &err) && vk_program_run(ctx, &p, &err));
  vk_program_destroy(ctx, &p);
  const float *got = host.mapped;
  for (int i = 0; i < 5; i++) g_assert_cmpfloat(got[i], ==, i + 1);
  vk_buffer_destroy(ctx, &host);
  wstore_free(ws);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  ctx = test_context();
  rng = g_rand_new_with_seed(42);
  g_test_add_func("/ops/conv2d", test_conv2d);
  g_test_add_func("/ops/conv2d_split", test_conv2d_split);
  g_test_add_func("/ops/conv2d_fp16_later_graph", test_conv2d_fp16_later_graph);
  g_test_add_func("/ops/conv2d_winograd_later_graph", test_conv2d_winograd_later_graph);
  g_test_add_func("/ops/groupnorm", test_groupnorm);
  g_test_add_func("/ops/linear", test_linear);
  g_test_add_func("/ops/timestep_embed", test_timestep_embed);
  g_test_add_func("/ops/attention", test_attention);
  g_test_add_func("/ops/upsample_concat", test_upsample_concat);
  g_test_add_func("/ops/affine", test_affine);
  g_test_add_func("/ops/noise", test_noise);
  g_test_add_func("/ops/arena_reuse", test_arena_reuse);
  g_test_add_func("/ops/wstore_derive", test_wstore_derive);
  g_test_add_func("/ops/wstore_concat", test_wstore_concat);
  int rc = g_test_run();
  g_rand_free(rng);
  return test_context_finish(ctx, rc);
}
