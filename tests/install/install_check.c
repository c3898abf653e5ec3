/*
 * install_check.c — a user's first program against an installed kdao, built with nothing but
 * `pkg-config --cflags --libs kdao`: opens a SQLite factory in `dir`, migrates, inserts an
 * API and finds it again, then prints the version of the header it was compiled with.
 *
 *   install_check <dir>
 */
#include <kdao.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failed(const char *what, kdao_error *err) {
  fprintf(stderr, "install_check: %s: %s\n", what, err ? kdao_error_string(err) : "failed");
  kdao_error_free(err);
  return 1;
}

static int run(kdao_factory *f) {
  kdao_error *err = NULL;
  if (kdao_factory_migrate(f, NULL, NULL, NULL, &err) != KDAO_OK) return failed("migrate", err);

  kdao_dao *apis = kdao_factory_dao(f, "apis");
  if (!apis) return failed("the apis DAO", NULL);
  json_t *in = json_pack("{ss s[s] ss}", "name", "mockbin", "hosts", "mockbin.com", "upstream_url",
                         "http://mockbin.com");
  json_t *row = NULL;
  int rc = kdao_dao_insert(apis, in, 0, 0, &row, &err);
  json_decref(in);
  if (rc != KDAO_OK) return failed("insert", err);

  json_t *pk = json_pack("{sO}", "id", json_object_get(row, "id"));
  json_t *found = NULL;
  rc = kdao_dao_find(apis, pk, &found, &err);
  json_decref(pk);
  int bad = rc != KDAO_OK || !found || !json_equal(found, row);
  if (bad) {
    if (rc == KDAO_OK)
      fprintf(stderr, "install_check: find did not return the inserted row\n");
    else
      failed("find", err);
  }
  json_decref(found);
  json_decref(row);
  return bad;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: install_check <dir>\n");
    return 2;
  }
  char path[4096];
  if (snprintf(path, sizeof path, "%s/install_check.db", argv[1]) >= (int)sizeof path) return 2;

  kdao_config *cfg = NULL;
  kdao_factory *f = NULL;
  kdao_error *err = NULL;
  if (kdao_config_new(&cfg, &err) != KDAO_OK) return failed("config", err);
  if (kdao_config_set(cfg, "database", "sqlite", &err) != KDAO_OK ||
      kdao_config_set(cfg, "sqlite_path", path, &err) != KDAO_OK) {
    kdao_config_free(cfg);
    return failed("config", err);
  }
  int rc = kdao_factory_open(cfg, &f, &err);
  kdao_config_free(cfg);
  if (rc != KDAO_OK) return failed("open", err);
  rc = run(f);
  kdao_factory_free(f);
  if (rc == 0) printf("kdao %s\n", KDAO_VERSION_STRING);
  return rc;
}
