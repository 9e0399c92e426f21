/*
 * tune_eval.c - one training query, held out, under every setting of the
 * tuning grid (tune.h). Exact: the caller gives <q_i, .> with every passage,
 * z vector and training query; the metric needs only the rank of each of
 * i's relevant passages, counted up to TUNE_CUTOFF.
 *
 * Held out means: i's duplicate group G (training queries with cosine >=
 * PEFA_TUNE_DUP_COSINE with q_i, i included) is removed from the model:
 *   XL  G is skipped when choosing the k nearest training queries;
 *   XS  z_j = normalise(S_j - sum_{g in G} Y_gj q_g) for every passage j a
 *       member of G points to, with S_j = |S_j| z_j from the stored
 *       XS_NORMS and z vectors; other passages keep z_j.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "pefa/tune.h"

#define MAX_GROUP 4096u           /* duplicates kept per query (more are still skipped as neighbours) */

typedef struct {
    uint32_t row;
    float score;
} scored;

typedef struct {
    uint32_t j;
    float t;                      /* <q_i, z_j> without G */
} fixup;

struct tune_scratch {
    uint32_t *group, n_group;     /* G */
    scored nbr[TUNE_MAX_K];       /* the k nearest outside G, best first */
    uint32_t n_nbr;
    scored top[TUNE_CANDIDATES];  /* ERM candidates, any order */
    uint32_t n_top;
    uint32_t *stamp, epoch;       /* passages: == epoch when in the kNN part */
    uint32_t *in_top;             /* passages: == epoch when an ERM candidate */
    uint32_t *in_top100;          /* passages: == epoch when in ERM's top 100 (the label check) */
    float *acc;                   /* passages: sum_l <q,q_l> Y_lj over the neighbours so far */
    uint32_t *touched, n_touched, cap_touched;
    scored *cand;                 /* XL candidates of the current k */
    uint32_t cap_cand;
    fixup *fix;                   /* XS: passages G points to */
    uint32_t n_fix, cap_fix;
    float *qi, *row, *vec;        /* dim floats each */
    uint32_t *rel, *rank;         /* i's relevant passages (Y > 0) and their ranks */
    float *gain;
    uint32_t cap_rel, n_rel;
};

tune_scratch *pefa__tune_scratch_new(const pefa_tune_data *d)
{
    tune_scratch *s = (tune_scratch *)calloc(1, sizeof *s);
    if (!s) return NULL;
    s->group = (uint32_t *)malloc(MAX_GROUP * sizeof *s->group);
    s->stamp = (uint32_t *)calloc(d->n_p, sizeof *s->stamp);
    s->in_top = (uint32_t *)calloc(d->n_p, sizeof *s->in_top);
    s->in_top100 = (uint32_t *)calloc(d->n_p, sizeof *s->in_top100);
    s->acc = (float *)calloc(d->n_p, sizeof *s->acc);
    s->qi = (float *)malloc(3 * (size_t)d->dim * sizeof(float));
    if (!s->group || !s->stamp || !s->in_top || !s->in_top100 || !s->acc || !s->qi) {
        pefa__tune_scratch_free(s);
        return NULL;
    }
    s->row = s->qi + d->dim;
    s->vec = s->row + d->dim;
    return s;
}

void pefa__tune_scratch_free(tune_scratch *s)
{
    if (!s) return;
    free(s->group);
    free(s->stamp);
    free(s->in_top);
    free(s->in_top100);
    free(s->acc);
    free(s->touched);
    free(s->cand);
    free(s->fix);
    free(s->qi);
    free(s->rel);
    free(s->rank);
    free(s->gain);
    free(s);
}

static int grow(void **p, uint32_t *cap, uint32_t need, size_t el)
{
    uint32_t nc;
    void *np;
    if (need <= *cap) return 0;
    nc = need < 256 ? 256 : need + need / 2;
    if (!(np = realloc(*p, (size_t)nc * el))) return PEFA_ERR_NOMEM;
    *p = np;
    *cap = nc;
    return 0;
}

/* row r of a stored set as f32 into out */
static const float *row_f32(const pefa_tune_data *d, const void *base, uint32_t r, float *out)
{
    const char *p = (const char *)base + (size_t)r * d->stride;
    if (d->elem == PEFA_TYPE_F32) return (const float *)(const void *)p;
    pefa_f16_to_f32((const uint16_t *)(const void *)p, out, d->dim);
    return out;
}

/* a ranks below b: lower score, or the same score and a larger row */
static int worse(float sa, uint32_t ra, float sb, uint32_t rb)
{
    return sa < sb || (sa == sb && ra > rb);
}

/* keeps the best k of a stream in a min-heap (root = the worst kept) */
static void heap_offer(scored *h, uint32_t *n, uint32_t k, uint32_t row, float score)
{
    uint32_t pos;
    if (*n < k) {
        for (pos = (*n)++; pos > 0 && worse(score, row, h[(pos - 1) / 2].score, h[(pos - 1) / 2].row);
             pos = (pos - 1) / 2)
            h[pos] = h[(pos - 1) / 2];
    } else {
        if (!worse(h[0].score, h[0].row, score, row)) return;
        for (pos = 0;;) {
            uint32_t l = 2 * pos + 1, r = l + 1, w = pos;
            scored cur = {row, score};
            if (l < *n && worse(h[l].score, h[l].row, cur.score, cur.row)) w = l;
            if (r < *n && worse(h[r].score, h[r].row, w == pos ? cur.score : h[w].score, w == pos ? cur.row : h[w].row))
                w = r;
            if (w == pos) break;
            h[pos] = h[w];
            pos = w;
        }
    }
    h[pos].row = row;
    h[pos].score = score;
}

static int scored_desc(const void *a, const void *b)
{
    const scored *x = (const scored *)a, *y = (const scored *)b;
    return worse(y->score, y->row, x->score, x->row) ? -1 : worse(x->score, x->row, y->score, y->row);
}

/* G (u >= the duplicate cosine), its representative, and the TUNE_MAX_K
 * nearest training queries outside G, best first */
static uint32_t neighbours(const pefa_tune_data *d, tune_scratch *s, const float *u)
{
    uint32_t rep = UINT32_MAX;
    s->n_group = s->n_nbr = 0;
    for (uint32_t l = 0; l < d->n_q; l++) {
        if (u[l] >= PEFA_TUNE_DUP_COSINE) {
            if (rep == UINT32_MAX) rep = l;
            if (s->n_group < MAX_GROUP) s->group[s->n_group++] = l;
            continue;
        }
        heap_offer(s->nbr, &s->n_nbr, TUNE_MAX_K, l, u[l]);
    }
    qsort(s->nbr, s->n_nbr, sizeof *s->nbr, scored_desc);
    return rep;
}

/* the ERM candidates of XL: the top TUNE_CANDIDATES passages by <q, p> */
static void erm_candidates(const pefa_tune_data *d, tune_scratch *s, const float *sc)
{
    s->n_top = 0;
    for (uint32_t j = 0; j < d->n_p; j++) heap_offer(s->top, &s->n_top, TUNE_CANDIDATES, j, sc[j]);
    for (uint32_t c = 0; c < s->n_top; c++) s->in_top[s->top[c].row] = s->epoch;
}

/* ---- XS: z without the group --------------------------------------------------- */
static int fix_cmp(const void *a, const void *b)
{
    uint32_t x = ((const fixup *)a)->j, y = ((const fixup *)b)->j;
    return x < y ? -1 : x > y;
}

/* <q_i, normalise(|S_j| z_j - sum_{g in G} Y_gj q_g)> */
static float loo_t(const pefa_tune_data *d, tune_scratch *s, uint32_t j)
{
    const float *z = row_f32(d, d->Z, j, s->row);
    double n2 = 0, dot = 0;
    for (uint32_t c = 0; c < d->dim; c++) s->vec[c] = d->S[j] * z[c];
    for (uint32_t g = 0; g < s->n_group; g++) {
        uint32_t l = s->group[g];
        for (uint64_t e = d->yrp[l]; e < d->yrp[l + 1]; e++) {
            const float *q;
            if (d->ycol[e] != j) continue;
            q = row_f32(d, d->Q, l, s->row);
            for (uint32_t c = 0; c < d->dim; c++) s->vec[c] -= d->yval[e] * q[c];
        }
    }
    for (uint32_t c = 0; c < d->dim; c++) {
        n2 += (double)s->vec[c] * s->vec[c];
        dot += (double)s->qi[c] * s->vec[c];
    }
    /* what is left of S_j after the group is rounding: z_j = 0 */
    if (n2 <= 1e-10 * ((double)d->S[j] * d->S[j] + 1e-30)) return 0.0f;
    return (float)(dot / sqrt(n2));
}

/* s->fix: every passage a group member points to, with its held-out t */
static int xs_fixups(const pefa_tune_data *d, tune_scratch *s)
{
    uint32_t n = 0, w = 0;
    for (uint32_t g = 0; g < s->n_group; g++) {
        uint32_t l = s->group[g];
        for (uint64_t e = d->yrp[l]; e < d->yrp[l + 1]; e++) {
            if (grow((void **)&s->fix, &s->cap_fix, n + 1, sizeof *s->fix)) return PEFA_ERR_NOMEM;
            s->fix[n++].j = d->ycol[e];
        }
    }
    qsort(s->fix, n, sizeof *s->fix, fix_cmp);
    for (uint32_t k = 0; k < n; k++)
        if (w == 0 || s->fix[w - 1].j != s->fix[k].j) s->fix[w++] = s->fix[k];
    for (uint32_t k = 0; k < w; k++) s->fix[k].t = loo_t(d, s, s->fix[k].j);
    s->n_fix = w;
    return 0;
}

/* t of passage j with the group held out */
static float t_of(const tune_scratch *s, const float *t, uint32_t j)
{
    fixup key = {j, 0};
    const fixup *f = s->n_fix ? (const fixup *)bsearch(&key, s->fix, s->n_fix, sizeof *s->fix, fix_cmp) : NULL;
    return f ? f->t : t[j];
}

/* rank (0-based, capped) of passage r under lam s + (1-lam) t over all
 * passages, t held out for the fixed-up ones */
static uint32_t xs_rank(const pefa_tune_data *d, const tune_scratch *s, const float *sc, const float *t, float lam,
                        uint32_t r)
{
    const float mu = 1 - lam, th = lam * sc[r] + mu * t_of(s, t, r);
    uint32_t cap = TUNE_CUTOFF + s->n_fix, cnt = 0;
    for (uint32_t j0 = 0; j0 < d->n_p && cnt < cap; j0 += 1024) {
        uint32_t j1 = d->n_p - j0 < 1024 ? d->n_p : j0 + 1024;
        for (uint32_t j = j0; j < j1; j++) {
            float v = lam * sc[j] + mu * t[j];
            cnt += v > th || (v == th && j < r);
        }
    }
    if (cnt >= cap) return TUNE_CUTOFF;
    for (uint32_t k = 0; k < s->n_fix; k++) { /* replace the stale t of the fixed-up passages (r included) */
        uint32_t j = s->fix[k].j;
        float old = lam * sc[j] + mu * t[j], now = lam * sc[j] + mu * s->fix[k].t;
        cnt -= old > th || (old == th && j < r);
        cnt += now > th || (now == th && j < r);
    }
    return cnt < TUNE_CUTOFF ? cnt : TUNE_CUTOFF;
}

/* ---- metric --------------------------------------------------------------------- */
/* the metric from the capped ranks of i's relevant passages (gains = Y) */
static float metric_of(int metric, const uint32_t *rank, const float *gain, uint32_t n)
{
    double hit = 0, dcg = 0, idcg = 0, g[10];
    uint32_t ng = 0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t cut = metric == PEFA_METRIC_RECALL100 ? 100 : 10;
        if (rank[k] < cut) hit += 1;
        if (rank[k] < 10) dcg += gain[k] / log2(rank[k] + 2.0);
    }
    if (metric != PEFA_METRIC_NDCG10) return (float)(hit / n);
    for (uint32_t k = 0; k < n; k++) { /* the 10 largest gains, descending */
        uint32_t pos = ng < 10 ? ng++ : 10;
        if (pos == 10 && gain[k] <= g[9]) continue;
        if (pos == 10) pos = 9;
        while (pos > 0 && g[pos - 1] < gain[k]) g[pos] = g[pos - 1], pos--;
        g[pos] = gain[k];
    }
    for (uint32_t k = 0; k < ng; k++) idcg += g[k] / log2(k + 2.0);
    return (float)(dcg / idcg);
}

/* ---- XL --------------------------------------------------------------------------- */
/* adds neighbours [from, to) to the kNN accumulator (unnormalised weights) */
static int xl_accumulate(const pefa_tune_data *d, tune_scratch *s, uint32_t from, uint32_t to)
{
    for (uint32_t k = from; k < to; k++) {
        uint32_t l = s->nbr[k].row;
        for (uint64_t e = d->yrp[l]; e < d->yrp[l + 1]; e++) {
            uint32_t j = d->ycol[e];
            if (s->stamp[j] != s->epoch) {
                if (grow((void **)&s->touched, &s->cap_touched, s->n_touched + 1, sizeof *s->touched))
                    return PEFA_ERR_NOMEM;
                s->stamp[j] = s->epoch;
                s->acc[j] = 0;
                s->touched[s->n_touched++] = j;
            }
            s->acc[j] += s->nbr[k].score * d->yval[e];
        }
    }
    return 0;
}

/* the candidates of the current k: ERM candidates, then kNN-only passages */
static int xl_candidates(tune_scratch *s, uint32_t *n)
{
    uint32_t c = 0;
    if (grow((void **)&s->cand, &s->cap_cand, s->n_top + s->n_touched, sizeof *s->cand)) return PEFA_ERR_NOMEM;
    for (uint32_t k = 0; k < s->n_top; k++) s->cand[c++].row = s->top[k].row;
    for (uint32_t k = 0; k < s->n_touched; k++)
        if (s->in_top[s->touched[k]] != s->epoch) s->cand[c++].row = s->touched[k];
    *n = c;
    return 0;
}

/* the metric of every lambda for the current k, into out[TUNE_XL_LAMBDAS] */
static void xl_score_lambdas(tune_scratch *s, const float *sc, float div, uint32_t nc, int metric, uint32_t nrel,
                             float *out)
{
    const uint32_t *rel = s->rel;
    uint32_t *rank = s->rank;
    for (uint32_t a = 0; a < TUNE_XL_LAMBDAS; a++) {
        float lam = (float)a / 10.0f;
        for (uint32_t c = 0; c < nc; c++) {
            uint32_t j = s->cand[c].row;
            s->cand[c].score = lam * sc[j] + (s->stamp[j] == s->epoch ? (1 - lam) * s->acc[j] / div : 0.0f);
        }
        for (uint32_t k = 0; k < nrel; k++) {
            float th = 0;
            int found = 0;
            uint32_t cnt = 0;
            for (uint32_t c = 0; c < nc; c++)
                if (s->cand[c].row == rel[k]) th = s->cand[c].score, found = 1;
            for (uint32_t c = 0; found && c < nc && cnt < TUNE_CUTOFF; c++)
                cnt += s->cand[c].score > th || (s->cand[c].score == th && s->cand[c].row < rel[k]);
            rank[k] = found && cnt < TUNE_CUTOFF ? cnt : TUNE_CUTOFF; /* not a candidate: not retrieved */
        }
        out[a] = metric_of(metric, rank, s->gain, nrel);
    }
}

/* i's relevant passages: its Y row's positive entries (gains = Y) */
static int relevant(const pefa_tune_data *d, tune_scratch *s, uint32_t i, uint32_t *n)
{
    uint64_t len = d->yrp[i + 1] - d->yrp[i];
    uint32_t c1 = s->cap_rel, c2 = s->cap_rel, c3 = s->cap_rel;
    *n = 0;
    if (len > UINT32_MAX || grow((void **)&s->rel, &c1, (uint32_t)len, sizeof *s->rel) ||
        grow((void **)&s->rank, &c2, (uint32_t)len, sizeof *s->rank) ||
        grow((void **)&s->gain, &c3, (uint32_t)len, sizeof *s->gain))
        return PEFA_ERR_NOMEM;
    s->cap_rel = c1 < c2 ? (c1 < c3 ? c1 : c3) : (c2 < c3 ? c2 : c3);
    for (uint64_t e = d->yrp[i]; e < d->yrp[i + 1]; e++)
        if (d->yval[e] > 0) s->rel[*n] = d->ycol[e], s->gain[(*n)++] = d->yval[e];
    return 0;
}

/* ---- one query ---------------------------------------------------------------------- */
int pefa__tune_eval(const pefa_tune_data *d, tune_scratch *s, uint32_t i, int metric, const float *sc, const float *t,
                    const float *u, float *out, uint32_t *group)
{
    static const uint32_t ks[TUNE_XL_KS] = {4, 8, 16, 32, 64};
    uint32_t nrel = 0, done = 0;
    const float *q = row_f32(d, d->Q, i, s->qi);
    if (q != s->qi) memcpy(s->qi, q, d->dim * sizeof(float));
    if (relevant(d, s, i, &nrel)) return PEFA_ERR_NOMEM;
    s->n_rel = nrel;
    if (++s->epoch == 0) { /* stamps wrapped: clear them */
        memset(s->stamp, 0, d->n_p * sizeof *s->stamp);
        memset(s->in_top, 0, d->n_p * sizeof *s->in_top);
        memset(s->in_top100, 0, d->n_p * sizeof *s->in_top100);
        s->epoch = 1;
    }
    *group = neighbours(d, s, u);
    erm_candidates(d, s, sc);
    if (xs_fixups(d, s)) return PEFA_ERR_NOMEM;
    for (uint32_t a = 0; a < TUNE_XS_N; a++) { /* out[0] ERM = XS at lambda 1 */
        float lam = (float)a / 10.0f;
        for (uint32_t k = 0; k < nrel; k++) s->rank[k] = xs_rank(d, s, sc, t, lam, s->rel[k]);
        out[1 + a] = metric_of(metric, s->rank, s->gain, nrel);
    }
    out[0] = out[TUNE_XS_N];
    s->n_touched = 0;
    for (uint32_t kk = 0; kk < TUNE_XL_KS; kk++) {
        uint32_t k = ks[kk] < s->n_nbr ? ks[kk] : s->n_nbr, nc;
        if (xl_accumulate(d, s, done, k) || xl_candidates(s, &nc)) return PEFA_ERR_NOMEM;
        done = k;
        xl_score_lambdas(s, sc, (float)(k ? k : 1), nc, metric, nrel, out + 1 + TUNE_XS_N + kk * TUNE_XL_LAMBDAS);
    }
    return 0;
}

/* ---- the label check ---------------------------------------------------------------- */
/* moves the n best of a[0, m) to its front, in any order (quickselect; the
 * order is total: rows break ties) */
static void select_best(scored *a, uint32_t m, uint32_t n)
{
    uint32_t lo = 0, hi = m;
    while (n < hi && lo < hi) {
        uint32_t st = lo;
        scored piv = a[lo + (hi - lo) / 2], t;
        a[lo + (hi - lo) / 2] = a[hi - 1];
        for (uint32_t k = lo; k < hi - 1; k++)
            if (worse(piv.score, piv.row, a[k].score, a[k].row)) t = a[k], a[k] = a[st], a[st++] = t;
        a[hi - 1] = a[st];
        a[st] = piv; /* [lo, st) beat the pivot, (st, hi) do not */
        if (st == n || st + 1 == n) return;
        if (st < n) lo = st + 1;
        else hi = st;
    }
}

void pefa__tune_label(tune_scratch *s, const double *w, double *own, double *wsum)
{
    uint32_t hit = 0, n = s->n_top < TUNE_CUTOFF ? s->n_top : TUNE_CUTOFF;
    scored top[TUNE_CANDIDATES];
    double sum = 0;
    memcpy(top, s->top, s->n_top * sizeof *top); /* ERM's top 500: its best 100 are ERM's top 100 */
    select_best(top, s->n_top, n);
    for (uint32_t c = 0; c < n; c++) {
        sum += w[top[c].row];
        s->in_top100[top[c].row] = s->epoch;
    }
    for (uint32_t k = 0; k < s->n_rel; k++) hit += s->in_top100[s->rel[k]] == s->epoch;
    *own = s->n_rel ? (double)hit / s->n_rel : 0.0;
    *wsum = sum;
}

/* ---- for the tests: the pieces above, one at a time ------------------------------- */
int pefa__tune_probe(const pefa_tune_data *d, tune_scratch *s, uint32_t i, const float *u, uint32_t j, float *t_loo,
                     uint32_t *nbr, uint32_t *n_nbr)
{
    const float *q = row_f32(d, d->Q, i, s->qi);
    if (q != s->qi) memcpy(s->qi, q, d->dim * sizeof(float));
    (void)neighbours(d, s, u);
    *t_loo = loo_t(d, s, j);
    for (uint32_t k = 0; k < s->n_nbr; k++) nbr[k] = s->nbr[k].row;
    *n_nbr = s->n_nbr;
    return 0;
}
