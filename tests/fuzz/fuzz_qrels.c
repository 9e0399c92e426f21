/* fuzz_qrels.c - libFuzzer target: BEIR qrels TSV parsing. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    tin_qrels q;
    if (tin_qrels_parse(data, size, "fuzz.tsv", &q, err, sizeof err) != 0) {
        if (err[0] == '\0' || q.rows || q.buf)
            abort();
        return 0;
    }
    uint64_t prev = 0;
    for (uint64_t i = 0; i < q.n; i++) {
        const tin_qrel *r = &q.rows[i];
        if (!r->qid[0] || !r->pid[0] || !isfinite(r->score) || r->line <= prev)
            abort();
        if (strchr(r->qid, '\t') || strchr(r->pid, '\t') || strchr(r->pid, '\n'))
            abort();
        prev = r->line;
    }
    tin_qrels_free(&q);
    return 0;
}
