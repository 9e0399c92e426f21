/*
 * search.h - pefa-serve: answers a parsed request from one index generation
 * as JSON (prefix srv_):
 *   {"index_uuid":"…","mode":"xl","k":10,"hits":[{"id":"…","row":12,"score":0.83},…]}
 * or, for "vectors", "results":[{"hits":[…]},…] in place of "hits". With
 * "explain", each hit carries "explain":[{"training_query":"…","row":3,
 * "similarity":…,"y":…,"contribution":…},…] as pefa-query --explain --format
 * jsonl writes it.
 */
#ifndef PEFA_SERVE_SEARCH_H
#define PEFA_SERVE_SEARCH_H

#include <stddef.h>

#include "serve/buf.h"
#include "serve/index.h"
#include "serve/request.h"

/* Returns the HTTP status: 200 with the answer in out; 400 (parameters the
 * index cannot serve, e.g. XL without training queries: the library's
 * detail) or 500 with one line in err. *mode gets the resolved PEFA_MODE_*
 * (0 when resolution failed). */
int srv_search(srv_index *g, const srv_request *rq, srv_buf *out, int *mode, char *err, size_t errlen);

#endif
