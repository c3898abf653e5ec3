/*
 * test_cql_frame.c — the CQL codec on byte strings: frame splitting, every response kind,
 * every server error code, request encoding and value binding, and hostile input (lengths
 * past the end, negative and huge counts, deep nesting). No sockets, no server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cql_int.h"

/* ---- helpers ------------------------------------------------------------------------------ */

/* Wraps `body` in a response header; returns a new buffer the caller frees. */
static cql_buf response(uint8_t flags, int16_t stream, uint8_t op, const cql_buf *body) {
  cql_buf f;
  cql__buf_init(&f);
  cql__buf_u8(&f, 0x84);
  cql__buf_u8(&f, flags);
  cql__buf_u16(&f, (uint16_t)stream);
  cql__buf_u8(&f, op);
  cql__buf_i32(&f, (int32_t)body->len);
  cql__buf_put(&f, body->data, body->len);
  assert_false(f.oom);
  return f;
}

/* Parses and decodes one frame: returns decode's rc; *server gets ERROR contents. */
static int decode(const cql_buf *frame, cql_response *resp, cql_error *server, cql_error *err) {
  cql_frame f;
  size_t used = 0;
  assert_int_equal(cql__frame_parse(frame->data, frame->len, &f, &used), CQL_DECODE_FRAME);
  assert_int_equal(used, frame->len);
  return cql__response_decode(&f, resp, server, err);
}

static int decode_body(uint8_t op, const cql_buf *body, cql_response *resp, cql_error *server,
                       cql_error *err) {
  cql_buf f = response(0, 1, op, body);
  int rc = decode(&f, resp, server, err);
  cql__buf_free(&f);
  return rc;
}

static void put_str(cql_buf *b, const char *s) { cql__buf_string(b, s, strlen(s)); }

/* Decoding `body` as a RESULT must fail as malformed, without reading outside it. The body is
 * copied into an exactly-sized allocation so ASan catches any overread. */
static void expect_malformed_result(const cql_buf *body) {
  cql_buf f = response(0, 1, CQL_OP_RESULT, body);
  uint8_t *exact = malloc(f.len);
  assert_non_null(exact);
  memcpy(exact, f.data, f.len);
  cql_frame fr;
  size_t used;
  assert_int_equal(cql__frame_parse(exact, f.len, &fr, &used), CQL_DECODE_FRAME);
  cql_response resp;
  cql_error server = {0}, err = {0};
  assert_int_equal(cql__response_decode(&fr, &resp, &server, &err), -1);
  assert_int_equal(err.kind, CQL_ERR_MALFORMED);
  assert_null(resp.result);
  cql_error_clear(&err);
  cql_error_clear(&server);
  free(exact);
  cql__buf_free(&f);
}

/* ---- frame splitting ---------------------------------------------------------------------- */

static void test_frame_parse_need_more_and_malformed(void **state) {
  (void)state;
  uint8_t hdr[9] = {0x84, 0, 0, 7, CQL_OP_READY, 0, 0, 0, 4};
  cql_frame f;
  size_t used = 0;
  assert_int_equal(cql__frame_parse(hdr, 5, &f, &used), CQL_DECODE_NEED_MORE);
  assert_int_equal(used, 9);
  assert_int_equal(cql__frame_parse(hdr, 9, &f, &used), CQL_DECODE_NEED_MORE);
  assert_int_equal(used, 13);

  uint8_t full[13] = {0x84, 0, 0, 7, CQL_OP_READY, 0, 0, 0, 4, 1, 2, 3, 4};
  assert_int_equal(cql__frame_parse(full, 13, &f, &used), CQL_DECODE_FRAME);
  assert_int_equal(f.stream, 7);
  assert_int_equal(f.body_len, 4);
  assert_int_equal(used, 13);

  uint8_t request_dir[9] = {0x04, 0, 0, 0, 0, 0, 0, 0, 0};
  assert_int_equal(cql__frame_parse(request_dir, 9, &f, &used), CQL_DECODE_MALFORMED);
  uint8_t v3[9] = {0x83, 0, 0, 0, 0, 0, 0, 0, 0};
  assert_int_equal(cql__frame_parse(v3, 9, &f, &used), CQL_DECODE_MALFORMED);
  uint8_t huge[9] = {0x84, 0, 0, 0, 0, 0x10, 0, 0, 1}; /* 256 MiB + 1 */
  assert_int_equal(cql__frame_parse(huge, 9, &f, &used), CQL_DECODE_MALFORMED);
  uint8_t negative[9] = {0x84, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
  assert_int_equal(cql__frame_parse(negative, 9, &f, &used), CQL_DECODE_MALFORMED);

  uint8_t event[9] = {0x84, 0, 0xff, 0xff, CQL_OP_EVENT, 0, 0, 0, 0};
  assert_int_equal(cql__frame_parse(event, 9, &f, &used), CQL_DECODE_FRAME);
  assert_int_equal(f.stream, -1);
}

/* ---- requests ----------------------------------------------------------------------------- */

static void test_encode_startup_exact_bytes(void **state) {
  (void)state;
  cql_buf b;
  cql__buf_init(&b);
  size_t at = cql__frame_begin(&b, 3, CQL_OP_STARTUP);
  cql__enc_startup(&b);
  cql__frame_finish(&b, at);
  static const uint8_t want[] = {0x04, 0,   0,   3,   0x01, 0,   0,   0,   22,  0,   1,
                                 0,    11,  'C', 'Q', 'L',  '_', 'V', 'E', 'R', 'S', 'I',
                                 'O',  'N', 0,   5,   '3',  '.', '0', '.', '0', '.', '0'};
  /* CQL_VERSION 3.0.0: 2 + 2+11 + 2+5 = 22 body bytes. */
  assert_int_equal(b.len, 9 + 22);
  assert_memory_equal(b.data, want, 9 + 22 - 2);
  cql__buf_free(&b);
}

static void test_encode_auth_plain(void **state) {
  (void)state;
  cql_buf b;
  cql__buf_init(&b);
  cql__enc_auth_response(&b, "cassandra", "pw");
  static const uint8_t want[] = {0,   0,   0,   13,  0,   'c', 'a', 's', 's',
                                 'a', 'n', 'd', 'r', 'a', 0,   'p', 'w'};
  assert_int_equal(b.len, sizeof want);
  assert_memory_equal(b.data, want, sizeof want);
  cql__buf_free(&b);
}

static void test_encode_query_flags_and_values(void **state) {
  (void)state;
  cql_buf b;
  cql__buf_init(&b);
  uint8_t ps[3] = {9, 8, 7};
  cql_query_opts o = {.consistency = CQL_QUORUM,
                      .serial_consistency = CQL_LOCAL_SERIAL,
                      .page_size = 100,
                      .paging_state = ps,
                      .paging_state_len = 3,
                      .timestamp_us = 5};
  cql_value v[] = {cql_v_int(1), cql_v_null(), cql_v_bool(1)};
  assert_int_equal(cql__enc_query(&b, "Q", v, 3, &o, NULL), 0);
  static const uint8_t want[] = {
      0,
      0,
      0,
      1,
      'Q', /* long string */
      0,
      4,                                /* QUORUM */
      0x01 | 0x04 | 0x08 | 0x10 | 0x20, /* flags */
      0,
      3, /* 3 values */
      0,
      0,
      0,
      4,
      0,
      0,
      0,
      1, /* int 1 */
      0xff,
      0xff,
      0xff,
      0xff, /* null */
      0,
      0,
      0,
      1,
      1, /* true */
      0,
      0,
      0,
      100, /* page size */
      0,
      0,
      0,
      3,
      9,
      8,
      7, /* paging state */
      0,
      9, /* LOCAL_SERIAL */
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      5, /* timestamp */
  };
  assert_int_equal(b.len, sizeof want);
  assert_memory_equal(b.data, want, sizeof want);
  cql__buf_free(&b);
}

static cql_prepared *fake_prepared(const uint16_t *types, size_t n) {
  cql_prepared *p = calloc(1, sizeof *p);
  assert_non_null(p);
  p->id = malloc(2);
  p->id[0] = 0xab;
  p->id[1] = 0xcd;
  p->id_len = 2;
  p->nparams = n;
  p->params = calloc(n, sizeof *p->params);
  for (size_t i = 0; i < n; i++) {
    p->params[i].name = cql__strdup("c");
    p->params[i].type.id = types[i];
    if (types[i] == CQL_TYPE_LIST || types[i] == CQL_TYPE_SET) {
      p->params[i].type.nsub = 1;
      p->params[i].type.sub = calloc(1, sizeof(cql_type));
      p->params[i].type.sub[0].id = CQL_TYPE_VARCHAR;
    }
  }
  return p;
}

static void test_encode_execute_converts_by_column_type(void **state) {
  (void)state;
  const uint16_t types[] = {CQL_TYPE_BIGINT, CQL_TYPE_TIMESTAMP, CQL_TYPE_UUID, CQL_TYPE_LIST};
  cql_prepared *p = fake_prepared(types, 4);
  json_t *arr = json_pack("[s]", "x");
  cql_value v[] = {cql_v_int(7), cql_v_json(json_integer(1)),
                   cql_v_text("DE305D54-75B4-431B-ADB2-EB6B9E546014"), cql_v_json(arr)};
  cql_buf b;
  cql__buf_init(&b);
  assert_int_equal(cql__enc_execute(&b, p, v, 4, NULL, NULL), 0);
  static const uint8_t want[] = {
      0,    2,    0xab, 0xcd, 0,    1,    0x01, 0,    4,    0,    0,    0,    8,
      0,    0,    0,    0,    0,    0,    0,    7, /* int widened to bigint */
      0,    0,    0,    8,    0,    0,    0,    0,    0,    0,    0,    1, /* JSON integer as timestamp */
      0,    0,    0,    16,   0xde, 0x30, 0x5d, 0x54, 0x75, 0xb4, 0x43, 0x1b, 0xad,
      0xb2, 0xeb, 0x6b, 0x9e, 0x54, 0x60, 0x14, 0,    0,    0,    9,    0,    0,
      0,    1,    0,    0,    0,    1,    'x', /* list<text> ["x"] */
  };
  assert_int_equal(b.len, sizeof want);
  assert_memory_equal(b.data, want, sizeof want);
  json_decref((json_t *)v[1].u.json);
  json_decref(arr);
  cql__buf_free(&b);
  cql_prepared_free(p);
}

static void test_encode_misuse(void **state) {
  (void)state;
  const uint16_t types[] = {CQL_TYPE_INT};
  cql_prepared *p = fake_prepared(types, 1);
  cql_buf b;
  cql_error err = {0};
  cql_value big = cql_v_bigint(INT64_C(1) << 40);
  cql__buf_init(&b);
  assert_int_equal(cql__enc_execute(&b, p, &big, 1, NULL, &err), -1);
  assert_int_equal(err.kind, CQL_ERR_MISUSE);
  assert_non_null(strstr(err.message, "out of range"));
  cql__buf_free(&b);

  cql_value txt = cql_v_text("nope");
  cql__buf_init(&b);
  assert_int_equal(cql__enc_execute(&b, p, &txt, 1, NULL, &err), -1);
  assert_non_null(strstr(err.message, "cannot bind a string to a int column"));
  cql__buf_free(&b);

  cql__buf_init(&b);
  assert_int_equal(cql__enc_execute(&b, p, NULL, 0, NULL, &err), -1);
  assert_non_null(strstr(err.message, "expects 1 values, got 0"));
  cql__buf_free(&b);

  const uint16_t ut[] = {CQL_TYPE_UUID};
  cql_prepared *pu = fake_prepared(ut, 1);
  cql_value bad = cql_v_text("not-a-uuid");
  cql__buf_init(&b);
  assert_int_equal(cql__enc_execute(&b, pu, &bad, 1, NULL, &err), -1);
  assert_non_null(strstr(err.message, "is not a uuid"));
  cql__buf_free(&b);
  cql_error_clear(&err);
  cql_prepared_free(p);
  cql_prepared_free(pu);
}

static void test_encode_batch(void **state) {
  (void)state;
  cql_value v = cql_v_text("a");
  cql_batch_stmt s[] = {{.query = "I", .values = &v, .n_values = 1}};
  cql_buf b;
  cql__buf_init(&b);
  cql_query_opts o = {.consistency = CQL_ALL};
  assert_int_equal(cql__enc_batch(&b, CQL_BATCH_UNLOGGED, s, NULL, 1, &o, NULL), 0);
  static const uint8_t want[] = {1, 0, 1, 0, 0, 0, 0, 1, 'I', 0, 1, 0, 0, 0, 1, 'a', 0, 5, 0};
  assert_int_equal(b.len, sizeof want);
  assert_memory_equal(b.data, want, sizeof want);
  cql__buf_free(&b);
}

/* ---- simple responses --------------------------------------------------------------------- */

static void test_ready_authenticate_supported(void **state) {
  (void)state;
  cql_buf body;
  cql_response r;
  cql_error server = {0}, err = {0};
  cql__buf_init(&body);
  assert_int_equal(decode_body(CQL_OP_READY, &body, &r, &server, &err), 0);
  assert_int_equal(r.opcode, CQL_OP_READY);
  cql__response_clear(&r);

  put_str(&body, "org.apache.cassandra.auth.PasswordAuthenticator");
  assert_int_equal(decode_body(CQL_OP_AUTHENTICATE, &body, &r, &server, &err), 0);
  assert_string_equal(r.authenticator, "org.apache.cassandra.auth.PasswordAuthenticator");
  cql__response_clear(&r);
  cql__buf_free(&body);

  cql__buf_init(&body);
  cql__buf_u16(&body, 1);
  put_str(&body, "COMPRESSION");
  cql__buf_u16(&body, 2);
  put_str(&body, "lz4");
  put_str(&body, "snappy");
  assert_int_equal(decode_body(CQL_OP_SUPPORTED, &body, &r, &server, &err), 0);
  json_t *c = json_object_get(r.supported, "COMPRESSION");
  assert_int_equal(json_array_size(c), 2);
  assert_string_equal(json_string_value(json_array_get(c, 1)), "snappy");
  cql__response_clear(&r);
  cql__buf_free(&body);

  /* Unknown opcode and compressed frames are protocol errors. */
  cql__buf_init(&body);
  assert_int_equal(decode_body(0x33, &body, &r, &server, &err), -1);
  assert_int_equal(err.kind, CQL_ERR_PROTOCOL);
  cql_buf f = response(CQL_FLAG_COMPRESSION, 0, CQL_OP_READY, &body);
  assert_int_equal(decode(&f, &r, &server, &err), -1);
  assert_int_equal(err.kind, CQL_ERR_PROTOCOL);
  cql__buf_free(&f);
  cql__buf_free(&body);
  cql_error_clear(&err);
}

/* ---- RESULT kinds ------------------------------------------------------------------------- */

static void test_result_void_keyspace_schema_change(void **state) {
  (void)state;
  cql_buf body;
  cql_response r;
  cql_error server = {0}, err = {0};

  cql__buf_init(&body);
  cql__buf_i32(&body, CQL_RESULT_VOID);
  assert_int_equal(decode_body(CQL_OP_RESULT, &body, &r, &server, &err), 0);
  assert_int_equal(cql_result_kind_of(r.result), CQL_RESULT_VOID);
  assert_int_equal(cql_result_row_count(r.result), 0);
  cql__response_clear(&r);
  cql__buf_free(&body);

  cql__buf_init(&body);
  cql__buf_i32(&body, CQL_RESULT_SET_KEYSPACE);
  put_str(&body, "kong");
  assert_int_equal(decode_body(CQL_OP_RESULT, &body, &r, &server, &err), 0);
  assert_string_equal(cql_result_keyspace(r.result), "kong");
  cql__response_clear(&r);
  cql__buf_free(&body);

  cql__buf_init(&body);
  cql__buf_i32(&body, CQL_RESULT_SCHEMA_CHANGE);
  put_str(&body, "CREATED");
  put_str(&body, "TABLE");
  put_str(&body, "kong");
  put_str(&body, "apis");
  assert_int_equal(decode_body(CQL_OP_RESULT, &body, &r, &server, &err), 0);
  assert_string_equal(cql_result_schema_change_type(r.result), "CREATED");
  assert_string_equal(cql_result_schema_change_target(r.result), "TABLE");
  assert_string_equal(cql_result_keyspace(r.result), "kong");
  assert_string_equal(cql_result_schema_change_name(r.result), "apis");
  cql__response_clear(&r);
  cql__buf_free(&body);

  cql__buf_init(&body);
  cql__buf_i32(&body, CQL_RESULT_SCHEMA_CHANGE);
  put_str(&body, "DROPPED");
  put_str(&body, "KEYSPACE");
  put_str(&body, "old");
  assert_int_equal(decode_body(CQL_OP_RESULT, &body, &r, &server, &err), 0);
  assert_null(cql_result_schema_change_name(r.result));
  cql__response_clear(&r);
  cql__buf_free(&body);

  cql__buf_init(&body);
  cql__buf_i32(&body, 0x99);
  expect_malformed_result(&body);
  cql__buf_free(&body);
}

/* Rows: global table spec, columns uuid, text, int, bigint, boolean, timestamp, list<text>,
 * map<text,int>; two rows, the second with nulls; a paging state. */
static void rows_body(cql_buf *b, int32_t nrows_claimed) {
  cql__buf_i32(b, CQL_RESULT_ROWS);
  cql__buf_i32(b, CQL_RF_GLOBAL_TABLES_SPEC | CQL_RF_HAS_MORE_PAGES);
  cql__buf_i32(b, 8);
  cql__buf_bytes(b, (const uint8_t *)"\x01\x02", 2);
  put_str(b, "ks");
  put_str(b, "t");
  const char *names[] = {"id", "name", "n", "big", "ok", "at", "tags", "m"};
  const uint16_t types[] = {CQL_TYPE_UUID,   CQL_TYPE_VARCHAR, CQL_TYPE_INT,
                            CQL_TYPE_BIGINT, CQL_TYPE_BOOLEAN, CQL_TYPE_TIMESTAMP};
  for (int i = 0; i < 6; i++) {
    put_str(b, names[i]);
    cql__buf_u16(b, types[i]);
  }
  put_str(b, names[6]);
  cql__buf_u16(b, CQL_TYPE_LIST);
  cql__buf_u16(b, CQL_TYPE_VARCHAR);
  put_str(b, names[7]);
  cql__buf_u16(b, CQL_TYPE_MAP);
  cql__buf_u16(b, CQL_TYPE_VARCHAR);
  cql__buf_u16(b, CQL_TYPE_INT);
  cql__buf_i32(b, nrows_claimed);
  /* row 0 */
  static const uint8_t uuid[16] = {0xde, 0x30, 0x5d, 0x54, 0x75, 0xb4, 0x43, 0x1b,
                                   0xad, 0xb2, 0xeb, 0x6b, 0x9e, 0x54, 0x60, 0x14};
  cql__buf_bytes(b, uuid, 16);
  cql__buf_bytes(b, (const uint8_t *)"h\xc3\xa9", 3);
  cql__buf_bytes(b, (const uint8_t *)"\xff\xff\xff\xfe", 4);
  cql__buf_bytes(b, (const uint8_t *)"\x00\x00\x01\x00\x00\x00\x00\x00", 8);
  cql__buf_bytes(b, (const uint8_t *)"\x01", 1);
  cql__buf_bytes(b, (const uint8_t *)"\x00\x00\x01\x5c\xd5\x0c\xf3\x1b", 8);
  cql_buf list;
  cql__buf_init(&list);
  cql__buf_i32(&list, 2);
  cql__buf_bytes(&list, (const uint8_t *)"a", 1);
  cql__buf_bytes(&list, (const uint8_t *)"", 0);
  cql__buf_bytes(b, list.data, (int32_t)list.len);
  cql__buf_free(&list);
  cql_buf map;
  cql__buf_init(&map);
  cql__buf_i32(&map, 1);
  cql__buf_bytes(&map, (const uint8_t *)"k", 1);
  cql__buf_bytes(&map, (const uint8_t *)"\x00\x00\x00\x05", 4);
  cql__buf_bytes(b, map.data, (int32_t)map.len);
  cql__buf_free(&map);
  /* row 1: id only, the rest null */
  cql__buf_bytes(b, uuid, 16);
  for (int i = 0; i < 7; i++) cql__buf_bytes(b, NULL, -1);
}

static void test_result_rows(void **state) {
  (void)state;
  cql_buf body;
  cql__buf_init(&body);
  rows_body(&body, 2);
  cql_response r;
  cql_error server = {0}, err = {0};
  assert_int_equal(decode_body(CQL_OP_RESULT, &body, &r, &server, &err), 0);
  cql_result *res = r.result;
  assert_int_equal(cql_result_kind_of(res), CQL_RESULT_ROWS);
  assert_int_equal(cql_result_row_count(res), 2);
  assert_int_equal(cql_result_column_count(res), 8);
  assert_string_equal(cql_result_column_name(res, 6), "tags");
  assert_int_equal(cql_result_column_type(res, 6), CQL_TYPE_LIST);
  assert_int_equal(cql_result_column_subtype(res, 6, 0), CQL_TYPE_VARCHAR);
  assert_int_equal(cql_result_column_subtype(res, 7, 1), CQL_TYPE_INT);
  assert_int_equal(cql_result_column_index(res, "ok"), 4);
  assert_int_equal(cql_result_column_index(res, "nope"), -1);
  assert_true(cql_result_has_more_pages(res));
  size_t pl;
  const uint8_t *ps = cql_result_paging_state(res, &pl);
  assert_int_equal(pl, 2);
  assert_int_equal(ps[1], 2);

  json_t *row = cql_result_row_json(res, 0);
  char *s = json_dumps(row, JSON_SORT_KEYS | JSON_COMPACT);
  assert_string_equal(s, "{\"at\":1498223014683,\"big\":1099511627776,"
                         "\"id\":\"de305d54-75b4-431b-adb2-eb6b9e546014\",\"m\":{\"k\":5},"
                         "\"n\":-2,\"name\":\"h\xc3\xa9\",\"ok\":true,\"tags\":[\"a\",\"\"]}");
  free(s);
  json_decref(row);
  row = cql_result_row_json(res, 1);
  assert_true(json_is_null(json_object_get(row, "tags")));
  assert_true(json_is_null(json_object_get(row, "n")));
  json_decref(row);

  int64_t v;
  int b;
  uint8_t u[16];
  const char *t;
  size_t tl;
  assert_int_equal(cql_result_get_int64(res, 0, 2, &v), 0);
  assert_int_equal(v, -2);
  assert_int_equal(cql_result_get_int64(res, 0, 5, &v), 0);
  assert_int_equal(v, 1498223014683);
  assert_int_equal(cql_result_get_bool(res, 0, 4, &b), 0);
  assert_int_equal(b, 1);
  assert_int_equal(cql_result_get_uuid(res, 0, 0, u), 0);
  assert_int_equal(u[0], 0xde);
  assert_int_equal(cql_result_get_text(res, 0, 1, &t, &tl), 0);
  assert_int_equal(tl, 3);
  /* Wrong type, null, out of range: -1, never a read outside. */
  assert_int_equal(cql_result_get_int64(res, 0, 1, &v), -1);
  assert_int_equal(cql_result_get_int64(res, 1, 2, &v), -1);
  assert_int_equal(cql_result_is_null(res, 1, 2), 1);
  assert_int_equal(cql_result_is_null(res, 5, 0), -1);
  assert_null(cql_result_cell_json(res, 0, 99));
  assert_int_equal(cql_result_applied(res), -1);
  cql__response_clear(&r);
  cql__buf_free(&body);
}

static void test_result_applied_and_warnings(void **state) {
  (void)state;
  cql_buf body;
  cql__buf_init(&body);
  cql__buf_u16(&body, 1); /* warnings */
  put_str(&body, "careful");
  cql__buf_i32(&body, CQL_RESULT_ROWS);
  cql__buf_i32(&body, CQL_RF_GLOBAL_TABLES_SPEC);
  cql__buf_i32(&body, 1);
  put_str(&body, "ks");
  put_str(&body, "t");
  put_str(&body, "[applied]");
  cql__buf_u16(&body, CQL_TYPE_BOOLEAN);
  cql__buf_i32(&body, 1);
  cql__buf_bytes(&body, (const uint8_t *)"\x00", 1);
  cql_buf f = response(CQL_FLAG_WARNING, 2, CQL_OP_RESULT, &body);
  cql_response r;
  cql_error server = {0}, err = {0};
  assert_int_equal(decode(&f, &r, &server, &err), 0);
  assert_int_equal(cql_result_applied(r.result), 0);
  assert_int_equal(cql_result_warning_count(r.result), 1);
  assert_string_equal(cql_result_warning(r.result, 0), "careful");
  cql__response_clear(&r);
  cql__buf_free(&f);
  cql__buf_free(&body);
}

static void test_result_prepared(void **state) {
  (void)state;
  cql_buf body;
  cql__buf_init(&body);
  cql__buf_i32(&body, CQL_RESULT_PREPARED);
  cql__buf_short_bytes(&body, (const uint8_t *)"\x01\x02\x03", 3);
  cql__buf_i32(&body, CQL_RF_GLOBAL_TABLES_SPEC);
  cql__buf_i32(&body, 2);
  cql__buf_i32(&body, 1); /* pk count */
  cql__buf_u16(&body, 0);
  put_str(&body, "ks");
  put_str(&body, "t");
  put_str(&body, "id");
  cql__buf_u16(&body, CQL_TYPE_UUID);
  put_str(&body, "tags");
  cql__buf_u16(&body, CQL_TYPE_SET);
  cql__buf_u16(&body, CQL_TYPE_VARCHAR);
  cql__buf_i32(&body, CQL_RF_NO_METADATA); /* result metadata */
  cql__buf_i32(&body, 0);
  cql_response r;
  cql_error server = {0}, err = {0};
  assert_int_equal(decode_body(CQL_OP_RESULT, &body, &r, &server, &err), 0);
  cql_prepared *p = r.result->prepared;
  assert_non_null(p);
  size_t idl;
  assert_memory_equal(cql_prepared_id(p, &idl), "\x01\x02\x03", 3);
  assert_int_equal(idl, 3);
  assert_int_equal(cql_prepared_param_count(p), 2);
  assert_string_equal(cql_prepared_param_name(p, 1), "tags");
  assert_int_equal(cql_prepared_param_type(p, 1), CQL_TYPE_SET);
  assert_int_equal(cql_prepared_param_type(p, 2), -1);
  cql__response_clear(&r);
  cql__buf_free(&body);
}

/* ---- ERROR codes -------------------------------------------------------------------------- */

static cql_error decode_error(int32_t code, const char *msg, void (*extra)(cql_buf *)) {
  cql_buf body;
  cql__buf_init(&body);
  cql__buf_i32(&body, code);
  put_str(&body, msg);
  if (extra) extra(&body);
  cql_response r;
  cql_error server = {0}, err = {0};
  assert_int_equal(decode_body(CQL_OP_ERROR, &body, &r, &server, &err), 0);
  assert_int_equal(r.opcode, CQL_OP_ERROR);
  assert_int_equal(server.kind, CQL_ERR_SERVER);
  assert_int_equal(server.code, code);
  assert_string_equal(server.server_message, msg);
  cql__buf_free(&body);
  return server;
}

static void x_unavailable(cql_buf *b) {
  cql__buf_u16(b, 4);
  cql__buf_i32(b, 3);
  cql__buf_i32(b, 1);
}
static void x_write_timeout(cql_buf *b) {
  cql__buf_u16(b, 1);
  cql__buf_i32(b, 0);
  cql__buf_i32(b, 1);
  put_str(b, "SIMPLE");
}
static void x_read_timeout(cql_buf *b) {
  cql__buf_u16(b, 5);
  cql__buf_i32(b, 1);
  cql__buf_i32(b, 2);
  cql__buf_u8(b, 1);
}
static void x_read_failure(cql_buf *b) {
  cql__buf_u16(b, 1);
  cql__buf_i32(b, 0);
  cql__buf_i32(b, 1);
  cql__buf_i32(b, 1);
  cql__buf_u8(b, 0);
}
static void x_function_failure(cql_buf *b) {
  put_str(b, "ks");
  put_str(b, "fn");
  cql__buf_u16(b, 2);
  put_str(b, "int");
  put_str(b, "text");
}
static void x_write_failure(cql_buf *b) {
  cql__buf_u16(b, 5);
  cql__buf_i32(b, 1);
  cql__buf_i32(b, 3);
  cql__buf_i32(b, 2);
  put_str(b, "BATCH_LOG");
}
static void x_already_exists(cql_buf *b) {
  put_str(b, "kong");
  put_str(b, "apis");
}
static void x_unprepared(cql_buf *b) { cql__buf_short_bytes(b, (const uint8_t *)"\xaa\xbb", 2); }

static void test_every_error_code(void **state) {
  (void)state;
  static const struct {
    int32_t code;
    const char *label;
  } plain[] = {{0x0000, "Server error"}, {0x000A, "Protocol error"},   {0x0100, "Bad credentials"},
               {0x1001, "Overloaded"},   {0x1002, "Is bootstrapping"}, {0x1003, "Truncate error"},
               {0x2000, "Syntax error"}, {0x2100, "Unauthorized"},     {0x2200, "Invalid"},
               {0x2300, "Config error"}};
  for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
    cql_error e = decode_error(plain[i].code, "boom", NULL);
    char want[64];
    snprintf(want, sizeof want, "[%s] boom", plain[i].label);
    assert_string_equal(cql_error_message(&e), want);
    cql_error_clear(&e);
  }
  cql_error e = decode_error(0x1000, "Cannot achieve consistency", x_unavailable);
  assert_int_equal(e.consistency, CQL_QUORUM);
  assert_int_equal(e.required, 3);
  assert_int_equal(e.alive, 1);
  assert_string_equal(cql_error_message(&e), "[Unavailable exception] Cannot achieve consistency");
  cql_error_clear(&e);

  e = decode_error(0x1100, "wt", x_write_timeout);
  assert_int_equal(e.consistency, CQL_ONE);
  assert_int_equal(e.block_for, 1);
  assert_string_equal(e.write_type, "SIMPLE");
  assert_string_equal(cql_error_message(&e), "[Write timeout] wt");
  cql_error_clear(&e);

  e = decode_error(0x1200, "rt", x_read_timeout);
  assert_int_equal(e.consistency, CQL_ALL);
  assert_int_equal(e.received, 1);
  assert_int_equal(e.block_for, 2);
  assert_int_equal(e.data_present, 1);
  cql_error_clear(&e);

  e = decode_error(0x1300, "rf", x_read_failure);
  assert_int_equal(e.num_failures, 1);
  assert_int_equal(e.data_present, 0);
  assert_string_equal(cql_error_message(&e), "[Read failure] rf");
  cql_error_clear(&e);

  e = decode_error(0x1400, "ff", x_function_failure);
  assert_string_equal(e.keyspace, "ks");
  assert_string_equal(e.function, "fn");
  assert_string_equal(e.arg_types, "int, text");
  assert_string_equal(cql_error_message(&e), "[Function failure] ff");
  cql_error_clear(&e);

  e = decode_error(0x1500, "wf", x_write_failure);
  assert_int_equal(e.consistency, CQL_ALL);
  assert_int_equal(e.num_failures, 2);
  assert_string_equal(e.write_type, "BATCH_LOG");
  cql_error_clear(&e);

  e = decode_error(0x2400, "Cannot add already existing table \"apis\"", x_already_exists);
  assert_string_equal(e.keyspace, "kong");
  assert_string_equal(e.table, "apis");
  assert_string_equal(cql_error_message(&e),
                      "[Already exists] Cannot add already existing table \"apis\"");
  cql_error_clear(&e);

  e = decode_error(0x2500, "unknown id", x_unprepared);
  assert_int_equal(e.unprepared_id_len, 2);
  assert_memory_equal(e.unprepared_id, "\xaa\xbb", 2);
  assert_string_equal(cql_error_message(&e), "[Unprepared] unknown id");
  cql_error_clear(&e);

  /* An unknown code still decodes, with a generic label. */
  e = decode_error(0x7777, "odd", NULL);
  assert_string_equal(cql_error_message(&e), "[Unknown error] odd");
  cql_error_clear(&e);
}

static void test_truncated_error_bodies(void **state) {
  (void)state;
  /* Code-specific fields missing: malformed, not a read past the end. */
  const int32_t codes[] = {0x1000, 0x1100, 0x1200, 0x1300, 0x1400, 0x1500, 0x2400, 0x2500};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    cql_buf body;
    cql__buf_init(&body);
    cql__buf_i32(&body, codes[i]);
    put_str(&body, "m");
    cql__buf_u8(&body, 0); /* one stray byte instead of the fields */
    cql_response r;
    cql_error server = {0}, err = {0};
    assert_int_equal(decode_body(CQL_OP_ERROR, &body, &r, &server, &err), -1);
    assert_int_equal(err.kind, CQL_ERR_MALFORMED);
    assert_int_equal(server.kind, CQL_ERR_NONE);
    cql_error_clear(&err);
    cql__buf_free(&body);
  }
  /* Message length past the end. */
  uint8_t raw[] = {0, 0, 0x22, 0, 0, 50, 'x'};
  cql_error e = {0};
  assert_int_equal(cql__error_decode(raw, sizeof raw, &e), -1);
  assert_int_equal(e.kind, CQL_ERR_MALFORMED);
  cql_error_clear(&e);
}

/* ---- events ------------------------------------------------------------------------------- */

static void test_events(void **state) {
  (void)state;
  cql_buf body;
  cql__buf_init(&body);
  put_str(&body, "STATUS_CHANGE");
  put_str(&body, "DOWN");
  cql__buf_u8(&body, 4);
  cql__buf_put(&body, "\x7f\x00\x00\x02", 4);
  cql__buf_i32(&body, 9042);
  cql_buf f = response(0, -1, CQL_OP_EVENT, &body);
  cql_response r;
  cql_error server = {0}, err = {0};
  assert_int_equal(decode(&f, &r, &server, &err), 0);
  assert_int_equal(r.stream, -1);
  assert_string_equal(r.event->type, "STATUS_CHANGE");
  assert_string_equal(r.event->change, "DOWN");
  assert_string_equal(r.event->address, "127.0.0.2");
  assert_int_equal(r.event->port, 9042);
  cql__response_clear(&r);
  cql__buf_free(&f);
  cql__buf_free(&body);

  cql__buf_init(&body);
  put_str(&body, "TOPOLOGY_CHANGE");
  put_str(&body, "NEW_NODE");
  cql__buf_u8(&body, 7); /* neither 4 nor 16 */
  cql__buf_put(&body, "1234567", 7);
  cql__buf_i32(&body, 1);
  f = response(0, -1, CQL_OP_EVENT, &body);
  assert_int_equal(decode(&f, &r, &server, &err), -1);
  assert_int_equal(err.kind, CQL_ERR_MALFORMED);
  cql__buf_free(&f);
  cql__buf_free(&body);
  cql_error_clear(&err);
}

/* ---- hostile frames ----------------------------------------------------------------------- */

static void rows_prefix(cql_buf *b, int32_t ncols) {
  cql__buf_i32(b, CQL_RESULT_ROWS);
  cql__buf_i32(b, CQL_RF_GLOBAL_TABLES_SPEC);
  cql__buf_i32(b, ncols);
  put_str(b, "k");
  put_str(b, "t");
}

static void test_hostile_counts_and_lengths(void **state) {
  (void)state;
  cql_buf b;

  /* Row count far beyond what the frame holds. */
  cql__buf_init(&b);
  rows_body(&b, 0x7fffffff);
  expect_malformed_result(&b);
  cql__buf_free(&b);

  /* Negative row count. */
  cql__buf_init(&b);
  rows_body(&b, -5);
  expect_malformed_result(&b);
  cql__buf_free(&b);

  /* Negative and huge column counts. */
  cql__buf_init(&b);
  rows_prefix(&b, -1);
  expect_malformed_result(&b);
  cql__buf_free(&b);
  cql__buf_init(&b);
  rows_prefix(&b, 0x40000000);
  expect_malformed_result(&b);
  cql__buf_free(&b);

  /* A cell whose length runs past the end. */
  cql__buf_init(&b);
  rows_prefix(&b, 1);
  put_str(&b, "c");
  cql__buf_u16(&b, CQL_TYPE_VARCHAR);
  cql__buf_i32(&b, 1);
  cql__buf_i32(&b, 1000);
  cql__buf_put(&b, "abc", 3);
  expect_malformed_result(&b);
  cql__buf_free(&b);

  /* A column name whose [string] length runs past the end. */
  cql__buf_init(&b);
  rows_prefix(&b, 1);
  cql__buf_u16(&b, 500);
  cql__buf_put(&b, "ab", 2);
  expect_malformed_result(&b);
  cql__buf_free(&b);

  /* Unknown type id. */
  cql__buf_init(&b);
  rows_prefix(&b, 1);
  put_str(&b, "c");
  cql__buf_u16(&b, 0x0099);
  cql__buf_i32(&b, 0);
  expect_malformed_result(&b);
  cql__buf_free(&b);

  /* Type nesting deeper than the limit: list<list<list<...>>>. */
  cql__buf_init(&b);
  rows_prefix(&b, 1);
  put_str(&b, "c");
  for (int i = 0; i < 40; i++) cql__buf_u16(&b, CQL_TYPE_LIST);
  cql__buf_u16(&b, CQL_TYPE_INT);
  cql__buf_i32(&b, 0);
  expect_malformed_result(&b);
  cql__buf_free(&b);

  /* Tuple and UDT with huge field counts. */
  cql__buf_init(&b);
  rows_prefix(&b, 1);
  put_str(&b, "c");
  cql__buf_u16(&b, CQL_TYPE_TUPLE);
  cql__buf_u16(&b, 0xffff);
  expect_malformed_result(&b);
  cql__buf_free(&b);
  cql__buf_init(&b);
  rows_prefix(&b, 1);
  put_str(&b, "c");
  cql__buf_u16(&b, CQL_TYPE_UDT);
  put_str(&b, "ks");
  put_str(&b, "u");
  cql__buf_u16(&b, 0xffff);
  expect_malformed_result(&b);
  cql__buf_free(&b);

  /* Paging state longer than the frame. */
  cql__buf_init(&b);
  cql__buf_i32(&b, CQL_RESULT_ROWS);
  cql__buf_i32(&b, CQL_RF_HAS_MORE_PAGES | CQL_RF_NO_METADATA);
  cql__buf_i32(&b, 1);
  cql__buf_i32(&b, 99);
  expect_malformed_result(&b);
  cql__buf_free(&b);

  /* Prepared: id past the end; huge pk count. */
  cql__buf_init(&b);
  cql__buf_i32(&b, CQL_RESULT_PREPARED);
  cql__buf_u16(&b, 40);
  cql__buf_put(&b, "xx", 2);
  expect_malformed_result(&b);
  cql__buf_free(&b);
  cql__buf_init(&b);
  cql__buf_i32(&b, CQL_RESULT_PREPARED);
  cql__buf_short_bytes(&b, (const uint8_t *)"i", 1);
  cql__buf_i32(&b, 0);
  cql__buf_i32(&b, 0);
  cql__buf_i32(&b, 0x7fffffff);
  expect_malformed_result(&b);
  cql__buf_free(&b);

  /* Warnings flag with a list longer than the frame. */
  cql__buf_init(&b);
  cql__buf_u16(&b, 0xffff);
  cql_buf f = response(CQL_FLAG_WARNING, 0, CQL_OP_RESULT, &b);
  cql_response r;
  cql_error server = {0}, err = {0};
  assert_int_equal(decode(&f, &r, &server, &err), -1);
  assert_int_equal(err.kind, CQL_ERR_MALFORMED);
  cql_error_clear(&err);
  cql__buf_free(&f);
  cql__buf_free(&b);

  /* Tracing flag on an empty body. */
  cql__buf_init(&b);
  f = response(CQL_FLAG_TRACING, 0, CQL_OP_RESULT, &b);
  assert_int_equal(decode(&f, &r, &server, &err), -1);
  cql_error_clear(&err);
  cql__buf_free(&f);
  cql__buf_free(&b);
}

/* A collection cell whose element count is huge must not be trusted (NULL, not a loop past the
 * cell); a list element running past the cell too. */
static void test_hostile_collection_cells(void **state) {
  (void)state;
  cql_type list = {.id = CQL_TYPE_LIST, .nsub = 1};
  cql_type text = {.id = CQL_TYPE_VARCHAR};
  list.sub = &text;
  uint8_t huge[8] = {0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1};
  assert_null(cql__cell_to_json(huge, sizeof huge, &list, 0));
  uint8_t neg[4] = {0xff, 0xff, 0xff, 0xff};
  assert_null(cql__cell_to_json(neg, sizeof neg, &list, 0));
  uint8_t past[12] = {0, 0, 0, 1, 0, 0, 0, 50, 'a', 'b', 'c', 'd'};
  assert_null(cql__cell_to_json(past, sizeof past, &list, 0));
  cql_type map = {.id = CQL_TYPE_MAP, .nsub = 2};
  cql_type kv[2] = {{.id = CQL_TYPE_VARCHAR}, {.id = CQL_TYPE_INT}};
  map.sub = kv;
  uint8_t bad_int[] = {0, 0, 0, 1, 0, 0, 0, 1, 'k', 0, 0, 0, 2, 1, 2};
  assert_null(cql__cell_to_json(bad_int, sizeof bad_int, &map, 0));
  /* Wrong fixed widths. */
  cql_type i = {.id = CQL_TYPE_INT}, u = {.id = CQL_TYPE_UUID};
  assert_null(cql__cell_to_json(huge, 3, &i, 0));
  assert_null(cql__cell_to_json(huge, 8, &u, 0));
  /* Invalid UTF-8 text is refused by jansson rather than passed on. */
  assert_null(cql__cell_to_json((const uint8_t *)"\xff\xfe", 2, &text, 0));
}

/* ---- uuids and names ---------------------------------------------------------------------- */

static void test_uuid_parse_format(void **state) {
  (void)state;
  uint8_t u[16];
  char s[37];
  assert_int_equal(cql_uuid_parse("DE305D54-75B4-431B-ADB2-EB6B9E546014", 36, u), 0);
  cql_uuid_format(u, s);
  assert_string_equal(s, "de305d54-75b4-431b-adb2-eb6b9e546014");
  assert_int_equal(cql_uuid_parse("de305d5475b4431badb2eb6b9e546014", 32, u), 0);
  assert_int_equal(cql_uuid_parse("de305d54-75b4-431b-adb2-eb6b9e54601", 35, u), -1);
  assert_int_equal(cql_uuid_parse("de305d54x75b4-431b-adb2-eb6b9e546014", 36, u), -1);
  assert_int_equal(cql_uuid_parse("ge305d54-75b4-431b-adb2-eb6b9e546014", 36, u), -1);
  assert_int_equal(cql_uuid_parse("de305d54-75b4-431b-adb2-eb6b9e5460-4", 36, u), -1);
  assert_int_equal(cql_uuid_parse(NULL, 0, u), -1);
}

static void test_names(void **state) {
  (void)state;
  assert_string_equal(cql_error_kind_name(CQL_ERR_TIMEOUT), "Timeout");
  assert_string_equal(cql_server_code_name(CQL_SERVER_INVALID), "Invalid");
  assert_string_equal(cql_consistency_name(CQL_LOCAL_QUORUM), "LOCAL_QUORUM");
  assert_string_equal(cql_consistency_name(CQL_CONSISTENCY_DEFAULT), "DEFAULT");
  cql_error e = {0};
  assert_string_equal(cql_error_message(&e), "No error");
  cql_error_clear(NULL);
  cql_result_free(NULL);
  cql_prepared_free(NULL);
  cql_event_free(NULL);
  cql_conn_close(NULL);
  cql_cluster_close(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_frame_parse_need_more_and_malformed),
      cmocka_unit_test(test_encode_startup_exact_bytes),
      cmocka_unit_test(test_encode_auth_plain),
      cmocka_unit_test(test_encode_query_flags_and_values),
      cmocka_unit_test(test_encode_execute_converts_by_column_type),
      cmocka_unit_test(test_encode_misuse),
      cmocka_unit_test(test_encode_batch),
      cmocka_unit_test(test_ready_authenticate_supported),
      cmocka_unit_test(test_result_void_keyspace_schema_change),
      cmocka_unit_test(test_result_rows),
      cmocka_unit_test(test_result_applied_and_warnings),
      cmocka_unit_test(test_result_prepared),
      cmocka_unit_test(test_every_error_code),
      cmocka_unit_test(test_truncated_error_bodies),
      cmocka_unit_test(test_events),
      cmocka_unit_test(test_hostile_counts_and_lengths),
      cmocka_unit_test(test_hostile_collection_cells),
      cmocka_unit_test(test_uuid_parse_format),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests_name("unit_cql_frame", tests, NULL, NULL);
}
