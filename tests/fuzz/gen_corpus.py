#!/usr/bin/env python3
"""Writes the hand-made seed corpora in tests/fuzz/corpus/ (no numpy needed).

Run from anywhere: python3 tests/fuzz/gen_corpus.py. Files found by fuzzing
are added next to these under their libFuzzer hash names.
"""
import math
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def npy(d, data, major=1):
    pre = 10 if major == 1 else 12
    h = d.encode() + b"\n"
    while (pre + len(h)) % 64:
        h = h[:-1] + b" \n"
    if major == 1:
        head = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h))
    else:
        head = b"\x93NUMPY" + bytes([major, 0]) + struct.pack("<I", len(h))
    return head + h + data


def f32(*v):
    return struct.pack("<%df" % len(v), *v)


def f16(*v):
    return struct.pack("<%de" % len(v), *v)


def d(descr, shape, fortran=False):
    return "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)


def fvecs(rows):
    return b"".join(struct.pack("<i", len(r)) + f32(*r) for r in rows)


def write(target, name, data):
    p = os.path.join(HERE, "corpus", target)
    os.makedirs(p, exist_ok=True)
    with open(os.path.join(p, name), "wb") as f:
        f.write(data)


v12 = [float(i) for i in range(12)]
N = {
    "f32_3x4": npy(d("<f4", "(3, 4)"), f32(*v12)),
    "f16_3x4": npy(d("<f2", "(3, 4)"), f16(*v12)),
    "f32_v2": npy(d("<f4", "(2, 6)"), f32(*v12), 2),
    "f32_v3": npy(d("<f4", "(6, 2)"), f32(*v12), 3),
    "keys_reordered": npy("{\"shape\":(4,3,),\"fortran_order\":False,\"descr\":\"<f4\"}", f32(*v12)),
    "fortran": npy(d("<f4", "(3, 4)", True), f32(*v12)),
    "fortran_1row": npy(d("<f4", "(1, 12)", True), f32(*v12)),
    "one_d": npy(d("<f4", "(12,)"), f32(*v12)),
    "three_d": npy(d("<f4", "(2, 3, 2)"), f32(*v12)),
    "f8": npy(d("<f8", "(3, 2)"), struct.pack("<6d", *v12[:6])),
    "big_endian": npy(d(">f4", "(3, 4)"), struct.pack(">12f", *v12)),
    "int32": npy(d("<i4", "(3, 4)"), struct.pack("<12i", *range(12))),
    "structured": npy("{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (6,), }",
                      f32(*v12)),
    "truncated": npy(d("<f4", "(3, 4)"), f32(*v12))[:-5],
    "trailing": npy(d("<f4", "(3, 4)"), f32(*v12)) + b"\0\0\0\0",
    "overflow": npy(d("<f4", "(4611686018427387904, 4)"), f32(*v12)),
    "nan_inf": npy(d("<f4", "(3, 4)"), f32(1, 2, math.nan, 3, 4, math.inf, 5, 6, 7, 8, 9, -math.inf)),
    "f16_nan_inf": npy(d("<f2", "(2, 2)"), struct.pack("<4H", 0x3c00, 0x7c00, 0x7e00, 0x0001)),
    "zero_rows": npy(d("<f4", "(0, 4)"), b""),
    "fvecs_good": fvecs([v12[0:4], v12[4:8], v12[8:12]]),
    "fvecs_dim_mismatch": fvecs([v12[0:4], v12[4:9]]),
    "fvecs_partial": fvecs([v12[0:4], v12[4:8]])[:-3],
}
for k, v in N.items():
    write("npy", k, v)

I = {
    "plain": b"doc1\ndoc2\ndoc3\n",
    "crlf_nofinal": b"\xef\xbb\xbfa\r\nb  \r\nc",
    "dup": b"a\nb\nc\na\n",
    "empty_line": b"a\n\nb\n",
    "nul": b"a\nb\0c\n",
    "tab": b"a\tb\nc\n",
    "long": b"x" * 600 + b"\n",
    "many": b"".join(b"id%d\n" % i for i in range(300)),
}
for k, v in I.items():
    write("idlist", k, v)

Q = {
    "beir": b"query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t2\nq2\td3\t0\n",
    "noheader_2col": b"q1\td1\nq2\td2\n",
    "crlf_blank": b"q1\td1\t1\r\n\r\n  \r\nq2\td2\t0.5\r\nq3\td3",
    "bad_score": b"q1\td1\t1\nq2\td2\tx\n",
    "nan_score": b"q1\td1\tnan\n",
    "inf_score": b"q1\td1\t1e39\n",
    "one_field": b"q1 d1 1\n",
    "trec": b"q1\t0\td1\t1\n",
    "header_only": b"query-id\tcorpus-id\tscore\n",
    "other_header": b"qid\tdocid\trel\nq\td\t1\n",
    "empty_ids": b"\td\t1\nq\t\t1\n",
    "nul": b"q1\td\0\t1\n",
}
for k, v in Q.items():
    write("qrels", k, v)
