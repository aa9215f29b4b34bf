/* 3x3 convolutions (stride 1, padding 1) on CPU devices by Winograd's
 * minimal filtering (Lavin & Gray, "Fast Algorithms for Convolutional
 * Neural Networks", 2016): each m x m output tile is
 * A^T [(G g G^T) . (B^T d B)] A, i.e. (m + 2)^2 multiplies a tile and
 * channel pair instead of 9 m^2: F(2x2, 3x3) 16 for 4 outputs (2.25-fold
 * fewer multiply-adds), F(4x4, 3x3) 36 for 16 (4-fold).
 * Three steps per chunk of tile rows:
 *  - shaders/winograd{,4}_in.comp: V = B^T d B for every tile and input
 *    channel;
 *  - the CPU convolution kernel as a 1x1 convolution, a GEMM per position:
 *    M[pos] = U[pos] V[pos], with U = G g G^T made once from the weights;
 *  - shaders/winograd{,4}_out.comp: Y = A^T M A, bias, vec, residual, scale.
 * F(2x2)'s transforms only add, subtract and halve, and its results move
 * from the direct convolution's by about one float rounding; F(4x4)'s
 * scale by up to 8 and by sixths, and move by a few (test_ops bounds
 * both), so it takes only the widest levels, where it saves the most. */
#include <string.h>

#include "ops/conv2d_cpu.h"
#include "winograd_in.spv.h"
#include "winograd_out.spv.h"
#include "winograd4_in.spv.h"
#include "winograd4_out.spv.h"

/* The weights take (m + 2)^2 / 9 of their memory as U, so the largest
 * matrices (the U-Net's deepest, least-tiled levels) stay direct and only
 * the narrower ones get F(4x4)'s 4-fold U; this keeps a celebahq256-sized
 * model within its device memory target (peak 883 MiB; 943 MiB with
 * F(4x4) up to 512 x 256, for no measurable gain). */
enum { MAX_CIN_COUT = 256 * 512, MAX_CIN_COUT_F4 = 256 * 256 };
/* F(4x4) pays on images of 16 x 16 or more (cifar10's 16 x 16 level: its
 * GEMMs 56-73 -> 38-51 ms a forward on one thread); on smaller ones its
 * tiles of 4 x 4, in pairs of 8 columns, and the GEMM's 16 columns would
 * leave most of the work padding. */
enum { MIN_SIDE_F4 = 16 };
/* Below 8 columns F(2x2) is not worth it: its input transform pads a row
 * of tiles to 8 columns and the GEMM its columns to 16, so on a 4 x 4
 * image 4 of 16 are tiles and it does 16 multiply-adds an output, where
 * the direct kernel's 4 x 4 tile does 9 (cifar10's 4 x 4 level, one
 * thread: 21 -> 12.5 ms a forward, transforms included). */
enum { MIN_W = 8 };

/* A chunk's V or M takes at most this many floats (32 MiB), unless that
 * makes more than MAX_CHUNKS chunks (huge images: the graph would grow by
 * thousands of nodes; a chunk's V is then at most a quarter of x). */
enum { CHUNK_FLOATS = 1 << 23, MAX_CHUNKS = 16 };
/* The GEMM's view of a chunk, cols / 16 tile rows of 2 x 8 columns, must
 * fit one dispatch's 65535 workgroup rows. */
enum { MAX_COLS = 16 * 65535 };

/* The two forms.  An input transform invocation covers in_tiles tiles of
 * a tile row (F(2x2) 4: 8 columns; F(4x4) 4: 16), an output transform
 * invocation out_tiles (4: 8 columns; 2: 8). */
typedef struct {
  int m;              /* output tile side */
  int in_tiles, out_tiles;
  int in_align;       /* the input transform's vec4 loads need w % in_align == 0 */
  const char *tag;    /* of U in the weight store */
  const char *in_op, *gemm_op, *out_op; /* node names (DDPM_PROFILE) */
  const uint32_t *in_spv, *out_spv;
  size_t in_size, out_size;
} winograd_form;

static const winograd_form F2 = {
  .m = 2, .in_tiles = 4, .out_tiles = 4, .in_align = 8, .tag = "winograd",
  .in_op = "conv3x3_winograd_in", .gemm_op = "conv3x3_winograd_gemm",
  .out_op = "conv3x3_winograd_out",
  .in_spv = spv_winograd_in, .out_spv = spv_winograd_out,
  .in_size = sizeof spv_winograd_in, .out_size = sizeof spv_winograd_out,
};
static const winograd_form F4 = {
  .m = 4, .in_tiles = 4, .out_tiles = 2, .in_align = 4, .tag = "winograd4",
  .in_op = "conv3x3_winograd4_in", .gemm_op = "conv3x3_winograd4_gemm",
  .out_op = "conv3x3_winograd4_out",
  .in_spv = spv_winograd4_in, .out_spv = spv_winograd4_out,
  .in_size = sizeof spv_winograd4_in, .out_size = sizeof spv_winograd4_out,
};

typedef struct {
  const winograd_form *f;
  conv2d_cpu_plan plan; /* of one position's [cout][cin] matrix */
  uint64_t per_pos;     /* floats per position */
} u_layout;

/* The weight store's tag of U in form f. */
static void u_tag(const winograd_form *f, const conv2d_cpu_plan *plan, char *tag, size_t size) {
  g_snprintf(tag, size, "%s-%d-%d", f->tag, plan->kc, plan->cor);
}

/* The form of w's U that a graph of the model has made, if any: every
 * graph shares the weights, so the first one's (at the model's own size,
 * before the upload) decides for all. */
static const winograd_form *made_form(graph *g, gweight w, const conv2d_cpu_plan *plan) {
  static const winograd_form *const forms[] = {&F4, &F2};
  char tag[48];
  for (size_t i = 0; i < G_N_ELEMENTS(forms); i++) {
    u_tag(forms[i], plan, tag, sizeof tag);
    if (wstore_has_derived(graph_weights(g), w, tag)) return forms[i];
  }
  return NULL;
}

bool conv2d_winograd_applies(graph *g, gtensor x, gweight w, int cout,
                             const conv2d_params *p) {
  if (!(ops_use_cpu_gemms(g) && p->k == 3 && p->stride == 1 && p->pad_t == 1 &&
        p->pad_l == 1 && p->pad_b == 1 && p->pad_r == 1 && x.c >= 16 && cout >= 16 &&
        (int64_t)x.c * cout <= MAX_CIN_COUT && !ops_fp16_weights(g, w)))
    return false;
  /* A copy made already decides, U or the direct kernel's; else the image. */
  conv2d_cpu_plan plan = conv2d_cpu_plan_for(x.c, cout, 1, false);
  if (made_form(g, w, &plan)) return true;
  if (conv2d_cpu_has_weights(g, w, x.c, cout, 3, false)) return false;
  return x.w >= MIN_W;
}

/* The form of w's U: the one already made, else F(4x4) for narrow weights
 * on wide images. */
static const winograd_form *pick_form(graph *g, gtensor x, gweight w, int cout,
                                      const conv2d_cpu_plan *plan) {
  const winograd_form *made = made_form(g, w, plan);
  if (made) return made;
  bool f4 = (int64_t)x.c * cout <= MAX_CIN_COUT_F4 && x.h >= MIN_SIDE_F4 && x.w >= MIN_SIDE_F4;
  return f4 ? &F4 : &F2;
}

/* U[pos] = G g G^T for every (co, ci), in double, blocked for the 1x1
 * kernel, position after position. */
static void transform_weights(const float *src, float *dst, const void *arg) {
  const u_layout *l = arg;
  static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  static const double G4[6][3] = {{1.0 / 4, 0, 0},
                                  {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                  {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                  {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                  {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                  {0, 0, 1}};
  const int n = l->f->m + 2;
  const double(*G)[3] = n == 4 ? G2 : G4;
  for (int co = 0; co < l->plan.cout; co++)
    for (int ci = 0; ci < l->plan.cin; ci++) {
      const float *gk = src + ((size_t)co * l->plan.cin + ci) * 9;
      double t[6][3]; /* G g */
      for (int i = 0; i < n; i++)
        for (int j = 0; j < 3; j++)
          t[i][j] = G[i][0] * gk[j] + G[i][1] * gk[3 + j] + G[i][2] * gk[6 + j];
      uint64_t at = conv2d_cpu_plan_index(&l->plan, co, ci, 0);
      for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
          dst[(uint64_t)(n * i + j) * l->per_pos + at] =
            (float)(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
    }
}

typedef struct {
  uint32_t cin, h, w, th, upr, r0, rows, cols;
} in_push;

typedef struct {
  uint32_t cout, h, w, th, upr, r0, rows, cols, vec_stride, vec_off, has_res;
  float out_scale;
} out_push;

void conv2d_winograd(graph *g, gtensor x, gweight w, gweight b, gtensor y,
                     const conv2d_params *p) {
  int cin = x.c, cout = y.c;
  u_layout l = {.plan = conv2d_cpu_plan_for(cin, cout, 1, false)};
  l.f = pick_form(g, x, w, cout, &l.plan);
  l.per_pos = conv2d_cpu_plan_floats(&l.plan);
  const int m = l.f->m, positions = (m + 2) * (m + 2);
  char tag[48];
  u_tag(l.f, &l.plan, tag, sizeof tag);
  gweight u = wstore_derive(graph_weights(g), w, tag, positions * l.per_pos,
                            transform_weights, &l);

  /* Tiles: m x m outputs; a tile row padded to whole input transform
   * invocations, in_upr of them, and out_upr output ones. */
  const uint32_t in_cols = (uint32_t)(m * l.f->in_tiles);
  const uint32_t th = (uint32_t)(x.h + m - 1) / m;
  const uint32_t in_upr = (uint32_t)(x.w + in_cols - 1) / in_cols;
  const uint64_t rows_all = (uint64_t)x.n * th, row_cols = (uint64_t)l.f->in_tiles * in_upr;
  const uint32_t out_upr = (uint32_t)(row_cols / l.f->out_tiles);
  const uint32_t in_v4 = x.w % l.f->in_align == 0, w8 = x.w % 8 == 0;
  /* Chunks of tile rows whose V and M fit CHUNK_FLOATS (at least a row). */
  uint64_t max_cols = CHUNK_FLOATS / ((uint64_t)positions * MAX(cin, cout));
  uint64_t chunk_rows = MAX(1, MIN(rows_all, max_cols / row_cols));
  chunk_rows = MAX(chunk_rows, (rows_all + MAX_CHUNKS - 1) / MAX_CHUNKS);
  /* w <= 16384 (the U-Net's bound), so a row fits both caps. */
  chunk_rows = MIN(chunk_rows, (MAX_COLS - 15) / row_cols);
  chunk_rows = MIN(chunk_rows, MAX(1, (UINT64_C(1) << 30) / MAX(cin, cout) / row_cols));
  for (uint64_t r0 = 0; r0 < rows_all; r0 += chunk_rows) {
    uint32_t rows = (uint32_t)MIN(chunk_rows, rows_all - r0);
    uint32_t cols = (uint32_t)((rows * row_cols + 15) / 16 * 16);
    /* The GEMM sees position pos as image pos of cols / 8 rows of 8. */
    gtensor v = graph_tensor(g, positions, cin, cols / 8, 8);
    gtensor mt = graph_tensor(g, positions, cout, cols / 8, 8);

    in_push ip = {.cin = (uint32_t)cin, .h = (uint32_t)x.h, .w = (uint32_t)x.w, .th = th,
                  .upr = in_upr, .r0 = (uint32_t)r0, .rows = rows, .cols = cols};
    gnode in = {
      .op = l.f->in_op,
      .spirv = l.f->in_spv, .spirv_size = l.f->in_size,
      .spec = {in_v4}, .n_spec = 1,
      .n_bind = 3,
      .bind = {gb_tensor_image4(x), gb_tensor_image(x), gb_tensor(v)},
      .writes = 2,
      .push_size = sizeof ip,
    };
    memcpy(in.push, &ip, sizeof ip);
    graph_groups_1d((uint64_t)cin * cols / l.f->in_tiles, 64, in.groups);
    graph_add(g, &in);

    /* The GEMM's nodes count the direct convolution's flops of the
     * chunk's output pixels (what the benchmark's GFLOP/s compare). */
    uint64_t pixels = 0;
    for (uint64_t r = r0; r < r0 + rows; r++)
      pixels += MIN((uint64_t)m, x.h - m * (r % th)) * (uint64_t)x.w;
    conv2d_params gp = {.k = 1, .stride = 1};
    conv2d_cpu_gemm gemm = {
      .img_texels = (uint32_t)(l.per_pos / 4), .op = l.f->gemm_op,
      .flops_scale = (double)pixels * 9 / ((double)positions * cols),
    };
    conv2d_cpu_record(g, v, u, b, mt, &gp, &l.plan, &gemm);

    out_push op = {.cout = (uint32_t)cout, .h = (uint32_t)x.h, .w = (uint32_t)x.w, .th = th,
                   .upr = out_upr, .r0 = (uint32_t)r0, .rows = rows, .cols = cols,
                   .vec_stride = p->vec ? (uint32_t)p->vec->c : 0, .vec_off = (uint32_t)p->vec_off,
                   .has_res = p->residual != NULL,
                   .out_scale = p->out_scale != 0.0f ? p->out_scale : 1.0f};
    gtensor res = p->residual ? *p->residual : y;
    gnode out = {
      .op = l.f->out_op,
      .spirv = l.f->out_spv, .spirv_size = l.f->out_size,
      .spec = {w8}, .n_spec = 1,
      .n_bind = 7,
      .bind = {gb_tensor_image4(mt), gb_weight_image(b),
               gb_tensor_image(p->vec ? *p->vec : mt), gb_tensor_image4(res),
               gb_tensor_image(res), gb_tensor(y), gb_tensor(y)},
      .writes = 5,
      .push_size = sizeof op,
    };
    memcpy(out.push, &op, sizeof op);
    graph_groups_1d((uint64_t)cout * rows * out_upr, 64, out.groups);
    graph_add(g, &out);
  }
}
