/*
 * serve.c — `kdao serve`: reads the admin settings, starts the HTTP server and waits for
 * SIGINT or SIGTERM to stop it cleanly.
 */
#include "serve.h"

#include <stdio.h>

#ifdef KDAO_HAVE_HTTP

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "http_params.h"
#include "http_server.h"

#define DEFAULT_LISTEN "127.0.0.1:8001"

/* Errors are JSON on stderr like every error of the CLI; usage errors carry the usage. */
static const cli_command *serve_command(void) {
  for (const cli_command *cmd = cli_commands; cmd->name; cmd++)
    if (!strcmp(cmd->name, "serve")) return cmd;
  return NULL;
}

/*
 * A positive integer setting, or `fallback` when unset. kdao's configuration checks the
 * keys it knows; this check also covers a configuration that does not know them yet.
 */
static int setting(const kdao_config *cfg, const char *key, unsigned long fallback,
                   unsigned long min, unsigned long max, unsigned long *out) {
  const char *s = kdao_config_get(cfg, key);
  *out = fallback;
  if (!s || !*s) return 0;
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *end || v < min || v > max || s[0] == '-') {
    char msg[256];
    snprintf(msg, sizeof msg, "%s must be an integer between %lu and %lu, got '%s'", key, min, max,
             s);
    cli_fail(kdao_error_new(KDAO_ERR_CONFIG, msg));
    return -1;
  }
  *out = v;
  return 0;
}

/* The admin_* limits; the option table has checked their ranges already. */
static int read_limits(const kdao_config *cfg, kdao__http_limits *limits) {
  unsigned long conns, per_client, body, header, header_timeout, timeout;
  if (setting(cfg, "admin_max_connections", 256, 1, 65536, &conns) != 0 ||
      setting(cfg, "admin_max_connections_per_client", 32, 1, 65536, &per_client) != 0 ||
      setting(cfg, "admin_max_body", 1024 * 1024, 0, 1024UL * 1024 * 1024, &body) != 0 ||
      setting(cfg, "admin_max_header", 32 * 1024, 4096, 1024 * 1024, &header) != 0 ||
      setting(cfg, "admin_header_timeout", 5, 1, 3600, &header_timeout) != 0 ||
      setting(cfg, "admin_timeout", 30, 1, 3600, &timeout) != 0)
    return -1;
  *limits = (kdao__http_limits){.max_connections = (unsigned)conns,
                                .max_per_client = (unsigned)per_client,
                                .max_body = body,
                                .max_header = header,
                                .header_timeout = (unsigned)header_timeout,
                                .timeout = (unsigned)timeout};
  return 0;
}

/* The command line: --listen HOST:PORT|off, --insecure. */
typedef struct serve_options {
  const char *listen; /* admin_listen, or --listen over it; NULL: the default */
  bool insecure;
  bool help;
} serve_options;

/* Reads the options; -1: a usage error (printed) or help, which o->help tells apart. */
static int parse_options(const kdao_config *cfg, int argc, char **argv, serve_options *o) {
  *o = (serve_options){.listen = kdao_config_get(cfg, "admin_listen")};
  for (int i = argc > 0 && !strcmp(argv[0], "serve") ? 1 : 0; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      o->help = true;
      return -1;
    }
    if (!strcmp(argv[i], "--listen") && i + 1 < argc)
      o->listen = argv[++i];
    else if (!strncmp(argv[i], "--listen=", 9))
      o->listen = argv[i] + 9;
    else if (!strcmp(argv[i], "--insecure"))
      o->insecure = true;
    else {
      cli_usage_error(serve_command(),
                      !strcmp(argv[i], "--listen") ? "%s needs HOST:PORT"
                                                   : "unexpected argument '%s'",
                      argv[i]);
      return -1;
    }
  }
  if (!o->listen || !*o->listen) o->listen = DEFAULT_LISTEN;
  return 0;
}

/* Blocks until SIGINT or SIGTERM arrives; they are blocked in every thread of the server. */
static void wait_for_stop(const sigset_t *stop) {
  int sig;
  while (sigwait(stop, &sig) != 0)
    ;
}

static int fail(int kind, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  cli_fail(kdao_error_new(kind, msg));
  return CLI_DATA;
}

/* A PEM file named by setting `key`, whole, as a string; NULL after reporting why not. */
static char *read_pem(const kdao_config *cfg, const char *key) {
  const char *path = kdao_config_get(cfg, key);
  if (!path) {
    fail(KDAO_ERR_CONFIG, "admin_listen_ssl needs %s (a PEM file)", key);
    return NULL;
  }
  FILE *fp = fopen(path, "re");
  char *text = NULL;
  size_t len = 0;
  /* A certificate chain or a key is a few KiB; the bound only stops a wrong path early. */
  enum { MAX_PEM = 1024 * 1024 };
  if (fp && (text = malloc(MAX_PEM + 1))) len = fread(text, 1, MAX_PEM + 1, fp);
  int e = errno;
  bool ok = fp && text && !ferror(fp) && len <= MAX_PEM;
  if (fp) fclose(fp);
  if (!ok) {
    free(text);
    fail(KDAO_ERR_IO, "cannot read %s '%s': %s", key, path,
         !fp || !text    ? strerror(e)
         : len > MAX_PEM ? "larger than 1 MiB"
                         : "read error");
    return NULL;
  }
  text[len] = '\0';
  return text;
}

/* admin_access_log: off (NULL), stderr, or a file appended to. Sets *bad on failure. */
static FILE *open_access_log(const kdao_config *cfg, bool *bad) {
  const char *v = kdao_config_get(cfg, "admin_access_log");
  *bad = false;
  if (!v || !strcmp(v, "off")) return NULL;
  if (!strcmp(v, "stderr")) return stderr;
  FILE *fp = fopen(v, "ae");
  if (!fp) {
    fail(KDAO_ERR_IO, "cannot open admin_access_log '%s': %s", v, strerror(errno));
    *bad = true;
  }
  return fp;
}

/*
 * An admin API that anyone reaching the address may use to rewrite the gateway's
 * configuration must be asked for: a plain listener off loopback needs admin_auth or
 * --insecure. HTTPS alone is accepted, as the issue that asked for this put it, so that a
 * TLS-terminating deployment can keep authentication in front of kdao.
 */
static int check_exposure(const serve_options *o, const char *host, unsigned port,
                          const kdao__http_auth *auth, bool *exposed) {
  *exposed = false;
  if (!host || auth->kind != KDAO__HTTP_AUTH_NONE || kdao__http_host_is_loopback(host) != 0)
    return 0;
  const char *b = strchr(host, ':') ? "[" : "", *e = strchr(host, ':') ? "]" : "";
  if (o->insecure) {
    *exposed = true;
    return 0;
  }
  return fail(KDAO_ERR_CONFIG,
              "refusing to serve the admin API without credentials on %s%s%s:%u, which is not "
              "a loopback address: set admin_auth (token:<secret> or basic:<user>:<password>), "
              "serve HTTPS only (admin_listen = off, admin_listen_ssl), listen on 127.0.0.1, or "
              "pass --insecure",
              b, host, e, port);
}

static void print_listening(const char *scheme, const char *host, unsigned port) {
  fprintf(stderr, "kdao admin API listening on %s://%s%s%s:%u\n", scheme,
          strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", port);
}

int kdao__cli_serve(kdao_factory *f, const kdao_config *cfg, int argc, char **argv) {
  serve_options o;
  if (parse_options(cfg, argc, argv, &o) != 0)
    return o.help ? cli_help(serve_command()) : CLI_USAGE;
  kdao__http_settings set = {0};
  char *host = NULL, *tls_host = NULL, *cert = NULL, *key = NULL;
  FILE *log = NULL;
  int rc = CLI_DATA;
  bool blocked = false;
  sigset_t stop;
  if (strcmp(o.listen, "off") != 0 && kdao__http_parse_listen(o.listen, &host, &set.port) != 0)
    return cli_usage_error(serve_command(),
                           "invalid listen address '%s' (expected HOST:PORT, [IPv6]:PORT or off)",
                           o.listen);
  set.host = host;
  const char *ssl = kdao_config_get(cfg, "admin_listen_ssl");
  if (ssl && kdao__http_parse_listen(ssl, &tls_host, &set.tls_port) != 0) {
    fail(KDAO_ERR_CONFIG, "admin_listen_ssl must be of the form 'address:port': '%s'", ssl);
    goto cleanup;
  }
  set.tls_host = tls_host;
  if (!host && !tls_host) {
    fail(KDAO_ERR_CONFIG, "nothing to listen on: admin_listen is off and admin_listen_ssl unset");
    goto cleanup;
  }
  if (read_limits(cfg, &set.limits) != 0) {
    rc = CLI_USAGE;
    goto cleanup;
  }
  if (kdao__http_auth_parse(kdao_config_get(cfg, "admin_auth"), &set.auth) != 0) {
    fail(KDAO_ERR_CONFIG, "admin_auth must be 'token:<secret>' or 'basic:<user>:<password>' "
                          "(the value is not shown)");
    goto cleanup;
  }
  bool exposed;
  if (check_exposure(&o, host, set.port, &set.auth, &exposed) != 0) goto cleanup;
  if (tls_host &&
      (!(cert = read_pem(cfg, "admin_ssl_cert")) || !(key = read_pem(cfg, "admin_ssl_cert_key"))))
    goto cleanup;
  set.tls_cert = cert;
  set.tls_key = key;
  bool bad_log;
  set.access_log = log = open_access_log(cfg, &bad_log);
  if (bad_log) goto cleanup;

  /* Block the stop signals before MHD creates its threads, so only sigwait() sees them. */
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  blocked = true;
  signal(SIGPIPE, SIG_IGN);

  kdao__http_api api = {.factory = f, .cfg = cfg};
  kdao__http_server *server = NULL;
  char errbuf[512];
  int kind = kdao__http_server_start(&api, &set, &server, errbuf, sizeof errbuf);
  if (kind != KDAO_OK) {
    cli_fail(kdao_error_new(kind, errbuf));
    goto cleanup;
  }
  if (host) print_listening("http", host, kdao__http_server_port(server, false));
  /* Only once listening: until then stderr holds nothing but a JSON error, if any. */
  if (exposed)
    fprintf(stderr,
            "kdao serve: warning: the plain admin API takes requests from anyone who can reach "
            "it (--insecure without admin_auth)\n");
  if (tls_host) print_listening("https", tls_host, kdao__http_server_port(server, true));
  fflush(stderr);
  wait_for_stop(&stop);
  kdao__http_server_stop(server);
  rc = CLI_OK;
cleanup:
  if (blocked) pthread_sigmask(SIG_UNBLOCK, &stop, NULL);
  if (log && log != stderr) fclose(log);
  if (key) {
    OPENSSL_cleanse(key, strlen(key));
    free(key);
  }
  free(cert);
  free(tls_host);
  free(host);
  return rc;
}

#else /* !KDAO_HAVE_HTTP */

int kdao__cli_serve(kdao_factory *f, const kdao_config *cfg, int argc, char **argv) {
  (void)f, (void)cfg, (void)argc, (void)argv;
  fputs("kdao serve: this kdao was built without libmicrohttpd (install libmicrohttpd-dev "
        "and rebuild)\n",
        stderr);
  return 1;
}

#endif
