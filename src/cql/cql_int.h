/*
 * cql_int.h — private to src/cql/: the codec's buffers, reader, frame and result bodies.
 * Nothing outside src/cql/ (and its unit tests and fuzz target) includes this file.
 * Internal functions shared between files are `cql__` (double underscore).
 */
#ifndef KDAO_CQL_INT_H
#define KDAO_CQL_INT_H

#include "cql.h"

#include <stdarg.h>
#include <stdbool.h>

#define CQL_PROTOCOL_VERSION 0x04
#define CQL_RESPONSE_FLAG 0x80
#define CQL_HEADER_LEN 9
/* The protocol caps a frame body at 256 MiB; anything above is treated as hostile. */
#define CQL_MAX_BODY (256u * 1024u * 1024u)
/* Nesting deeper than this in a type description is treated as hostile. */
#define CQL_MAX_TYPE_DEPTH 16
#define CQL_MAX_STREAMS 128

enum cql_opcode {
  CQL_OP_ERROR = 0x00,
  CQL_OP_STARTUP = 0x01,
  CQL_OP_READY = 0x02,
  CQL_OP_AUTHENTICATE = 0x03,
  CQL_OP_OPTIONS = 0x05,
  CQL_OP_SUPPORTED = 0x06,
  CQL_OP_QUERY = 0x07,
  CQL_OP_RESULT = 0x08,
  CQL_OP_PREPARE = 0x09,
  CQL_OP_EXECUTE = 0x0A,
  CQL_OP_REGISTER = 0x0B,
  CQL_OP_EVENT = 0x0C,
  CQL_OP_BATCH = 0x0D,
  CQL_OP_AUTH_CHALLENGE = 0x0E,
  CQL_OP_AUTH_RESPONSE = 0x0F,
  CQL_OP_AUTH_SUCCESS = 0x10,
};

enum cql_frame_flag {
  CQL_FLAG_COMPRESSION = 0x01,
  CQL_FLAG_TRACING = 0x02,
  CQL_FLAG_CUSTOM_PAYLOAD = 0x04,
  CQL_FLAG_WARNING = 0x08,
};

enum cql_query_flag {
  CQL_QF_VALUES = 0x01,
  CQL_QF_SKIP_METADATA = 0x02,
  CQL_QF_PAGE_SIZE = 0x04,
  CQL_QF_PAGING_STATE = 0x08,
  CQL_QF_SERIAL_CONSISTENCY = 0x10,
  CQL_QF_DEFAULT_TIMESTAMP = 0x20,
};

enum cql_rows_flag {
  CQL_RF_GLOBAL_TABLES_SPEC = 0x0001,
  CQL_RF_HAS_MORE_PAGES = 0x0002,
  CQL_RF_NO_METADATA = 0x0004,
};

/* ---- growable output buffer with a sticky out-of-memory state --------------------------- */

typedef struct cql_buf {
  uint8_t *data;
  size_t len;
  size_t cap;
  bool oom; /* set by the first failed growth; later appends do nothing */
} cql_buf;

void cql__buf_init(cql_buf *b);
void cql__buf_free(cql_buf *b);
void cql__buf_put(cql_buf *b, const void *p, size_t n);
void cql__buf_u8(cql_buf *b, uint8_t v);
void cql__buf_u16(cql_buf *b, uint16_t v);
void cql__buf_i32(cql_buf *b, int32_t v);
void cql__buf_i64(cql_buf *b, int64_t v);
void cql__buf_string(cql_buf *b, const char *s, size_t n);      /* [string] */
void cql__buf_long_string(cql_buf *b, const char *s, size_t n); /* [long string] */
void cql__buf_short_bytes(cql_buf *b, const uint8_t *p, size_t n);
void cql__buf_bytes(cql_buf *b, const uint8_t *p, int32_t n); /* [bytes]; n < 0: null */
/* Overwrites 4 bytes at `at` with a big-endian int (used to patch lengths afterwards). */
void cql__buf_patch_i32(cql_buf *b, size_t at, int32_t v);

/* ---- bounds-checked reader with a sticky "bad" state ------------------------------------- */

typedef struct cql_rd {
  const uint8_t *p;
  size_t len;
  size_t pos;
  bool bad; /* set by the first read past the end or invalid length; reads then yield 0 */
} cql_rd;

void cql__rd_init(cql_rd *r, const uint8_t *p, size_t len);
size_t cql__rd_left(const cql_rd *r);
uint8_t cql__rd_u8(cql_rd *r);
uint16_t cql__rd_u16(cql_rd *r);
int32_t cql__rd_i32(cql_rd *r);
int64_t cql__rd_i64(cql_rd *r);
/* Returns a pointer into the slice (not NUL-terminated), NULL when bad. */
const uint8_t *cql__rd_raw(cql_rd *r, size_t n);
const char *cql__rd_string(cql_rd *r, size_t *n);
/* [bytes]: *n = -1 for null (returns NULL, not bad). */
const uint8_t *cql__rd_bytes(cql_rd *r, int32_t *n);
const uint8_t *cql__rd_short_bytes(cql_rd *r, size_t *n);
/* A [string] copied as a new NUL-terminated string (NULL when bad or out of memory:
 * *oom tells which). */
char *cql__rd_strdup(cql_rd *r, bool *oom);

/* ---- frames ------------------------------------------------------------------------------ */

typedef struct cql_frame {
  uint8_t version;
  uint8_t flags;
  int16_t stream;
  uint8_t opcode;
  const uint8_t *body; /* points into the caller's slice */
  size_t body_len;
} cql_frame;

typedef enum cql_decode_status {
  CQL_DECODE_MALFORMED = -1,
  CQL_DECODE_NEED_MORE = 0,
  CQL_DECODE_FRAME = 1,
} cql_decode_status;

/* Splits one response frame off the front of `data`. FRAME: *f describes it and *consumed is
 * its total size; NEED_MORE: a whole frame is not there yet (*consumed = bytes still wanted
 * at least); MALFORMED: wrong version/direction, negative or oversized length. No I/O. */
cql_decode_status cql__frame_parse(const uint8_t *data, size_t len, cql_frame *f, size_t *consumed);

/* Starts a request frame in `b` (header with a zero length) and returns the header offset;
 * cql__frame_finish patches the body length in. */
size_t cql__frame_begin(cql_buf *b, int16_t stream, uint8_t opcode);
void cql__frame_finish(cql_buf *b, size_t start);

/* ---- request bodies (encoders; all append to b) ------------------------------------------ */

void cql__enc_startup(cql_buf *b);
void cql__enc_auth_response(cql_buf *b, const char *user, const char *password);
void cql__enc_register(cql_buf *b, const char *const *events);
/* QUERY/EXECUTE bodies; -1 with CQL_ERR_MISUSE in err when a value cannot be bound. */
int cql__enc_query(cql_buf *b, const char *query, const cql_value *values, size_t n,
                   const cql_query_opts *opts, cql_error *err);
int cql__enc_execute(cql_buf *b, const cql_prepared *p, const cql_value *values, size_t n,
                     const cql_query_opts *opts, cql_error *err);
int cql__enc_batch(cql_buf *b, cql_batch_type type, const cql_batch_stmt *stmts,
                   const cql_prepared *const *prepared, size_t n, const cql_query_opts *opts,
                   cql_error *err);

/* ---- types and values -------------------------------------------------------------------- */

typedef struct cql_type {
  uint16_t id;
  uint16_t nsub;        /* list/set: 1, map: 2, tuple/UDT: fields */
  struct cql_type *sub; /* nsub entries */
} cql_type;

typedef struct cql_column {
  char *name;
  cql_type type;
} cql_column;

/* Reads an [option] type description (recursively, up to CQL_MAX_TYPE_DEPTH). Returns 0, or
 * -1 when malformed (r->bad) or out of memory (*oom). */
int cql__type_read(cql_rd *r, cql_type *t, int depth, bool *oom);
void cql__type_clear(cql_type *t);
void cql__columns_free(cql_column *cols, size_t n);

/* Encodes `v` as a [value] (with its length) for a bind marker of type `t` (NULL: unknown,
 * use v->type). -1 with CQL_ERR_MISUSE naming parameter `index` when it does not fit. */
int cql__value_encode(cql_buf *b, const cql_value *v, const cql_type *t, size_t index,
                      cql_error *err);

/* One serialized cell (not null) of type `t` as a new JSON value; NULL when malformed or out
 * of memory. */
json_t *cql__cell_to_json(const uint8_t *p, size_t len, const cql_type *t, int depth);

/* ---- responses --------------------------------------------------------------------------- */

struct cql_prepared {
  uint8_t *id;
  size_t id_len;
  size_t nparams;
  cql_column *params;
  char *query; /* the text it was prepared from (set by conn/cluster), may be NULL */
};

typedef struct cql_cell {
  uint32_t off; /* offset into the result's body */
  int32_t len;  /* -1: null */
} cql_cell;

struct cql_result {
  cql_result_kind kind;
  uint8_t *body; /* owned copy of the frame body */
  size_t body_len;
  int32_t flags;
  size_t ncols;
  cql_column *cols;
  size_t nrows;
  cql_cell *cells;             /* nrows * ncols */
  const uint8_t *paging_state; /* into body */
  size_t paging_len;
  char *keyspace;    /* SET_KEYSPACE, or the schema change's keyspace */
  char *change_type; /* SCHEMA_CHANGE */
  char *change_target;
  char *change_name;
  cql_prepared *prepared; /* PREPARED: moved out by conn.c */
  char **warnings;
  size_t nwarnings;
};

/* A decoded response. Which fields are set depends on opcode. */
typedef struct cql_response {
  uint8_t opcode;
  int16_t stream;
  cql_result *result;  /* RESULT */
  cql_event *event;    /* EVENT */
  char *authenticator; /* AUTHENTICATE */
  json_t *supported;   /* SUPPORTED */
} cql_response;

/* Decodes a frame's body. Returns 0 (ERROR frames too: then -1 is NOT returned, but
 * `server_error` is filled and `r->opcode` is CQL_OP_ERROR), or -1 with CQL_ERR_MALFORMED /
 * CQL_ERR_NOMEM / CQL_ERR_PROTOCOL (compressed frame, unknown opcode) in err. Every length and
 * count is checked against the bytes that remain; nothing is read outside the body. */
int cql__response_decode(const cql_frame *f, cql_response *r, cql_error *server_error,
                         cql_error *err);
void cql__response_clear(cql_response *r);

/* Decodes an ERROR body into `e` (kind SERVER and the code-specific fields). Returns 0, or -1
 * when malformed (e then holds CQL_ERR_MALFORMED) or out of memory. */
int cql__error_decode(const uint8_t *body, size_t len, cql_error *e);

/* ---- errors ------------------------------------------------------------------------------ */

/* Fills err (may be NULL) with kind and a printf-formatted message; returns -1 so callers can
 * `return cql__fail(...)`. */
int cql__fail(cql_error *err, cql_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets err->host (replacing). */
void cql__error_set_host(cql_error *err, const char *host);
/* Moves src into dst (dst cleared first; src zeroed). */
void cql__error_move(cql_error *dst, cql_error *src);
char *cql__strdup(const char *s);
char *cql__strndup(const char *s, size_t n);

/* ---- connection internals used by the cluster --------------------------------------------- */

/* BATCH where statement i uses prepared[i] when non-NULL (the cluster's per-node cache). */
int cql__conn_batch_prepared(cql_conn *c, cql_batch_type type, const cql_batch_stmt *stmts,
                             const cql_prepared *const *prepared, size_t n,
                             const cql_query_opts *opts, cql_result **out, cql_error *err);

/* Every wait of `c` (sending, answers, start-up) ends by `deadline` (monotonic ms) at the
 * latest, whatever the request's own timeout; 0 lifts the bound. */
void cql__conn_set_deadline(cql_conn *c, int64_t deadline);

/* Reads whatever `c` has received without waiting (answers, events, end of stream): 0 when
 * the connection is still usable, -1 when it is broken (the peer closed or reset it), with
 * err. Lets the cluster notice a dead node on connections that sit idle. */
int cql__conn_poll(cql_conn *c, cql_error *err);

/* Monotonic milliseconds. */
int64_t cql__now_ms(void);

/* The client's allocator (alloc.c), set by cql_set_allocator(). */
void *cql__malloc(size_t n);
void *cql__calloc(size_t count, size_t size);
void *cql__realloc(void *p, size_t n);
void cql__free(void *p);

#endif /* KDAO_CQL_INT_H */
