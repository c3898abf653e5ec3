/*
 * ssl.c — `ssl_certificates` and `ssl_servers_names` of Kong 0.10.4
 * (kong/dao/schemas/ssl_certificates.lua, ssl_servers_names.lua). No checks beyond the
 * field rules: Kong stored PEM texts as given.
 */
#include "factory.h"
#include "schemas/schemas_int.h"

static const kdao_field_def ssl_certificate_fields[] = {
    KDAO__FIELD_ID,
    {.name = "cert", .type = KDAO_TYPE_STRING, .flags = KDAO_FIELD_REQUIRED},
    {.name = "key", .type = KDAO_TYPE_STRING, .flags = KDAO_FIELD_REQUIRED},
    KDAO__FIELD_CREATED_AT,
    {.name = NULL},
};

const kdao_schema_def kdao__schema_ssl_certificates = {
    .version = KDAO_DEF_VERSION,
    .name = "ssl_certificates",
    .table = "ssl_certificates",
    .primary_key = kdao__pk_id,
    .fields = ssl_certificate_fields,
};

static const char *const ssl_servers_names_pk[] = {"name", NULL};

/*
 * Kong typed `name` as "text", a type its validator never checks (only trims strings):
 * KDAO_TYPE_ANY keeps that. Kong's wide-column table keys it by (name, ssl_certificate_id),
 * but the DAO addresses rows by name alone, as Kong's did.
 */
static const kdao_field_def ssl_servers_name_fields[] = {
    {.name = "name", .type = KDAO_TYPE_ANY, .flags = KDAO_FIELD_REQUIRED | KDAO_FIELD_UNIQUE},
    {.name = "ssl_certificate_id", .type = KDAO_TYPE_ID, .foreign = "ssl_certificates:id"},
    KDAO__FIELD_CREATED_AT,
    {.name = NULL},
};

const kdao_schema_def kdao__schema_ssl_servers_names = {
    .version = KDAO_DEF_VERSION,
    .name = "ssl_servers_names",
    .table = "ssl_servers_names",
    .primary_key = ssl_servers_names_pk,
    .fields = ssl_servers_name_fields,
};
