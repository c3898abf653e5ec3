/*
 * serve.h — `kdao serve`: Kong 0.10.4's Admin API over HTTP, on the factory the CLI opened.
 */
#ifndef KDAO_CLI_SERVE_H
#define KDAO_CLI_SERVE_H

#include "kdao.h"

/*
 * Runs `kdao serve [--listen HOST:PORT|off] [--insecure]` until SIGINT or SIGTERM. argv
 * holds the options, optionally preceded by the command name "serve". `f` is an open
 * factory (connected, migrated); `cfg` supplies the listeners (admin_listen,
 * admin_listen_ssl and its certificate), admin_auth, admin_access_log and the limits
 * (admin_max_*, admin_*timeout). A plain listener off loopback without admin_auth is refused
 * unless --insecure. Prints one line per listener on stderr once listening. Returns the
 * process exit code: 0 after a clean stop, 1 when it cannot or will not listen, 2 on a usage
 * error.
 */
int kdao__cli_serve(kdao_factory *f, const kdao_config *cfg, int argc, char **argv);

#endif
