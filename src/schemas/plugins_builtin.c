/*
 * plugins_builtin.c — the plugins kdao registers by default, as Kong 0.10.4 bundled them:
 * key-auth, basic-auth and acl (kong/plugins/<name>/{schema,daos}.lua): their config
 * schemas and their credential entities. Their migrations ship with each backend
 * (src/migrations/<backend>.c); the factory adds the active backend's when it registers them.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "factory.h"
#include "schemas/schemas_int.h"

/* Fields of every credential entity: Kong's plugin daos mark id/created_at not required. */
#define CREDENTIAL_ID \
  { .name = "id", .type = KDAO_TYPE_ID, .flags = KDAO_FIELD_INSERT_VALUE }
#define CREDENTIAL_CREATED_AT                               \
  {                                                         \
    .name = "created_at", .type = KDAO_TYPE_TIMESTAMP,      \
    .flags = KDAO_FIELD_IMMUTABLE | KDAO_FIELD_INSERT_VALUE \
  }
#define CREDENTIAL_CONSUMER_ID                                                 \
  {                                                                            \
    .name = "consumer_id", .type = KDAO_TYPE_ID, .flags = KDAO_FIELD_REQUIRED, \
    .foreign = "consumers:id"                                                  \
  }

/* config.anonymous of the auth plugins: the consumer to fall back to, by id, or none. */
static int auth_check_anonymous(kdao_dao *dao, const char *field, json_t *value, json_t *entity,
                                json_t **new_fields, char **message, void *ud) {
  (void)dao, (void)field, (void)entity, (void)new_fields, (void)ud;
  const char *s = kdao__plain_string(value);
  if (s && (s[0] == '\0' || kdao_is_uuid(s))) return 0;
  return kdao__reject(message, "the anonymous user must be empty or a valid uuid");
}

/* ---- key-auth ---- */

/* utils.validate_header_name: what nginx accepts as a header name. */
static bool keyauth_header_name_ok(const char *name, size_t len) {
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

/*
 * One key name: a string, or a number (Lua concatenates and ngx.re matches it as its text);
 * anything else made Kong raise, and is refused as a bad name here.
 */
static int keyauth_check_key_name(const json_t *elem, char **message) {
  char *text = kdao__value_text(elem);
  if (!text) return kdao__reject(message, "out of memory");
  int rc = 0;
  bool named = json_is_string(elem) || json_is_number(elem);
  const char *name = json_is_string(elem) ? json_string_value(elem) : text;
  size_t len = json_is_string(elem) ? json_string_length(elem) : strlen(text);
  if (!elem || json_is_null(elem) || (named && len == 0))
    rc = kdao__reject(message, "'%s' is illegal: no header name provided", text);
  else if (!named || !keyauth_header_name_ok(name, len))
    rc = kdao__reject(message,
                      "'%s' is illegal: bad header name '%s', allowed characters are "
                      "A-Z, a-z, 0-9, '_', and '-'",
                      text, text);
  kdao__free(text);
  return rc;
}

static int keyauth_check_key_names(kdao_dao *dao, const char *field, json_t *value, json_t *entity,
                                   json_t **new_fields, char **message, void *ud) {
  (void)dao, (void)field, (void)entity, (void)new_fields, (void)ud;
  size_t n = kdao__seq_size(value);
  for (size_t i = 0; i < n; i++) {
    int rc = keyauth_check_key_name(kdao__seq_get(value, i), message);
    if (rc) return rc;
  }
  return 0;
}

/* A random key: a v4 UUID without its dashes (Kong's utils.random_string). */
static json_t *keyauth_random_key(json_t *entity, void *ud) {
  (void)entity, (void)ud;
  char uuid[37], key[33];
  kdao__uuid_v4(uuid);
  size_t n = 0;
  for (const char *p = uuid; *p; p++) {
    if (*p != '-') key[n++] = *p;
  }
  key[n] = '\0';
  return json_string(key);
}

static const kdao_field_def keyauth_config_fields[] = {
    {.name = "key_names",
     .type = KDAO_TYPE_ARRAY,
     .flags = KDAO_FIELD_REQUIRED,
     .default_json = "[\"apikey\"]",
     .func = keyauth_check_key_names},
    {.name = "hide_credentials", .type = KDAO_TYPE_BOOLEAN, .default_json = "false"},
    {.name = "anonymous",
     .type = KDAO_TYPE_STRING,
     .default_json = "\"\"",
     .func = auth_check_anonymous},
    {.name = "key_in_body", .type = KDAO_TYPE_BOOLEAN, .default_json = "false"},
    {.name = NULL},
};

static const kdao_schema_def keyauth_config = {
    .version = KDAO_DEF_VERSION,
    .fields = keyauth_config_fields,
    .flags = KDAO_SCHEMA_NO_CONSUMER,
};

static const kdao_field_def keyauth_credential_fields[] = {
    CREDENTIAL_ID,
    CREDENTIAL_CREATED_AT,
    CREDENTIAL_CONSUMER_ID,
    {.name = "key",
     .type = KDAO_TYPE_STRING,
     .flags = KDAO_FIELD_UNIQUE,
     .default_fn = keyauth_random_key},
    {.name = NULL},
};

static const kdao_schema_def keyauth_credentials = {
    .version = KDAO_DEF_VERSION,
    .name = "keyauth_credentials",
    .table = "keyauth_credentials",
    .primary_key = kdao__pk_id,
    .fields = keyauth_credential_fields,
};

static const kdao_schema_def *const keyauth_entities[] = {&keyauth_credentials, NULL};

const kdao_plugin_def kdao__plugin_key_auth = {
    .version = KDAO_DEF_VERSION,
    .name = "key-auth",
    .config = &keyauth_config,
    .entities = keyauth_entities,
};

/* ---- basic-auth ---- */

/* Hex SHA-1 of `text` into out[41]; false when OpenSSL fails. */
static bool basicauth_sha1_hex(const char *text, char out[41]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
    return false;
  static const char hex[] = "0123456789abcdef";
  for (unsigned i = 0; i < mdlen; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 0xf];
  }
  out[40] = '\0';
  return true;
}

/* The stored credential with the entity's id, or NULL (new reference). */
static json_t *basicauth_stored(kdao_dao *dao, const json_t *entity) {
  json_t *id = json_object_get(entity, "id");
  if (!dao || !json_is_string(id)) return NULL;
  json_t *pk = json_pack("{sO}", "id", id);
  json_t *row = NULL;
  if (pk && kdao_dao_find(dao, pk, &row, NULL) != KDAO_OK) row = NULL;
  json_decref(pk);
  return row;
}

/*
 * Kong stores sha1(password .. consumer_id) in hex, and Lua prints an absent value as "nil":
 * a credential saved without a password holds sha1("nil" .. consumer_id), the very digest
 * Kong's basic-auth compares against — kept for compatibility with stored rows.
 */
static char *basicauth_digest(const json_t *password, const json_t *consumer_id) {
  char *pw = kdao__value_text(password);
  char *salt = kdao__value_text(consumer_id);
  char *salted = pw && salt ? kdao__asprintf("%s%s", pw, salt) : NULL;
  char *digest = salted ? kdao__malloc(41) : NULL;
  if (digest && !basicauth_sha1_hex(salted, digest)) {
    kdao__free(digest);
    digest = NULL;
  }
  kdao__free(pw);
  kdao__free(salt);
  kdao__free(salted);
  return digest;
}

/*
 * The password func: hash the given password, unless the stored row with the same id
 * already holds exactly this value (re-saving a credential must not hash its digest again).
 * A partial update without consumer_id salts with the stored row's consumer_id (Kong salted
 * with "nil" there, leaving a credential nobody could authenticate with).
 */
static int basicauth_hash_password(kdao_dao *dao, const char *field, json_t *value, json_t *entity,
                                   json_t **new_fields, char **message, void *ud) {
  (void)ud;
  json_t *stored = basicauth_stored(dao, entity);
  json_t *stored_password = stored ? json_object_get(stored, "password") : NULL;
  bool both_nil = (!value || json_is_null(value)) && !stored_password;
  if (stored && (both_nil || (value && stored_password && json_equal(value, stored_password)))) {
    json_decref(stored);
    return 0;
  }
  const json_t *consumer_id = json_object_get(entity, "consumer_id");
  if ((!consumer_id || json_is_null(consumer_id)) && stored)
    consumer_id = json_object_get(stored, "consumer_id");
  char *digest = basicauth_digest(value, consumer_id);
  json_decref(stored);
  json_t *fields = digest ? json_pack("{ss}", field, digest) : NULL;
  kdao__free(digest);
  if (!fields) return kdao__reject(message, "out of memory");
  *new_fields = fields;
  return 0;
}

static const kdao_field_def basicauth_config_fields[] = {
    {.name = "anonymous",
     .type = KDAO_TYPE_STRING,
     .default_json = "\"\"",
     .func = auth_check_anonymous},
    {.name = "hide_credentials", .type = KDAO_TYPE_BOOLEAN, .default_json = "false"},
    {.name = NULL},
};

static const kdao_schema_def basicauth_config = {
    .version = KDAO_DEF_VERSION,
    .fields = basicauth_config_fields,
    .flags = KDAO_SCHEMA_NO_CONSUMER,
};

static const kdao_field_def basicauth_credential_fields[] = {
    CREDENTIAL_ID,
    CREDENTIAL_CREATED_AT,
    CREDENTIAL_CONSUMER_ID,
    {.name = "username",
     .type = KDAO_TYPE_STRING,
     .flags = KDAO_FIELD_REQUIRED | KDAO_FIELD_UNIQUE},
    {.name = "password", .type = KDAO_TYPE_STRING, .func = basicauth_hash_password},
    {.name = NULL},
};

static const kdao_schema_def basicauth_credentials = {
    .version = KDAO_DEF_VERSION,
    .name = "basicauth_credentials",
    .table = "basicauth_credentials",
    .primary_key = kdao__pk_id,
    .fields = basicauth_credential_fields,
};

static const kdao_schema_def *const basicauth_entities[] = {&basicauth_credentials, NULL};

const kdao_plugin_def kdao__plugin_basic_auth = {
    .version = KDAO_DEF_VERSION,
    .name = "basic-auth",
    .config = &basicauth_config,
    .entities = basicauth_entities,
};

/* ---- acl ---- */

static bool acl_nonempty(const json_t *v) {
  return (json_is_array(v) && json_array_size(v) > 0) ||
         (json_is_object(v) && json_object_size(v) > 0);
}

/* Exactly one of the lists: a consumer is either let in by group or kept out by group. */
static kdao_error *acl_config_self_check(kdao_dao *dao, const kdao_schema *schema, json_t *config,
                                         kdao_mode mode, void *ud) {
  (void)dao, (void)schema, (void)mode, (void)ud;
  bool white = acl_nonempty(json_object_get(config, "whitelist"));
  bool black = acl_nonempty(json_object_get(config, "blacklist"));
  if (white && black) return kdao__schema_error("You cannot set both a whitelist and a blacklist");
  if (!white && !black) return kdao__schema_error("You must set at least a whitelist or blacklist");
  return NULL;
}

/*
 * A consumer belongs to a group once. Like Kong, the check needs a DAO, and a lookup
 * failure (e.g. a consumer_id that is no UUID, reported by its own rule) lets it pass.
 */
static int acl_check_group(kdao_dao *dao, const char *field, json_t *value, json_t *entity,
                           json_t **new_fields, char **message, void *ud) {
  (void)new_fields, (void)ud;
  json_t *consumer_id = json_object_get(entity, "consumer_id");
  if (!dao || !consumer_id || json_is_null(consumer_id) || !value || json_is_null(value)) return 0;
  json_t *filter = json_pack("{sOsO}", "consumer_id", consumer_id, field, value);
  json_t *rows = NULL;
  int found =
      filter && kdao_dao_find_all(dao, filter, &rows, NULL) == KDAO_OK && json_array_size(rows) > 0;
  json_decref(rows);
  json_decref(filter);
  if (found) return kdao__reject(message, "ACL group already exist for this consumer");
  return 0;
}

static const kdao_field_def acl_config_fields[] = {
    {.name = "whitelist", .type = KDAO_TYPE_ARRAY},
    {.name = "blacklist", .type = KDAO_TYPE_ARRAY},
    {.name = NULL},
};

static const kdao_schema_def acl_config = {
    .version = KDAO_DEF_VERSION,
    .fields = acl_config_fields,
    .flags = KDAO_SCHEMA_NO_CONSUMER,
    .self_check = acl_config_self_check,
};

static const kdao_field_def acl_fields[] = {
    CREDENTIAL_ID,
    /* Not immutable in Kong's acls schema, unlike the other credentials. */
    {.name = "created_at", .type = KDAO_TYPE_TIMESTAMP, .flags = KDAO_FIELD_INSERT_VALUE},
    CREDENTIAL_CONSUMER_ID,
    {.name = "group",
     .type = KDAO_TYPE_STRING,
     .flags = KDAO_FIELD_REQUIRED,
     .func = acl_check_group},
    {.name = NULL},
};

const kdao_schema_def kdao__schema_acls = {
    .version = KDAO_DEF_VERSION,
    .name = "acls",
    .table = "acls",
    .primary_key = kdao__pk_id,
    .fields = acl_fields,
};

static const kdao_schema_def *const acl_entities[] = {&kdao__schema_acls, NULL};

const kdao_plugin_def kdao__plugin_acl = {
    .version = KDAO_DEF_VERSION,
    .name = "acl",
    .config = &acl_config,
    .entities = acl_entities,
};
