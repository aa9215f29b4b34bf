/* 3x3 convolutions (stride 1, padding 1) on CPU devices by Winograd's
 * minimal filtering F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for
 * Convolutional Neural Networks", 2016): each 2x2 output tile is
 * A^T [(G g G^T) . (B^T d B)] A, i.e. 16 multiplies a tile and channel
 * pair instead of 36, so the convolution's multiply-adds fall 2.25-fold.
 * Three steps per chunk of tile rows:
 *  - shaders/winograd_in.comp: V = B^T d B for every tile and input channel;
 *  - the CPU convolution kernel as a 1x1 convolution, a GEMM per position:
 *    M[pos] = U[pos] V[pos], with U = G g G^T made once from the weights;
 *  - shaders/winograd_out.comp: Y = A^T M A, bias, vec, residual, scale.
 * The transforms only add, subtract and halve; against the direct
 * convolution the results move by about one float rounding. */
#include <string.h>

#include "ops/conv2d_cpu.h"
#include "winograd_in.spv.h"
#include "winograd_out.spv.h"

enum { POSITIONS = 16 };

/* The weights take 16/9 of their memory as U, so the largest matrices
 * (the U-Net's deepest, least-tiled levels) stay direct; this keeps a
 * celebahq256-sized model within its device memory target. */
enum { MAX_CIN_COUT = 256 * 512 };

/* A chunk's V or M takes at most this many floats (32 MiB), unless that
 * makes more than MAX_CHUNKS chunks (huge images: the graph would grow by
 * thousands of nodes; a chunk's V is then at most a quarter of x). */
enum { CHUNK_FLOATS = 1 << 23, MAX_CHUNKS = 16 };
/* The GEMM's view of a chunk, cols / 16 tile rows of 2 x 8 columns, must
 * fit one dispatch's 65535 workgroup rows. */
enum { MAX_COLS = 16 * 65535 };

bool conv2d_winograd_applies(graph *g, gtensor x, gweight w, int cout,
                             const conv2d_params *p) {
  /* Depends on the weight and the layer only, never on the image: every
   * graph of a model must ask for the same weight layout. */
  return ops_use_cpu_gemms(g) && p->k == 3 && p->stride == 1 && p->pad_t == 1 && p->pad_l == 1 &&
         p->pad_b == 1 && p->pad_r == 1 && x.c >= 16 && cout >= 16 &&
         (int64_t)x.c * cout <= MAX_CIN_COUT && !ops_fp16_weights(g, w);
}

typedef struct {
  conv2d_cpu_plan plan; /* of one position's [cout][cin] matrix */
  uint64_t per_pos;     /* floats per position */
} u_layout;

/* U[pos] = G g G^T for every (co, ci), in double, blocked for the 1x1
 * kernel, position after position. */
static void transform_weights(const float *src, float *dst, const void *arg) {
  const u_layout *l = arg;
  static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  for (int co = 0; co < l->plan.cout; co++)
    for (int ci = 0; ci < l->plan.cin; ci++) {
      const float *gk = src + ((size_t)co * l->plan.cin + ci) * 9;
      double t[4][3]; /* G g */
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
          t[i][j] = G[i][0] * gk[j] + G[i][1] * gk[3 + j] + G[i][2] * gk[6 + j];
      uint64_t at = conv2d_cpu_plan_index(&l->plan, co, ci, 0);
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
          dst[(uint64_t)(4 * i + j) * l->per_pos + at] =
            (float)(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
    }
}

typedef struct {
  uint32_t cin, h, w, th, qpr, r0, rows, cols;
} in_push;

typedef struct {
  uint32_t cout, h, w, th, qpr, r0, rows, cols, has_vec, has_res;
  float out_scale;
} out_push;

void conv2d_winograd(graph *g, gtensor x, gweight w, gweight b, gtensor y,
                     const conv2d_params *p) {
  int cin = x.c, cout = y.c;
  u_layout l = {.plan = conv2d_cpu_plan_for(cin, cout, 1, false)};
  l.per_pos = conv2d_cpu_plan_floats(&l.plan);
  char tag[48];
  g_snprintf(tag, sizeof tag, "winograd-%d-%d", l.plan.kc, l.plan.cor);
  gweight u = wstore_derive(graph_weights(g), w, tag, POSITIONS * l.per_pos,
                            transform_weights, &l);

  /* Tiles: 2x2 outputs; a tile row padded to quads of 4 tiles. */
  const uint32_t th = (uint32_t)(x.h + 1) / 2, qpr = (uint32_t)(x.w + 7) / 8;
  const uint32_t w8 = x.w % 8 == 0;
  const uint64_t rows_all = (uint64_t)x.n * th, row_cols = 4 * qpr;
  /* Chunks of tile rows whose V and M fit CHUNK_FLOATS (at least a row). */
  uint64_t max_cols = CHUNK_FLOATS / ((uint64_t)POSITIONS * MAX(cin, cout));
  uint64_t chunk_rows = MAX(1, MIN(rows_all, max_cols / row_cols));
  chunk_rows = MAX(chunk_rows, (rows_all + MAX_CHUNKS - 1) / MAX_CHUNKS);
  /* w <= 16384 (the U-Net's bound), so a row fits both caps. */
  chunk_rows = MIN(chunk_rows, (MAX_COLS - 15) / row_cols);
  chunk_rows = MIN(chunk_rows, MAX(1, (UINT64_C(1) << 30) / MAX(cin, cout) / row_cols));
  for (uint64_t r0 = 0; r0 < rows_all; r0 += chunk_rows) {
    uint32_t rows = (uint32_t)MIN(chunk_rows, rows_all - r0);
    uint32_t cols = (uint32_t)((rows * row_cols + 15) / 16 * 16);
    /* The GEMM sees position pos as image pos of cols / 8 rows of 8. */
    gtensor v = graph_tensor(g, POSITIONS, cin, cols / 8, 8);
    gtensor m = graph_tensor(g, POSITIONS, cout, cols / 8, 8);

    in_push ip = {.cin = (uint32_t)cin, .h = (uint32_t)x.h, .w = (uint32_t)x.w, .th = th,
                  .qpr = qpr, .r0 = (uint32_t)r0, .rows = rows, .cols = cols};
    gnode in = {
      .op = "conv3x3_winograd_in",
      .spirv = spv_winograd_in, .spirv_size = sizeof spv_winograd_in,
      .spec = {w8}, .n_spec = 1,
      .n_bind = 3,
      .bind = {gb_tensor_image4(x), gb_tensor_image(x), gb_tensor(v)},
      .writes = 2,
      .push_size = sizeof ip,
    };
    memcpy(in.push, &ip, sizeof ip);
    graph_groups_1d((uint64_t)cin * cols / 4, 64, in.groups);
    graph_add(g, &in);

    /* The GEMM's nodes count the direct convolution's flops of the
     * chunk's output pixels (what the benchmark's GFLOP/s compare). */
    uint64_t pixels = 0;
    for (uint64_t r = r0; r < r0 + rows; r++) pixels += MIN(2, x.h - 2 * (r % th)) * (uint64_t)x.w;
    conv2d_params gp = {.k = 1, .stride = 1};
    conv2d_cpu_gemm gemm = {
      .img_texels = (uint32_t)(l.per_pos / 4), .op = "conv3x3_winograd_gemm",
      .flops_scale = (double)pixels * 9 / ((double)POSITIONS * cols),
    };
    conv2d_cpu_record(g, v, u, b, m, &gp, &l.plan, &gemm);

    out_push op = {.cout = (uint32_t)cout, .h = (uint32_t)x.h, .w = (uint32_t)x.w, .th = th,
                   .qpr = qpr, .r0 = (uint32_t)r0, .rows = rows, .cols = cols,
                   .has_vec = p->vec != NULL, .has_res = p->residual != NULL,
                   .out_scale = p->out_scale != 0.0f ? p->out_scale : 1.0f};
    gtensor res = p->residual ? *p->residual : y;
    gnode out = {
      .op = "conv3x3_winograd_out",
      .spirv = spv_winograd_out, .spirv_size = sizeof spv_winograd_out,
      .spec = {w8}, .n_spec = 1,
      .n_bind = 7,
      .bind = {gb_tensor_image4(m), gb_weight_image(b),
               gb_tensor_image(p->vec ? *p->vec : m), gb_tensor_image4(res),
               gb_tensor_image(res), gb_tensor(y), gb_tensor(y)},
      .writes = 5,
      .push_size = sizeof op,
    };
    memcpy(out.push, &op, sizeof op);
    graph_groups_1d((uint64_t)cout * rows * qpr, 64, out.groups);
    graph_add(g, &out);
  }
}
