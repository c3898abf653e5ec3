/*
 * serve.h — `kdao serve`: Kong 0.10.4's Admin API over HTTP, on the factory the CLI opened.
 */
#ifndef KDAO_CLI_SERVE_H
#define KDAO_CLI_SERVE_H

#include "kdao.h"

/*
 * Runs `kdao serve [--listen HOST:PORT]` until SIGINT or SIGTERM. argv holds the options,
 * optionally preceded by the command name "serve". `f` is an open factory (connected, migrated) used by the
 * server's one thread only; `cfg` supplies admin_listen and the limits (admin_max_*,
 * admin_timeout). Prints one line on stderr once listening. Returns the process exit code:
 * 0 after a clean stop, 1 when it cannot listen, 2 on a usage error.
 */
int kdao__cli_serve(kdao_factory *f, const kdao_config *cfg, int argc, char **argv);

#endif
