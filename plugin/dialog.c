/* gimp-ddpm: the procedure dialogs.  GimpProcedureDialog builds the widgets
 * of the arguments; the model and device get combo boxes listing what was
 * found (the default model, the Hugging Face cache, the Vulkan devices), with
 * an entry for anything else and a folder button for models. */
#include <libgimp/gimpui.h>

#include "plugin.h"

/* A combo box with an entry, bound both ways to a string property. */
static GtkWidget *string_combo(GimpProcedureConfig *config, const char *prop,
                               char **ids, char **labels, size_t n) {
  GtkWidget *combo = gtk_combo_box_text_new_with_entry();
  for (size_t i = 0; i < n; i++)
    gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(combo), ids[i], labels[i]);
  gtk_combo_box_set_entry_text_column(GTK_COMBO_BOX(combo), 0);
  gtk_combo_box_set_id_column(GTK_COMBO_BOX(combo), 1);
  GtkWidget *entry = gtk_bin_get_child(GTK_BIN(combo));
  g_object_bind_property(config, prop, entry, "text",
                         G_BINDING_BIDIRECTIONAL | G_BINDING_SYNC_CREATE);
  return combo;
}

static void on_folder_set(GtkFileChooserButton *button, GimpProcedureConfig *config) {
  char *dir = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(button));
  if (dir) g_object_set(config, "model", dir, NULL);
  g_free(dir);
}

static GtkWidget *model_row(GimpProcedureConfig *config) {
  size_t n = 0;
  ddpm_model_entry *e = ddpm_find_models(&n);
  /* Entry text is the argument's value: "" or "default" for the default. */
  char **ids = g_new0(char *, n + 2), **labels = g_new0(char *, n + 2);
  ids[0] = g_strdup("default");
  labels[0] = g_strdup("default");
  for (size_t i = 0; i < n; i++) {
    ids[i + 1] = g_strdup(e[i].name);
    labels[i + 1] = g_strdup(e[i].name);
  }
  ddpm_model_entries_free(e, n);
  GtkWidget *combo = string_combo(config, "model", ids, labels, n + 1);
  gtk_entry_set_placeholder_text(GTK_ENTRY(gtk_bin_get_child(GTK_BIN(combo))),
                                 "built-in default model");
  g_strfreev(ids);
  g_strfreev(labels);
  GtkWidget *folder = gtk_file_chooser_button_new("Choose a diffusers model folder",
                                                  GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER);
  gtk_widget_set_tooltip_text(folder, "A folder with config.json and "
                              "diffusion_pytorch_model.safetensors");
  g_signal_connect(folder, "file-set", G_CALLBACK(on_folder_set), config);
  GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_box_pack_start(GTK_BOX(box), combo, TRUE, TRUE, 0);
  gtk_box_pack_start(GTK_BOX(box), folder, FALSE, FALSE, 0);
  return box;
}

static GtkWidget *device_row(GimpProcedureConfig *config) {
  size_t n = 0;
  ddpm_device_info *d = ddpm_list_devices(&n, NULL);
  char **ids = g_new0(char *, n + 2), **labels = g_new0(char *, n + 2);
  ids[0] = g_strdup("");
  labels[0] = g_strdup("");
  for (size_t i = 0; i < n; i++) {
    ids[i + 1] = g_strdup(d[i].name);
    labels[i + 1] = g_strdup(d[i].name);
  }
  g_free(d);
  GtkWidget *combo = string_combo(config, "device", ids, labels, n + 1);
  gtk_entry_set_placeholder_text(GTK_ENTRY(gtk_bin_get_child(GTK_BIN(combo))),
                                 "best available");
  g_strfreev(ids);
  g_strfreev(labels);
  return combo;
}

static void attach(GtkGrid *grid, int row, const char *label, GtkWidget *w) {
  GtkWidget *l = gtk_label_new_with_mnemonic(label);
  gtk_label_set_xalign(GTK_LABEL(l), 0.0f);
  gtk_grid_attach(grid, l, 0, row, 1, 1);
  gtk_widget_set_hexpand(w, TRUE);
  gtk_grid_attach(grid, w, 1, row, 1, 1);
}

gboolean dialog_run(GimpProcedure *procedure, GimpProcedureConfig *config,
                    const char *title, const char *note) {
  gimp_ui_init(PLUG_IN_BINARY);
  GtkWidget *dialog = gimp_procedure_dialog_new(procedure, config, title);
  GimpProcedureDialog *pd = GIMP_PROCEDURE_DIALOG(dialog);

  /* Every argument but model and device, in declaration order. */
  GList *names = NULL;
  gint n_args = 0;
  GParamSpec **args = gimp_procedure_get_arguments(procedure, &n_args);
  for (gint i = 0; i < n_args; i++) {
    const char *name = args[i]->name;
    if (g_strcmp0(name, "model") && g_strcmp0(name, "device") &&
        g_strcmp0(name, "run-mode") && g_strcmp0(name, "image") &&
        g_strcmp0(name, "drawables"))
      names = g_list_append(names, g_strdup(name));
  }
  g_free(args);
  gimp_procedure_dialog_fill_list(pd, names);
  g_list_free_full(names, g_free);

  GtkWidget *grid = gtk_grid_new();
  gtk_grid_set_row_spacing(GTK_GRID(grid), 6);
  gtk_grid_set_column_spacing(GTK_GRID(grid), 12);
  attach(GTK_GRID(grid), 0, "_Model", model_row(config));
  attach(GTK_GRID(grid), 1, "_Device", device_row(config));
  GtkWidget *content = gtk_dialog_get_content_area(GTK_DIALOG(dialog));
  gtk_box_pack_start(GTK_BOX(content), grid, FALSE, FALSE, 0);
  gtk_box_reorder_child(GTK_BOX(content), grid, 0);
  if (note) {
    GtkWidget *l = gtk_label_new(note);
    gtk_label_set_xalign(GTK_LABEL(l), 0.0f);
    gtk_box_pack_start(GTK_BOX(content), l, FALSE, FALSE, 0);
    gtk_box_reorder_child(GTK_BOX(content), l, 1);
    gtk_widget_show(l);
  }
  gtk_widget_show_all(grid);
  gboolean run = gimp_procedure_dialog_run(pd);
  gtk_widget_destroy(dialog);
  return run;
}
