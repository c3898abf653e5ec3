/*
 * cql.h — kdao's Cassandra client: CQL native protocol v4 over TCP or TLS.
 *
 * This is the interface the Cassandra backend (src/backends/cassandra.c) calls. It is internal
 * to kdao: symbols are `cql_` (not `kdao_`) and none is exported from libkdao.so.
 *
 * Three layers, one file each (docs/cql.md has the picture):
 *   frame.c    the codec: encodes requests into a growable buffer, decodes responses from a
 *              byte slice. Pure: no sockets, no clock.
 *   conn.c     one connection to one node (cql_conn): STARTUP, SASL PLAIN authentication,
 *              QUERY/PREPARE/EXECUTE/BATCH/REGISTER, several requests in flight by stream id,
 *              timeouts with poll().
 *   cluster.c  several nodes (cql_cluster): peer discovery, round-robin or DC-aware
 *              round-robin, down-marking with back-off, per-node prepared-statement cache with
 *              transparent re-prepare, schema agreement after DDL.
 *
 * RULES THAT HOLD FOR EVERY FUNCTION BELOW (exceptions are documented where they occur)
 *   - Functions returning `int` return 0 on success and -1 on failure; functions returning a
 *     pointer return NULL on failure.
 *   - The last argument `cql_error *err` may be NULL. On failure it is filled in (whatever it
 *     held before is released first); on success it is left untouched. A zero-initialised
 *     cql_error is valid; release its strings with cql_error_clear().
 *   - Strings and arrays passed in are borrowed for the duration of the call only, unless a
 *     function says otherwise.
 *   - Objects returned ("new") are owned by the caller and freed with the matching _free/_close
 *     function; every _free/_close accepts NULL.
 *   - No function prints, exits or aborts. Every allocation is checked (CQL_ERR_NOMEM).
 *   - Thread-safety: none of these objects may be used by two threads at once. Different
 *     connections/clusters are independent.
 */
#ifndef KDAO_CQL_H
#define KDAO_CQL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* Server error codes (protocol v4 section 9): name, code, the label used in messages. The
 * labels are those Kong's lua-cassandra put in brackets, so "[Invalid] unconfigured table x"
 * reads the same as under Kong 0.10. */
#define CQL_SERVER_ERROR_MAP(X)                   \
  X(SERVER_ERROR, 0x0000, "Server error")         \
  X(PROTOCOL_ERROR, 0x000A, "Protocol error")     \
  X(BAD_CREDENTIALS, 0x0100, "Bad credentials")   \
  X(UNAVAILABLE, 0x1000, "Unavailable exception") \
  X(OVERLOADED, 0x1001, "Overloaded")             \
  X(IS_BOOTSTRAPPING, 0x1002, "Is bootstrapping") \
  X(TRUNCATE_ERROR, 0x1003, "Truncate error")     \
  X(WRITE_TIMEOUT, 0x1100, "Write timeout")       \
  X(READ_TIMEOUT, 0x1200, "Read timeout")         \
  X(READ_FAILURE, 0x1300, "Read failure")         \
  X(FUNCTION_FAILURE, 0x1400, "Function failure") \
  X(WRITE_FAILURE, 0x1500, "Write failure")       \
  X(SYNTAX_ERROR, 0x2000, "Syntax error")         \
  X(UNAUTHORIZED, 0x2100, "Unauthorized")         \
  X(INVALID, 0x2200, "Invalid")                   \
  X(CONFIG_ERROR, 0x2300, "Config error")         \
  X(ALREADY_EXISTS, 0x2400, "Already exists")     \
  X(UNPREPARED, 0x2500, "Unprepared")

typedef enum cql_server_code {
#define CQL_X_(name, code, label) CQL_SERVER_##name = code,
  CQL_SERVER_ERROR_MAP(CQL_X_)
#undef CQL_X_
} cql_server_code;

/* What went wrong, client side or server side: name, label. */
#define CQL_ERROR_KIND_MAP(X)                                                                  \
  X(NONE, "No error")                                                                          \
  X(SERVER, "Server error")         /* an ERROR frame; cql_error.code holds its code */        \
  X(CONNECT, "Connection refused")  /* TCP connect failed; message names host:port */          \
  X(TIMEOUT, "Timeout")             /* connect or request deadline passed */                   \
  X(TLS, "TLS error")               /* handshake or certificate verification failed */         \
  X(IO, "Connection error")         /* read/write failed or peer closed the connection */      \
  X(MALFORMED, "Malformed frame")   /* a frame that breaks the protocol (lengths, counts) */   \
  X(PROTOCOL, "Protocol violation") /* a well-formed but unexpected response */                \
  X(AUTH, "Authentication error")   /* server wants credentials we lack, or an unknown SASL */ \
  X(NO_HOSTS, "No host available")  /* every node of the cluster is down */                    \
  X(UNAVAILABLE, "Unavailable")     /* fewer nodes alive than the consistency level needs */   \
  X(NOMEM, "Out of memory")                                                                    \
  X(MISUSE, "Misuse") /* bad argument: NULL handle, value not convertible to column type */

typedef enum cql_error_kind {
#define CQL_X_(name, label) CQL_ERR_##name,
  CQL_ERROR_KIND_MAP(CQL_X_)
#undef CQL_X_
} cql_error_kind;

/* Consistency levels. The enum value is the wire code plus one, so that 0 (a zeroed options
 * struct) means "not set / use the default". */
typedef enum cql_consistency {
  CQL_CONSISTENCY_DEFAULT = 0,
  CQL_ANY = 0x0000 + 1,
  CQL_ONE = 0x0001 + 1,
  CQL_TWO = 0x0002 + 1,
  CQL_THREE = 0x0003 + 1,
  CQL_QUORUM = 0x0004 + 1,
  CQL_ALL = 0x0005 + 1,
  CQL_LOCAL_QUORUM = 0x0006 + 1,
  CQL_EACH_QUORUM = 0x0007 + 1,
  CQL_SERIAL = 0x0008 + 1,
  CQL_LOCAL_SERIAL = 0x0009 + 1,
  CQL_LOCAL_ONE = 0x000A + 1,
} cql_consistency;

/* A failure, decoded. Caller-allocated (usually on the stack, zero-initialised); the library
 * fills it and owns nothing in it afterwards: release the strings with cql_error_clear().
 * Only the fields that apply to `kind`/`code` are set; the others are 0/NULL. */
typedef struct cql_error {
  cql_error_kind kind;
  int32_t code;         /* server error code (cql_server_code) when kind == CQL_ERR_SERVER */
  char *message;        /* readable text, e.g. "[Invalid] unconfigured table foo"; may be NULL
                        only after an out-of-memory: use cql_error_message() to read it */
  char *server_message; /* the server's text alone, for CQL_ERR_SERVER */
  char *host;           /* "address:port" of the node involved, when known */
  /* UNAVAILABLE, WRITE_TIMEOUT, READ_TIMEOUT, READ_FAILURE, WRITE_FAILURE */
  cql_consistency consistency;
  int32_t required;       /* UNAVAILABLE */
  int32_t alive;          /* UNAVAILABLE */
  int32_t received;       /* *_TIMEOUT, *_FAILURE */
  int32_t block_for;      /* *_TIMEOUT, *_FAILURE */
  int32_t num_failures;   /* *_FAILURE */
  int data_present;       /* READ_TIMEOUT, READ_FAILURE */
  char *write_type;       /* WRITE_TIMEOUT, WRITE_FAILURE: "SIMPLE", "BATCH", ... */
  char *keyspace;         /* ALREADY_EXISTS, FUNCTION_FAILURE */
  char *table;            /* ALREADY_EXISTS ("" when a keyspace already exists) */
  char *function;         /* FUNCTION_FAILURE */
  char *arg_types;        /* FUNCTION_FAILURE: argument types joined with ", " */
  uint8_t *unprepared_id; /* UNPREPARED: the statement id the node did not know */
  size_t unprepared_id_len;
} cql_error;

/* Releases the strings inside `err` and zeroes it. NULL-safe; safe on a zeroed struct. */
void cql_error_clear(cql_error *err);

/* The readable message of `err`: its `message`, or the kind's label when there is none.
 * Borrowed; valid until `err` is cleared or reused. Never NULL. */
const char *cql_error_message(const cql_error *err);

/*
 * The allocator behind every byte the client owns (malloc/realloc/free by default). Set it
 * once, before any other call: memory allocated before must not be freed after a change.
 */
void cql_set_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                       void (*free_fn)(void *));

/* Static label of a kind ("Timeout") or of a server code ("Invalid"). Never NULL. */
const char *cql_error_kind_name(cql_error_kind kind);
const char *cql_server_code_name(int32_t code);

/* Static name of a consistency level ("QUORUM"); "DEFAULT" for 0. Never NULL. */
const char *cql_consistency_name(cql_consistency c);

/* ------------------------------------------------------------------------------------------ */
/* Types and values                                                                           */
/* ------------------------------------------------------------------------------------------ */

/* CQL type ids, as on the wire ([option] ids of protocol v4 section 4.2.5.2). */
typedef enum cql_type_id {
  CQL_TYPE_CUSTOM = 0x0000,
  CQL_TYPE_ASCII = 0x0001,
  CQL_TYPE_BIGINT = 0x0002,
  CQL_TYPE_BLOB = 0x0003,
  CQL_TYPE_BOOLEAN = 0x0004,
  CQL_TYPE_COUNTER = 0x0005,
  CQL_TYPE_DECIMAL = 0x0006,
  CQL_TYPE_DOUBLE = 0x0007,
  CQL_TYPE_FLOAT = 0x0008,
  CQL_TYPE_INT = 0x0009,
  CQL_TYPE_TIMESTAMP = 0x000B,
  CQL_TYPE_UUID = 0x000C,
  CQL_TYPE_VARCHAR = 0x000D,
  CQL_TYPE_VARINT = 0x000E,
  CQL_TYPE_TIMEUUID = 0x000F,
  CQL_TYPE_INET = 0x0010,
  CQL_TYPE_DATE = 0x0011,
  CQL_TYPE_TIME = 0x0012,
  CQL_TYPE_SMALLINT = 0x0013,
  CQL_TYPE_TINYINT = 0x0014,
  CQL_TYPE_LIST = 0x0020,
  CQL_TYPE_MAP = 0x0021,
  CQL_TYPE_SET = 0x0022,
  CQL_TYPE_UDT = 0x0030,
  CQL_TYPE_TUPLE = 0x0031,
  /* Not a wire id: "take the type from the prepared statement's metadata". */
  CQL_TYPE_AUTO = 0xFFFF,
} cql_type_id;

typedef enum cql_value_kind {
  CQL_VAL_NULL = 0,  /* null */
  CQL_VAL_UNSET,     /* "not set": leaves the column unchanged */
  CQL_VAL_BOOL,      /* u.b */
  CQL_VAL_INT,       /* u.i: int, bigint, timestamp (ms), counter, smallint, tinyint */
  CQL_VAL_DOUBLE,    /* u.d: double, float */
  CQL_VAL_TEXT,      /* u.s: text/varchar/ascii; also uuid/timeuuid given as a string */
  CQL_VAL_BLOB,      /* u.s: raw bytes sent as they are */
  CQL_VAL_UUID,      /* u.uuid: 16 bytes */
  CQL_VAL_TEXT_LIST, /* u.list: list<text> or set<text> (elements may also be uuids as text) */
  CQL_VAL_TEXT_MAP,  /* u.map: map<text, text> */
  CQL_VAL_JSON,      /* u.json: converted according to the target column's type */
} cql_value_kind;

/* A value to bind. Plain data; every pointer in it is borrowed until the call that binds it
 * returns. Build one with the cql_v_*() helpers below.
 *
 * How a value meets its column type: for EXECUTE (prepared statements, and everything that
 * goes through cql_cluster_execute) the type comes from the statement's metadata and the value
 * is converted to it (an INT into an `int` column is range-checked and sent as 4 bytes, into a
 * `bigint`/`timestamp`/`counter` column as 8; a TEXT into a `uuid` column is parsed; a JSON
 * value is converted by the column type: integer, string, true/false, array of strings for
 * list/set, object of strings for map, null). A value that does not fit fails with
 * CQL_ERR_MISUSE naming the parameter. For QUERY with values, there is no metadata and
 * `type` says what to send (the cql_v_*() helpers set it; JSON then maps integer → bigint,
 * real → double, string → varchar, array → list<varchar>, object → map<varchar,varchar>). */
typedef struct cql_value {
  cql_value_kind kind;
  cql_type_id type; /* wire type to use when no metadata is known */
  union {
    int b;
    int64_t i;
    double d;
    struct {
      const char *ptr;
      size_t len;
    } s;
    uint8_t uuid[16];
    struct {
      const char *const *items;
      size_t count;
    } list;
    struct {
      const char *const *keys;
      const char *const *vals;
      size_t count;
    } map;
    const json_t *json;
  } u;
} cql_value;

static inline cql_value cql_v_null(void) {
  cql_value v = {.kind = CQL_VAL_NULL, .type = CQL_TYPE_AUTO};
  return v;
}
static inline cql_value cql_v_unset(void) {
  cql_value v = {.kind = CQL_VAL_UNSET, .type = CQL_TYPE_AUTO};
  return v;
}
static inline cql_value cql_v_bool(int b) {
  cql_value v = {.kind = CQL_VAL_BOOL, .type = CQL_TYPE_BOOLEAN, .u.b = b != 0};
  return v;
}
static inline cql_value cql_v_int(int32_t i) {
  cql_value v = {.kind = CQL_VAL_INT, .type = CQL_TYPE_INT, .u.i = i};
  return v;
}
static inline cql_value cql_v_bigint(int64_t i) {
  cql_value v = {.kind = CQL_VAL_INT, .type = CQL_TYPE_BIGINT, .u.i = i};
  return v;
}
/* A timestamp in milliseconds since the Unix epoch. */
static inline cql_value cql_v_timestamp(int64_t ms) {
  cql_value v = {.kind = CQL_VAL_INT, .type = CQL_TYPE_TIMESTAMP, .u.i = ms};
  return v;
}
static inline cql_value cql_v_double(double d) {
  cql_value v = {.kind = CQL_VAL_DOUBLE, .type = CQL_TYPE_DOUBLE, .u.d = d};
  return v;
}
/* NUL-terminated UTF-8 text (the NUL is not sent). */
static inline cql_value cql_v_text(const char *s) {
  cql_value v = {.kind = CQL_VAL_TEXT, .type = CQL_TYPE_VARCHAR};
  v.u.s.ptr = s;
  v.u.s.len = s ? strlen(s) : 0;
  return v;
}
static inline cql_value cql_v_textn(const char *s, size_t len) {
  cql_value v = {.kind = CQL_VAL_TEXT, .type = CQL_TYPE_VARCHAR};
  v.u.s.ptr = s;
  v.u.s.len = len;
  return v;
}
static inline cql_value cql_v_blob(const void *p, size_t len) {
  cql_value v = {.kind = CQL_VAL_BLOB, .type = CQL_TYPE_BLOB};
  v.u.s.ptr = (const char *)p;
  v.u.s.len = len;
  return v;
}
static inline cql_value cql_v_uuid(const uint8_t bytes[16]) {
  cql_value v = {.kind = CQL_VAL_UUID, .type = CQL_TYPE_UUID};
  for (int k = 0; k < 16; k++) v.u.uuid[k] = bytes[k];
  return v;
}
/* A uuid given as text ("de305d54-75b4-431b-adb2-eb6b9e546014"); parsed when bound. */
static inline cql_value cql_v_uuid_str(const char *s) {
  cql_value v = cql_v_text(s);
  v.type = CQL_TYPE_UUID;
  return v;
}
static inline cql_value cql_v_text_list(const char *const *items, size_t count) {
  cql_value v = {.kind = CQL_VAL_TEXT_LIST, .type = CQL_TYPE_LIST};
  v.u.list.items = items;
  v.u.list.count = count;
  return v;
}
static inline cql_value cql_v_text_set(const char *const *items, size_t count) {
  cql_value v = cql_v_text_list(items, count);
  v.type = CQL_TYPE_SET;
  return v;
}
static inline cql_value cql_v_text_map(const char *const *keys, const char *const *vals,
                                       size_t count) {
  cql_value v = {.kind = CQL_VAL_TEXT_MAP, .type = CQL_TYPE_MAP};
  v.u.map.keys = keys;
  v.u.map.vals = vals;
  v.u.map.count = count;
  return v;
}
/* A jansson value, converted by the target column type (borrowed: not stolen). */
static inline cql_value cql_v_json(const json_t *j) {
  cql_value v = {.kind = CQL_VAL_JSON, .type = CQL_TYPE_AUTO};
  v.u.json = j;
  return v;
}

/* Parses a uuid in canonical text form (hyphens optional, either case) into 16 bytes.
 * Returns 0, or -1 when `s` is not a uuid. */
int cql_uuid_parse(const char *s, size_t len, uint8_t out[16]);

/* Formats 16 bytes as a canonical lowercase uuid into `out` (37 bytes with the NUL). */
void cql_uuid_format(const uint8_t uuid[16], char out[37]);

/* ------------------------------------------------------------------------------------------ */
/* Results                                                                                    */
/* ------------------------------------------------------------------------------------------ */

typedef enum cql_result_kind {
  CQL_RESULT_VOID = 0x0001,
  CQL_RESULT_ROWS = 0x0002,
  CQL_RESULT_SET_KEYSPACE = 0x0003,
  CQL_RESULT_PREPARED = 0x0004,
  CQL_RESULT_SCHEMA_CHANGE = 0x0005,
} cql_result_kind;

/* The RESULT of one request. Opaque, read-only; owns its bytes. Free with cql_result_free.
 * Row and column indexes start at 0; getters given an index out of range, or a cell of another
 * type, return -1 (or NULL) and never read outside the result. */
typedef struct cql_result cql_result;

void cql_result_free(cql_result *r);
cql_result_kind cql_result_kind_of(const cql_result *r);

size_t cql_result_row_count(const cql_result *r);
size_t cql_result_column_count(const cql_result *r);
/* Column name; borrowed, valid as long as `r`. NULL when out of range or when the result has
 * no metadata. */
const char *cql_result_column_name(const cql_result *r, size_t col);
/* Column type id, -1 when out of range. For collections, `cql_result_column_subtype` gives the
 * element type (which = 0), or key (0) and value (1) types of a map. */
int cql_result_column_type(const cql_result *r, size_t col);
int cql_result_column_subtype(const cql_result *r, size_t col, int which);
/* Index of the column named `name`, or -1. */
int cql_result_column_index(const cql_result *r, const char *name);

/* 1 when the cell is null, 0 when not, -1 when out of range. */
int cql_result_is_null(const cql_result *r, size_t row, size_t col);
/* Raw cell bytes (borrowed, valid as long as `r`); NULL for null or out of range. */
const uint8_t *cql_result_cell(const cql_result *r, size_t row, size_t col, size_t *len);
/* Typed getters: 0 on success; -1 when null, out of range, or of another type. int64 reads
 * int, bigint, counter, timestamp, smallint and tinyint cells. Text is not NUL-terminated:
 * use `len` (borrowed, valid as long as `r`). */
int cql_result_get_bool(const cql_result *r, size_t row, size_t col, int *out);
int cql_result_get_int64(const cql_result *r, size_t row, size_t col, int64_t *out);
int cql_result_get_text(const cql_result *r, size_t row, size_t col, const char **s, size_t *len);
int cql_result_get_uuid(const cql_result *r, size_t row, size_t col, uint8_t out[16]);

/* One cell as JSON: new reference (json_decref it), NULL on out-of-memory, out of range, or a
 * malformed cell. Mapping: null → null; text/ascii → string; int/bigint/counter/smallint/
 * tinyint → integer; timestamp → integer (ms); boolean → true/false; uuid/timeuuid → canonical
 * lowercase string; double/float → real; list/set → array; map → object (keys as text);
 * inet → "a.b.c.d"; blob and anything else → "0x" + hex. */
json_t *cql_result_cell_json(const cql_result *r, size_t row, size_t col);
/* One row as a JSON object {column name: cell}: new reference, NULL on failure. */
json_t *cql_result_row_json(const cql_result *r, size_t row);

/* The `[applied]` column of a lightweight transaction (INSERT ... IF NOT EXISTS, UPDATE ...
 * IF ...): 1 applied, 0 not applied, -1 when the result has no such column. When not applied,
 * the same row carries the existing values (read them with the getters, row 0). */
int cql_result_applied(const cql_result *r);

/* Paging: 1 when the server has more rows after this page. The state (borrowed, valid as long
 * as `r`; NULL when there is no next page) goes into cql_query_opts.paging_state to get it. */
int cql_result_has_more_pages(const cql_result *r);
const uint8_t *cql_result_paging_state(const cql_result *r, size_t *len);

/* SET_KEYSPACE: the keyspace; SCHEMA_CHANGE: the change ("CREATED"...), target ("TABLE"...),
 * keyspace and name (NULL for a keyspace change). All borrowed, valid as long as `r`; NULL
 * for other kinds. */
const char *cql_result_keyspace(const cql_result *r);
const char *cql_result_schema_change_type(const cql_result *r);
const char *cql_result_schema_change_target(const cql_result *r);
const char *cql_result_schema_change_name(const cql_result *r);

/* Server warnings attached to the response (e.g. "Aggregation query used without partition
 * key"): count, and each borrowed string. */
size_t cql_result_warning_count(const cql_result *r);
const char *cql_result_warning(const cql_result *r, size_t i);

/* ------------------------------------------------------------------------------------------ */
/* Requests                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Per-request options. A zeroed struct (or NULL) means: consistency ONE (or the cluster's
 * default), no serial consistency flag, no paging, no client timestamp, not idempotent, the
 * connection's request timeout. */
typedef struct cql_query_opts {
  cql_consistency consistency;
  cql_consistency serial_consistency; /* SERIAL or LOCAL_SERIAL, for IF conditions */
  int32_t page_size;                  /* > 0: pages of this many rows */
  const uint8_t *paging_state;        /* from cql_result_paging_state(), borrowed */
  size_t paging_state_len;
  int64_t timestamp_us; /* > 0: default write timestamp in microseconds */
  int idempotent;       /* cluster may re-send after a failure mid-request on another node */
  int timeout_ms;       /* > 0: overrides the request timeout for this request */
} cql_query_opts;

typedef enum cql_batch_type {
  CQL_BATCH_LOGGED = 0,
  CQL_BATCH_UNLOGGED = 1,
  CQL_BATCH_COUNTER = 2,
} cql_batch_type;

/* A prepared statement of one node. Opaque; read-only; free with cql_prepared_free (the
 * cluster frees those it caches itself). */
typedef struct cql_prepared cql_prepared;

void cql_prepared_free(cql_prepared *p);
/* Number of bind markers, and each one's name (borrowed) and type id (-1 out of range). */
size_t cql_prepared_param_count(const cql_prepared *p);
const char *cql_prepared_param_name(const cql_prepared *p, size_t i);
int cql_prepared_param_type(const cql_prepared *p, size_t i);
/* The statement id the node gave (borrowed). */
const uint8_t *cql_prepared_id(const cql_prepared *p, size_t *len);

/* One statement of a BATCH: either `query` (CQL text) or `prepared`. With the cluster API,
 * `prepared` is ignored and `prepare` = 1 has the cluster prepare `query` (cached per node). */
typedef struct cql_batch_stmt {
  const char *query;
  const cql_prepared *prepared;
  int prepare;
  const cql_value *values;
  size_t n_values;
} cql_batch_stmt;

/* A server-pushed EVENT (after cql_conn_register). Plain struct; free with cql_event_free. */
typedef struct cql_event {
  char *type;    /* "TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE" */
  char *change;  /* "NEW_NODE"/"REMOVED_NODE", "UP"/"DOWN", "CREATED"/"UPDATED"/"DROPPED" */
  char *address; /* node address for topology/status changes, else NULL */
  int port;
  char *target;   /* schema changes: "KEYSPACE", "TABLE", "TYPE", "FUNCTION", "AGGREGATE" */
  char *keyspace; /* schema changes */
  char *name;     /* schema changes other than KEYSPACE */
} cql_event;

void cql_event_free(cql_event *ev);

/* ------------------------------------------------------------------------------------------ */
/* One connection                                                                             */
/* ------------------------------------------------------------------------------------------ */

/* Options to open a connection. Zeroed fields take the defaults noted. */
typedef struct cql_conn_options {
  const char *host;            /* IPv4/IPv6 literal or name; required */
  uint16_t port;               /* 0: 9042 */
  const char *username;        /* with password: PasswordAuthenticator (SASL PLAIN) */
  const char *password;        /* never logged, never copied into an error */
  const char *keyspace;        /* non-NULL: "USE <keyspace>" right after start-up */
  int tls;                     /* 1: TLS (OpenSSL) */
  int tls_verify;              /* 1: verify the server certificate and host name */
  const char *tls_ca_file;     /* PEM file of trusted CAs (default: system store) */
  const char *tls_server_name; /* SNI and verified name (default: host) */
  int connect_timeout_ms;      /* 0: 5000; covers TCP, TLS, STARTUP and authentication */
  int request_timeout_ms;      /* 0: 12000 */
} cql_conn_options;

/* A connection to one node. Opaque. Life-cycle: cql_conn_open → requests → cql_conn_close.
 * After a CQL_ERR_IO, _TLS or _MALFORMED failure (or a timeout while writing) the connection
 * is broken (cql_conn_is_broken) and every later request fails at once; server errors
 * (CQL_ERR_SERVER) leave it usable, and so does a timeout waiting for an answer: that stream
 * stays taken until the late answer arrives and is dropped (past 64 of them the connection
 * is broken). */
typedef struct cql_conn cql_conn;

/* CONSTRUCTOR. Connects, negotiates protocol v4 (STARTUP), authenticates when the server asks
 * (needs username/password: CQL_ERR_AUTH otherwise; CQL_ERR_SERVER with code
 * BAD_CREDENTIALS when refused), and sets the keyspace. Returns a new connection, or NULL
 * with CQL_ERR_CONNECT ("connection refused: 127.0.0.1:9042"), _TIMEOUT, _TLS, ... in err. */
cql_conn *cql_conn_open(const cql_conn_options *opts, cql_error *err);

/* DESTRUCTOR. Closes the socket; pending requests are dropped. NULL-safe. */
void cql_conn_close(cql_conn *c);

/* "address:port" of the node (borrowed, valid as long as `c`). */
const char *cql_conn_host(const cql_conn *c);
int cql_conn_is_broken(const cql_conn *c);
/* The keyspace the connection uses, NULL when none (borrowed). */
const char *cql_conn_keyspace(const cql_conn *c);

/* Runs `query` (QUERY) with optional `values` (may be NULL when n_values is 0). On success
 * `*out` (may be NULL to discard) is a new result. A server ERROR is a failure with
 * kind CQL_ERR_SERVER. A result of kind SET_KEYSPACE updates cql_conn_keyspace(). */
int cql_conn_query(cql_conn *c, const char *query, const cql_value *values, size_t n_values,
                   const cql_query_opts *opts, cql_result **out, cql_error *err);

/* PREPARE: on success `*out` is a new prepared statement, valid on this node (any connection
 * to it) until the node forgets it (then EXECUTE fails with code UNPREPARED). */
int cql_conn_prepare(cql_conn *c, const char *query, cql_prepared **out, cql_error *err);

/* EXECUTE a statement prepared on this node. Values are converted to the bind markers' types
 * (see cql_value). Wrong value count or an unconvertible value: CQL_ERR_MISUSE. */
int cql_conn_execute(cql_conn *c, const cql_prepared *p, const cql_value *values, size_t n_values,
                     const cql_query_opts *opts, cql_result **out, cql_error *err);

/* BATCH of `n` statements. opts->page_size and paging_state are ignored. */
int cql_conn_batch(cql_conn *c, cql_batch_type type, const cql_batch_stmt *stmts, size_t n,
                   const cql_query_opts *opts, cql_result **out, cql_error *err);

/* OPTIONS: the server's SUPPORTED map as a new JSON object {option: [values]}. */
json_t *cql_conn_supported(cql_conn *c, cql_error *err);

/* Several requests in flight. Submit sends a request and returns its stream id (>= 0) or -1;
 * cql_conn_wait blocks until the response to that stream arrives (responses to other streams
 * read meanwhile are kept for their own wait) and then behaves as the blocking call. Every
 * submitted stream must be waited for once, or released by cql_conn_close. At most 128
 * requests may be in flight (CQL_ERR_MISUSE beyond). */
int cql_conn_submit_query(cql_conn *c, const char *query, const cql_value *values, size_t n_values,
                          const cql_query_opts *opts, cql_error *err);
int cql_conn_submit_execute(cql_conn *c, const cql_prepared *p, const cql_value *values,
                            size_t n_values, const cql_query_opts *opts, cql_error *err);
int cql_conn_wait(cql_conn *c, int stream, cql_result **out, cql_error *err);

/* REGISTER for events: a NULL-terminated list of "TOPOLOGY_CHANGE", "STATUS_CHANGE",
 * "SCHEMA_CHANGE". Register on one dedicated connection, not on all of them. */
int cql_conn_register(cql_conn *c, const char *const *events, cql_error *err);

/* Next server event: returns 1 with a new `*ev`, 0 when none arrived within `timeout_ms`
 * (0: only those already received), -1 on failure. Events that arrive while waiting for
 * responses are queued and returned here first. */
int cql_conn_next_event(cql_conn *c, int timeout_ms, cql_event **ev, cql_error *err);

/* ------------------------------------------------------------------------------------------ */
/* A cluster                                                                                  */
/* ------------------------------------------------------------------------------------------ */

typedef enum cql_lb_policy {
  CQL_LB_ROUND_ROBIN = 0,
  CQL_LB_DC_AWARE = 1, /* nodes of local_dc first (round-robin), others only when none is up */
} cql_lb_policy;

/* Options to open a cluster. Zeroed fields take the defaults noted. */
typedef struct cql_cluster_options {
  const char *const *contact_points; /* host names/addresses; required, n_contact_points > 0 */
  size_t n_contact_points;
  uint16_t port; /* 0: 9042, for contact points and discovered peers */
  const char *username;
  const char *password;
  const char *keyspace; /* non-NULL: every connection runs USE <keyspace> */
  int tls, tls_verify;
  const char *tls_ca_file;
  cql_lb_policy policy;
  const char *local_dc;                /* for CQL_LB_DC_AWARE; NULL: the first contact point's DC */
  cql_consistency default_consistency; /* 0: ONE */
  int connect_timeout_ms;              /* 0: 5000 */
  int request_timeout_ms;              /* 0: 12000 */
  int schema_agreement_timeout_ms;     /* 0: 10000 */
  int reconnect_base_ms;               /* 0: 1000; a down node is retried after base * 2^failures */
  int reconnect_max_ms;                /* 0: 60000 */
  int discover_peers;                  /* 1: add nodes from system.peers (recommended) */
} cql_cluster_options;

/* A set of nodes, one connection each (opened lazily). Opaque. Life-cycle: cql_cluster_open →
 * requests → cql_cluster_close. */
typedef struct cql_cluster cql_cluster;

/* CONSTRUCTOR. Tries the contact points in order, each within connect_timeout_ms: connects,
 * reads system.local (and, when discover_peers, system.peers) to learn the nodes and their
 * data centres; one that fails at any of these steps is marked down and the next is tried.
 * NULL with CQL_ERR_NO_HOSTS (the message lists each contact point's failure) when none
 * answers. With a keyspace, its replication factor is read too (see cql_cluster_query). */
cql_cluster *cql_cluster_open(const cql_cluster_options *opts, cql_error *err);

/* DESTRUCTOR. Closes every connection and frees cached prepared statements. NULL-safe. */
void cql_cluster_close(cql_cluster *cl);

/* Runs `query` unprepared on the next node of the load-balancing plan, within one deadline:
 * request_timeout_ms (or opts->timeout_ms) bounds the whole call, connecting and re-sending
 * included (CQL_ERR_TIMEOUT when it passes). Open connections closed by their peer mark
 * their node down before anything is sent. A node that cannot be reached is marked down and
 * the next one is tried; a failure mid-request (I/O, timeout) is retried on the next node
 * only when opts->idempotent, and then an attempt gets half the time left while another node
 * remains. When the keyspace's replication factor is known and the consistency (or serial
 * consistency) needs more replicas than nodes are alive, fails at once with
 * CQL_ERR_UNAVAILABLE (err->required, err->alive set). A SCHEMA_CHANGE result waits for
 * schema agreement before returning (a timeout there is not a failure: see
 * cql_cluster_wait_schema_agreement). `*out`: new result, or NULL to discard. */
int cql_cluster_query(cql_cluster *cl, const char *query, const cql_value *values, size_t n_values,
                      const cql_query_opts *opts, cql_result **out, cql_error *err);

/* Runs `query` as a prepared statement: prepared once per node and cached (keyed by the query
 * text); an UNPREPARED answer re-prepares it on that node and retries once, transparently. */
int cql_cluster_execute(cql_cluster *cl, const char *query, const cql_value *values,
                        size_t n_values, const cql_query_opts *opts, cql_result **out,
                        cql_error *err);

/* BATCH on one node; statements with prepare = 1 go through the per-node cache. */
int cql_cluster_batch(cql_cluster *cl, cql_batch_type type, const cql_batch_stmt *stmts, size_t n,
                      const cql_query_opts *opts, cql_result **out, cql_error *err);

/* Waits until every node that is up reports the same schema_version (system.local and
 * system.peers, read on one node), polling every 200 ms up to schema_agreement_timeout_ms.
 * Returns 1 when agreed, 0 when the timeout passed, -1 on failure. */
int cql_cluster_wait_schema_agreement(cql_cluster *cl, cql_error *err);

/* Switches every connection (now and later) to `keyspace`. */
int cql_cluster_set_keyspace(cql_cluster *cl, const char *keyspace, cql_error *err);

/* Nodes known: count, and for each its "address:port" and data centre (borrowed, valid until
 * the next cluster call) and whether it is currently considered up. */
size_t cql_cluster_node_count(const cql_cluster *cl);
const char *cql_cluster_node_host(const cql_cluster *cl, size_t i);
const char *cql_cluster_node_dc(const cql_cluster *cl, size_t i);
int cql_cluster_node_is_up(const cql_cluster *cl, size_t i);

#ifdef __cplusplus
}
#endif

#endif /* KDAO_CQL_H */
