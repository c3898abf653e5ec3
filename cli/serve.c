/*
 * serve.c — `kdao serve`: reads the admin settings, starts the HTTP server and waits for
 * SIGINT or SIGTERM to stop it cleanly.
 */
#include "serve.h"

#include <stdio.h>

#ifdef KDAO_HAVE_HTTP

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
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

/*
 * The listen address: --listen, else admin_listen, else 127.0.0.1:8001. NULL: usage error
 * (printed) or help, which *help tells apart.
 */
static const char *listen_option(const kdao_config *cfg, int argc, char **argv, bool *help) {
  const char *listen = kdao_config_get(cfg, "admin_listen");
  *help = false;
  for (int i = argc > 0 && !strcmp(argv[0], "serve") ? 1 : 0; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      *help = true;
      return NULL;
    }
    if (!strcmp(argv[i], "--listen") && i + 1 < argc)
      listen = argv[++i];
    else if (!strncmp(argv[i], "--listen=", 9))
      listen = argv[i] + 9;
    else {
      cli_usage_error(serve_command(),
                      !strcmp(argv[i], "--listen") ? "%s needs HOST:PORT"
                                                   : "unexpected argument '%s'",
                      argv[i]);
      return NULL;
    }
  }
  return listen && *listen ? listen : DEFAULT_LISTEN;
}

/* Blocks until SIGINT or SIGTERM arrives; they are blocked in every thread of the server. */
static void wait_for_stop(const sigset_t *stop) {
  int sig;
  while (sigwait(stop, &sig) != 0)
    ;
}

int kdao__cli_serve(kdao_factory *f, const kdao_config *cfg, int argc, char **argv) {
  bool help;
  const char *listen = listen_option(cfg, argc, argv, &help);
  if (!listen) return help ? cli_help(serve_command()) : CLI_USAGE;
  char *host = NULL;
  unsigned port = 0;
  if (kdao__http_parse_listen(listen, &host, &port) != 0)
    return cli_usage_error(
        serve_command(), "invalid listen address '%s' (expected HOST:PORT or [IPv6]:PORT)", listen);
  kdao__http_limits limits;
  if (read_limits(cfg, &limits) != 0) {
    free(host);
    return CLI_USAGE;
  }
  /* Block the stop signals before MHD creates its thread, so only sigwait() sees them. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  signal(SIGPIPE, SIG_IGN);

  kdao__http_api api = {.factory = f, .cfg = cfg};
  kdao__http_server *server = NULL;
  char errbuf[256];
  int rc = 1;
  int kind = kdao__http_server_start(&api, host, port, &limits, &server, errbuf, sizeof errbuf);
  if (kind != KDAO_OK) {
    cli_fail(kdao_error_new(kind, errbuf));
    goto cleanup;
  }
  fprintf(stderr, "kdao admin API listening on http://%s%s%s:%u\n", strchr(host, ':') ? "[" : "",
          host, strchr(host, ':') ? "]" : "", kdao__http_server_port(server));
  fflush(stderr);
  wait_for_stop(&stop);
  kdao__http_server_stop(server);
  rc = 0;
cleanup:
  pthread_sigmask(SIG_UNBLOCK, &stop, NULL);
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
