/*
 * fuzz_cql_frame.c — libFuzzer target over the CQL response decoder.
 *
 * The input is a byte stream as a server might send it: frames are split off the front with
 * cql__frame_parse and each is decoded with cql__response_decode; every RESULT is then read
 * through all accessors (cells as JSON, typed getters, paging state) so a bad length anywhere
 * shows up under ASan. Build: scripts/fuzz-cql.sh (clang, -DKDAO_FUZZ=ON).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cql_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk_result(const cql_result *r) {
  size_t rows = cql_result_row_count(r), cols = cql_result_column_count(r);
  for (size_t i = 0; i < rows && i < 64; i++) {
    json_t *row = cql_result_row_json(r, i);
    json_decref(row);
    for (size_t c = 0; c < cols && c < 64; c++) {
      int64_t v;
      int b;
      uint8_t u[16];
      const char *s;
      size_t len;
      cql_result_get_int64(r, i, c, &v);
      cql_result_get_bool(r, i, c, &b);
      cql_result_get_uuid(r, i, c, u);
      cql_result_get_text(r, i, c, &s, &len);
      json_decref(cql_result_cell_json(r, i, c));
    }
  }
  size_t n;
  cql_result_paging_state(r, &n);
  cql_result_applied(r);
  for (size_t i = 0; i < cql_result_warning_count(r); i++) (void)strlen(cql_result_warning(r, i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* Copy into an exact-size heap block so any overread is caught by ASan. */
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf) return 0;
  memcpy(buf, data, size);
  size_t pos = 0;
  for (int frames = 0; frames < 16 && pos < size; frames++) {
    cql_frame f;
    size_t used = 0;
    if (cql__frame_parse(buf + pos, size - pos, &f, &used) != CQL_DECODE_FRAME) break;
    cql_response resp;
    cql_error server = {0}, err = {0};
    if (cql__response_decode(&f, &resp, &server, &err) == 0) {
      if (resp.result) walk_result(resp.result);
      (void)cql_error_message(&server);
      cql__response_clear(&resp);
    }
    cql_error_clear(&server);
    cql_error_clear(&err);
    pos += used;
  }
  /* The same bytes as one ERROR body and as a single cell of a few types. */
  cql_error e = {0};
  cql__error_decode(buf, size, &e);
  cql_error_clear(&e);
  static const uint16_t ids[] = {CQL_TYPE_VARCHAR, CQL_TYPE_INT, CQL_TYPE_UUID, CQL_TYPE_INET};
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    cql_type t = {.id = ids[i]};
    json_decref(cql__cell_to_json(buf, size, &t, 0));
  }
  cql_type text = {.id = CQL_TYPE_VARCHAR};
  cql_type list = {.id = CQL_TYPE_LIST, .nsub = 1, .sub = &text};
  json_decref(cql__cell_to_json(buf, size, &list, 0));
  cql_type kv[2] = {{.id = CQL_TYPE_VARCHAR}, {.id = CQL_TYPE_BIGINT}};
  cql_type map = {.id = CQL_TYPE_MAP, .nsub = 2, .sub = kv};
  json_decref(cql__cell_to_json(buf, size, &map, 0));
  free(buf);
  return 0;
}
