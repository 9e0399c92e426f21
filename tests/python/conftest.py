"""Fixtures of the Python binding's tests (ctest python_pytest, label python).

Environment (set by tests/CMakeLists.txt): PYTHONPATH=<build>/python,
PEFA_BIN=<build>/tools, PEFA_SRC=<source>, PEFA_RECOMPRESS=<the recompress helper>.
Run by hand from a build directory:

    PYTHONPATH=build/python PEFA_BIN=build/tools PEFA_SRC=. \\
    PEFA_RECOMPRESS=build/tests/pefa_py_recompress /usr/bin/python3 -m pytest tests/python
"""
import os
import subprocess

import numpy as np
import pytest

SRC = os.environ.get("PEFA_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("PEFA_BIN", os.path.join(SRC, "build", "tools"))
SCIFACT = os.path.join(SRC, "data", "scifact")


def tool(name, *args, **kw):
    """runs a pefa tool; its stdout"""
    return subprocess.run([os.path.join(BIN, name), *map(str, args)], check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, **kw).stdout


def read_lines(path):
    with open(path) as f:
        return [line.rstrip("\n") for line in f]


class SciFact:
    """the demo data set (data/scifact) as arrays and id lists"""

    def __init__(self):
        d = SCIFACT
        self.dir = d
        self.passages = np.load(os.path.join(d, "passages.npy"))
        self.train = np.load(os.path.join(d, "train_queries.npy"))
        self.test = np.load(os.path.join(d, "test_queries.npy"))
        self.passage_ids = read_lines(os.path.join(d, "passage_ids.txt"))
        self.train_ids = read_lines(os.path.join(d, "train_query_ids.txt"))
        self.test_ids = read_lines(os.path.join(d, "test_query_ids.txt"))
        self.qrels = [tuple(line.split("\t")) for line in read_lines(os.path.join(d, "train_qrels.tsv"))[1:]]
        self.qrels = [(q, p, float(s)) for q, p, s in self.qrels]

    def cli_build_args(self):
        d = self.dir
        return ["--passages", os.path.join(d, "passages.npy"), "--passage-ids", os.path.join(d, "passage_ids.txt"),
                "--queries", os.path.join(d, "train_queries.npy"), "--query-ids",
                os.path.join(d, "train_query_ids.txt"), "--qrels", os.path.join(d, "train_qrels.tsv")]


@pytest.fixture(scope="session")
def scifact():
    return SciFact()


@pytest.fixture(scope="session")
def sf_index(tmp_path_factory, scifact):
    """the demo index, built by the CLI with one thread and seed 42"""
    out = tmp_path_factory.mktemp("cli") / "sf.pefa"
    tool("pefa-build", "-q", "-o", out, *scifact.cli_build_args(), "--lambda", "0.5", "--threads", "1",
         "--seed", "42")
    return str(out)


@pytest.fixture(scope="session")
def erm_index(tmp_path_factory):
    """a small plain ERM index (GloVe rows, no training queries, no ids), built by the CLI"""
    out = tmp_path_factory.mktemp("erm") / "erm.pefa"
    base = os.path.join(SRC, "tests", "data", "glove-5k-base.npy")
    tool("pefa-build", "-q", "-o", out, "--passages", base, "--threads", "1", "-M", "16", "--ef-construction", "100")
    return str(out)


class ShardSet:
    """SciFact built by the CLI twice from the same inputs: whole (full) and as 3 shards
    (pefa-build --shard I/3) tied by a manifest (pefa-shardset), all in one directory"""

    def __init__(self, d, scifact):
        self.dir = str(d)
        self.full = str(d / "full.pefa")
        self.shards = [str(d / ("s%d.pefa" % i)) for i in range(3)]
        self.manifest = str(d / "set.pefaset")
        tool("pefa-build", "-q", "-o", self.full, *scifact.cli_build_args(), "--threads", "1")
        for i, out in enumerate(self.shards):
            tool("pefa-build", "-q", "-o", out, *scifact.cli_build_args(), "--threads", "1", "--shard", "%d/3" % i)
        tool("pefa-shardset", "-o", self.manifest, self.shards[2], self.shards[0], self.shards[1])

    def files(self):
        """every file of the set and of the full index (with the id maps)"""
        return sorted(os.path.join(self.dir, f) for f in os.listdir(self.dir))


@pytest.fixture(scope="session")
def sf_set(tmp_path_factory, scifact):
    return ShardSet(tmp_path_factory.mktemp("set"), scifact)


@pytest.fixture()
def ix(sf_index):
    import pefa
    with pefa.Index(sf_index) as i:
        yield i
