/*
 * fuzz_config.c — libFuzzer target over the kong.conf-style configuration parser (src/conf.c).
 *
 * The input is used twice: as a whole configuration file (kept in one memfd, reopened through
 * /proc/self/fd so kdao_config_load_file reads it like any file), then split at its first '='
 * into a key and a value for kdao_config_set. After either succeeds, the cross-key checks run
 * and the configuration must still dump to JSON and copy; after a failure, the configuration
 * must be exactly what it was (the file is applied all or nothing).
 */
#include <sys/mman.h>
#include <unistd.h>

#include "conf.h"
#include "fuzz_util.h"

static int memfd = -1;
static char memfd_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  memfd = memfd_create("kdao-fuzz-conf", 0);
  if (memfd < 0) abort();
  snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
  return 0;
}

static void write_input(const uint8_t *data, size_t size) {
  if (ftruncate(memfd, 0) != 0) abort();
  for (size_t off = 0; off < size;) {
    ssize_t n = pwrite(memfd, data + off, size - off, (off_t)off);
    if (n <= 0) abort();
    off += (size_t)n;
  }
}

/* What a loaded configuration must support whatever its values are. */
static void check_usable(const kdao_config *cfg, const char *how) {
  json_t *dump = kdao_config_dump(cfg);
  FUZZ_CHECK(dump != NULL, "kdao_config_dump failed after a successful %s", how);
  json_decref(dump);
  kdao_config *copy = kdao__config_copy(cfg);
  FUZZ_CHECK(copy != NULL, "kdao__config_copy failed after a successful %s", how);
  kdao_config_free(copy);
  kdao_error *err = NULL;
  if (kdao_config_check(cfg, &err) != KDAO_OK)
    FUZZ_CHECK(kdao_error_kind(err) == KDAO_ERR_CONFIG && kdao_error_message(err),
               "kdao_config_check failed without a configuration error");
  kdao_error_free(err);
}

static void check_failure(kdao_error *err, const char *how) {
  FUZZ_CHECK(err && kdao_error_message(err), "%s failed without an error", how);
  int kind = kdao_error_kind(err);
  FUZZ_CHECK(kind == KDAO_ERR_CONFIG || kind == KDAO_ERR_IO, "%s failed with %s", how,
             kdao_error_kind_name(kind));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kdao_config *cfg = NULL;
  kdao_error *err = NULL;
  if (kdao_config_new(&cfg, &err) != KDAO_OK) abort();

  write_input(data, size);
  json_t *before = kdao_config_dump(cfg);
  if (kdao_config_load_file(cfg, memfd_path, &err) == KDAO_OK) {
    check_usable(cfg, "kdao_config_load_file");
  } else {
    check_failure(err, "kdao_config_load_file");
    json_t *after = kdao_config_dump(cfg);
    FUZZ_CHECK(after && json_equal(before, after), "a failed file load changed the configuration");
    json_decref(after);
  }
  json_decref(before);
  kdao_error_free(err);
  err = NULL;

  char *text = fuzz_strdup(data, size);
  char *eq = strchr(text, '=');
  if (eq) {
    *eq = '\0';
    if (kdao_config_set(cfg, text, eq + 1, &err) == KDAO_OK)
      check_usable(cfg, "kdao_config_set");
    else
      check_failure(err, "kdao_config_set");
    kdao_error_free(err);
  }
  free(text);
  kdao_config_free(cfg);
  return 0;
}
