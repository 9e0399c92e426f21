/*
 * fuzz_request.c - pefa-serve's request parser (tools/serve/request.c) and
 * its JSON string writer (tools/serve/buf.c), without HTTP.
 *
 * Input: byte 0 picks the index dimension (1..8), the rest is a POST /search
 * body. A parsed request must respect the limits and hold only finite
 * floats; a refusal must leave a message. Then the body, as a C string, goes
 * through srv_buf_json_str, whose output must be one valid JSON string.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "serve/buf.h"
#include "serve/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_request(const uint8_t *data, size_t size)
{
    srv_limits lim = {4, 100};
    srv_request rq;
    char err[256];
    uint32_t dim = 1 + data[0] % 8;
    err[0] = 0;
    if (srv_request_parse(data + 1, size - 1, dim, &lim, &rq, err, sizeof err) != 0) {
        if (!err[0] || rq.q) abort();
        return;
    }
    if (rq.n < 1 || rq.n > lim.max_batch || rq.qp.k > lim.max_k || (!rq.batch && rq.n != 1)) abort();
    for (size_t i = 0; i < (size_t)rq.n * dim; i++)
        if (!isfinite(rq.q[i])) abort();
    srv_request_free(&rq);
}

static void check_string_writer(const uint8_t *data, size_t size)
{
    char *s = (char *)malloc(size + 1);
    srv_buf b = {0};
    size_t len;
    char *out;
    json_t *j;
    if (!s) return;
    memcpy(s, data, size);
    s[size] = 0;
    srv_buf_json_str(&b, s);
    out = srv_buf_take(&b, &len);
    if (!out) abort();
    j = json_loadb(out, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!j || !json_is_string(j)) abort();
    /* valid UTF-8 comes back unchanged */
    if (json_string_length(j) == strlen(s) && memcmp(json_string_value(j), s, strlen(s)) != 0) abort();
    json_decref(j);
    free(out);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    check_request(data, size);
    check_string_writer(data, size);
    return 0;
}
