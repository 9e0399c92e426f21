/* search.c - one request against one generation (search.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/search.h"

static const char *const mode_names[] = {"default", "erm", "xs", "xl"};

typedef struct {
    srv_index *g;
    const srv_request *rq;
    pefa_query_params rp; /* resolved */
    pefa_hit *hits;       /* rp.k */
    uint32_t *rows;       /* rp.k, for explain */
    pefa_contrib *ct;
    uint32_t ct_cap, n_ct;
    srv_buf *out;
    char *err;
    size_t errlen;
} answer;

static int fail(answer *a, int status, const char *what)
{
    snprintf(a->err, a->errlen, "%s%s%s", what, *pefa_last_error_detail() ? ": " : "", pefa_last_error_detail());
    return status;
}

static int write_id(answer *a, int which, uint32_t row)
{
    char id[PEFA_MAX_ID_BYTES + 1];
    if (pefa_set_id(a->g->set, which, row, id, sizeof id, NULL)) return fail(a, 500, "id map");
    srv_buf_json_str(a->out, id);
    return 0;
}

/* contributions to every hit of query q, in one kNN search */
static int explain_query(answer *a, const float *q, uint32_t nh)
{
    for (uint32_t h = 0; h < nh; h++) a->rows[h] = a->hits[h].row;
    for (;;) {
        if (pefa_set_explain(a->g->set, q, &a->rq->qp, a->rows, nh, a->ct, a->ct_cap, &a->n_ct))
            return fail(a, 500, "explain");
        if (a->n_ct <= a->ct_cap) return 0;
        free(a->ct);
        a->ct_cap = a->n_ct;
        if (!(a->ct = (pefa_contrib *)malloc((size_t)a->ct_cap * sizeof *a->ct))) {
            snprintf(a->err, a->errlen, "explain: out of memory");
            return 500;
        }
    }
}

static int write_explain(answer *a, uint32_t *e, uint32_t row)
{
    int any = 0;
    srv_buf_put(a->out, ",\"explain\":[");
    for (; *e < a->n_ct && a->ct[*e].passage_row == row; (*e)++, any = 1) {
        const pefa_contrib *c = &a->ct[*e];
        srv_buf_put(a->out, any ? ",{\"training_query\":" : "{\"training_query\":");
        if (write_id(a, PEFA_IDS_QUERIES, c->query_row)) return 500;
        srv_buf_printf(a->out, ",\"row\":%u,\"similarity\":", c->query_row);
        srv_buf_json_float(a->out, c->similarity);
        srv_buf_put(a->out, ",\"y\":");
        srv_buf_json_float(a->out, c->y);
        srv_buf_put(a->out, ",\"contribution\":");
        srv_buf_json_float(a->out, c->contribution);
        srv_buf_put(a->out, "}");
    }
    srv_buf_put(a->out, "]");
    return 0;
}

/* query i refused by the search (a value the index's metric cannot take):
 * a batch of one, so the library's "query 0: " is the request's row */
static int fail_query(answer *a, int rc, uint32_t i)
{
    const char *d = pefa_last_error_detail();
    if (strncmp(d, "query 0: ", 9) == 0) d += 9;
    if (a->rq->batch) snprintf(a->err, a->errlen, "vectors[%u]: %s", i, d);
    else snprintf(a->err, a->errlen, "vector: %s", d);
    return rc == PEFA_ERR_INVALID_ARG ? 400 : 500;
}

/* "hits":[...] of query i */
static int write_query(answer *a, uint32_t i)
{
    const float *q = a->rq->q + (size_t)i * a->g->mi.dim;
    uint32_t nh = 0, e = 0;
    int rc;
    if ((rc = pefa_set_search_batch(a->g->set, q, 1, 0, &a->rq->qp, 1, a->hits, &nh)))
        return fail_query(a, rc, i);
    if (a->rq->explain && (rc = explain_query(a, q, nh))) return rc;
    srv_buf_put(a->out, "\"hits\":[");
    for (uint32_t h = 0; h < nh; h++) {
        srv_buf_put(a->out, h ? ",{\"id\":" : "{\"id\":");
        if (write_id(a, PEFA_IDS_PASSAGES, a->hits[h].row)) return 500;
        srv_buf_printf(a->out, ",\"row\":%u,\"score\":", a->hits[h].row);
        srv_buf_json_float(a->out, a->hits[h].score);
        if (a->rq->explain && write_explain(a, &e, a->hits[h].row)) return 500;
        srv_buf_put(a->out, "}");
    }
    srv_buf_put(a->out, "]");
    return 0;
}

static int write_all(answer *a)
{
    int rc = 0;
    srv_buf_printf(a->out, "{\"index_uuid\":\"%s\",\"mode\":\"%s\",\"k\":%u,", a->g->uuid, mode_names[a->rp.mode],
                   a->rp.k);
    if (!a->rq->batch) {
        rc = write_query(a, 0);
    } else {
        srv_buf_put(a->out, "\"results\":[");
        for (uint32_t i = 0; i < a->rq->n && !rc; i++) {
            srv_buf_put(a->out, i ? ",{" : "{");
            rc = write_query(a, i);
            srv_buf_put(a->out, "}");
        }
        srv_buf_put(a->out, "]");
    }
    srv_buf_put(a->out, "}");
    return rc;
}

int srv_search(srv_index *g, const srv_request *rq, srv_buf *out, int *mode, char *err, size_t errlen)
{
    answer a;
    int rc;
    memset(&a, 0, sizeof a);
    a.g = g, a.rq = rq, a.out = out, a.err = err, a.errlen = errlen;
    a.rp.size = sizeof a.rp;
    *mode = 0;
    /* the parameters are the library's to check (a range, a field the mode
     * does not use, a mode the index cannot serve): the client's error, and
     * the detail already reads "<field>: <problem>" */
    if (pefa_set_query_params_resolve(g->set, &rq->qp, &a.rp)) {
        snprintf(err, errlen, "%s", pefa_last_error_detail());
        return 400;
    }
    *mode = a.rp.mode;
    if (rq->explain && a.rp.mode != PEFA_MODE_XL) {
        snprintf(err, errlen, "explain: works with mode xl (this request resolves to %s)", mode_names[a.rp.mode]);
        return 400;
    }
    a.hits = (pefa_hit *)malloc((size_t)a.rp.k * sizeof *a.hits);
    a.rows = (uint32_t *)malloc((size_t)a.rp.k * sizeof *a.rows);
    if (!a.hits || !a.rows) {
        rc = 500;
        snprintf(err, errlen, "out of memory for %u hits", a.rp.k);
    } else {
        rc = write_all(&a);
    }
    if (!rc && out->oom) rc = 500, snprintf(err, errlen, "out of memory for the answer");
    free(a.hits);
    free(a.rows);
    free(a.ct);
    return rc;
}
