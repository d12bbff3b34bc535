/* server.h — the HTTP/1.1 JSON API over one engine (request.c parses, conn.c
 * does the connections, on libevent event loops).
 * N worker threads each run their own event base and accept from one shared
 * listening socket. Writes are handed to the engine's writer thread and
 * answered from the worker's loop when durable; the worker never blocks on
 * disk. server_run() blocks until server_stop() (async-signal-safe). */
#ifndef RECD_HTTP_SERVER_H
#define RECD_HTTP_SERVER_H

#include "engine/engine.h"

typedef struct http_server http_server;

/* Bind cfg->listen. The engine must outlive the server. */
int http_server_new(recd_engine *e, http_server **out, char *err, size_t errlen);
/* the bound port (useful with port 0) */
int http_server_port(const http_server *s);
int http_server_run(http_server *s);
void http_server_stop(http_server *s);   /* async-signal-safe */
void http_server_free(http_server *s);

#endif
