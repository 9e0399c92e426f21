/*
 * tune.h - internal: leave-one-out tuning (pefa.h section 4b).
 *
 * tune.c drives it (sampling, threads, bootstrap, choice); tune_eval.c
 * scores one held-out training query under every setting of the grid.
 */
#ifndef PEFA_TUNE_H
#define PEFA_TUNE_H

#include <stddef.h>
#include <stdint.h>

#include "pefa.h"

/* What tuning reads: the stored rows (so the build and pefa_tune on its file
 * see the same numbers) and Y as CSR. */
typedef struct {
    uint32_t n_p, n_q, dim;
    int elem;                     /* PEFA_TYPE_F32 / F16 rows */
    size_t stride;                /* bytes per P, Q and Z row */
    const void *P, *Q, *Z;
    const float *S;               /* |S_j| */
    const uint64_t *yrp;          /* Y: n_q + 1 offsets */
    const uint32_t *ycol;
    const float *yval;
} pefa_tune_data;

/* the grid: ERM, XS lambda 0..1, XL lambda 0..0.9 x k */
#define TUNE_XS_N 11
#define TUNE_XL_LAMBDAS 10
#define TUNE_XL_KS 5
#define TUNE_GRID (1 + TUNE_XS_N + TUNE_XL_LAMBDAS * TUNE_XL_KS)
#define TUNE_MAX_K 64u
#define TUNE_CANDIDATES 500u      /* XL's ERM candidates (the query-time default) */
#define TUNE_BOOTSTRAP 1000u
#define TUNE_CUTOFF 100u          /* ranks are counted up to here (recall@100) */

/* the setting at grid position g */
void pefa__tune_setting(uint32_t g, pefa_tune_setting *out);

/* per-thread scratch of tune_eval.c */
typedef struct tune_scratch tune_scratch;
tune_scratch *pefa__tune_scratch_new(const pefa_tune_data *d);
void pefa__tune_scratch_free(tune_scratch *s);

/* Scores training query i held out: s, t, u are <q_i, p_j>, <q_i, z_j> and
 * <q_i, q_l> for every row. Writes the metric of every grid setting into
 * out[TUNE_GRID] and i's duplicate-group representative (the smallest row
 * with cosine >= PEFA_TUNE_DUP_COSINE, i itself included) into *group. */
int pefa__tune_eval(const pefa_tune_data *d, tune_scratch *sc, uint32_t i, int metric, const float *s, const float *t,
                    const float *u, float *out, uint32_t *group);

/* The label check's figures of training query i, right after
 * pefa__tune_eval(i) on the same scratch: own = ERM recall@100 of i's own
 * relevant passages, wsum = sum over i's ERM top 100 of w[j] (w[j] = sum over
 * the tuning queries l with Y_lj > 0 of 1 / |l's relevant passages|), so that
 * i's mean recall on the other tuning queries' labels is (wsum - own) / (N - 1). */
void pefa__tune_label(tune_scratch *s, const double *w, double *own, double *wsum);

/* for the tests: i held out, <q_i, z_j> with z_j recomputed without i's
 * group (into *t_loo), and i's nearest training queries outside its group
 * (TUNE_MAX_K at most, best first) */
int pefa__tune_probe(const pefa_tune_data *d, tune_scratch *s, uint32_t i, const float *u, uint32_t j, float *t_loo,
                     uint32_t *nbr, uint32_t *n_nbr);

/* runs the whole tuning; p is resolved (n_queries, metric, seed set) */
int pefa__tune_run(const pefa_tune_data *d, const pefa_tune_params *p, pefa_tune_report **out);

#endif
