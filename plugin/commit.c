/* gimp-ddpm: results are made in full before the image is touched, then
 * inserted in one go.  Layers are built outside the image (pixels written,
 * parasites attached); committing inserts them inside one undo group.  If
 * an insert fails half way, the layers already inserted are removed again,
 * so the image's pixels, layers and selection are as before (GIMP then
 * holds one undo step with no net change: plug-ins cannot drop undo
 * steps). */
#include "plugin.h"

typedef struct {
  GimpLayer *layer;
  GimpLayer *parent; /* NULL: top level */
  gboolean inserted;
} pending_layer;

void pending_init(pending *pd, GimpImage *image) {
  pd->image = image;
  pd->layers = g_array_new(FALSE, TRUE, sizeof(pending_layer));
}

void pending_add(pending *pd, GimpLayer *layer, GimpLayer *parent) {
  pending_layer pl = {layer, parent, FALSE};
  g_array_append_val(pd->layers, pl);
}

/* Deletes what was never inserted (a group takes its children along only
 * once they are in it, so children go first). */
void pending_discard(pending *pd) {
  if (!pd->layers) return;
  for (guint i = pd->layers->len; i-- > 0;) {
    pending_layer *pl = &g_array_index(pd->layers, pending_layer, i);
    if (!pl->inserted && gimp_item_is_valid(GIMP_ITEM(pl->layer)))
      gimp_item_delete(GIMP_ITEM(pl->layer));
  }
  g_array_free(pd->layers, TRUE);
  pd->layers = NULL;
}

void pending_rollback(pending *pd) {
  /* Top-level layers only: removing a group removes its children.  What
   * was inserted now belongs to the undo stack; the rest is deleted by
   * pending_discard. */
  for (guint k = pd->layers->len; k-- > 0;) {
    pending_layer *pl = &g_array_index(pd->layers, pending_layer, k);
    if (pl->inserted && !pl->parent) gimp_image_remove_layer(pd->image, pl->layer);
  }
}

bool pending_commit(pending *pd, GError **err) {
  guint n = pd->layers->len, i = 0;
  for (; i < n; i++) {
    pending_layer *pl = &g_array_index(pd->layers, pending_layer, i);
    if (testhook_fail("insert", (int)i) ||
        !gimp_image_insert_layer(pd->image, pl->layer, pl->parent, 0))
      break;
    pl->inserted = TRUE;
  }
  if (i == n) return true;
  g_set_error(err, DDPM_ERROR, DDPM_ERROR_IO,
              "GIMP refused to add result layer %u of %u; the image was left "
              "as it was", i + 1, n);
  pending_rollback(pd);
  return false;
}
