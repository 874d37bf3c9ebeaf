// flowpic-bench: throughput of each stage of the FlowPic path, each beside a peer measured
// in the same process run. Prints a table (and --json FILE). Every figure is the median of
// --runs repetitions; "cpu" is this thread's CPU time over wall time (below ~0.95 the run was
// preempted: the machine was not quiet). bench/run.sh runs all subcommands with fixed arguments.
#include <CLI/CLI.hpp>
#include <malloc.h>
#include <nlohmann/json.hpp>
#include <omp.h>
#include <pcap/pcap.h>
// DPDK 22.11's headers use ++ on volatile members, deprecated in C++20: not ours to fix.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wvolatile"
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <xxhash.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#pragma GCC diagnostic pop
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "dataplane/eal_cleanup.hpp"
#include "common/flow_key.hpp"
#include "flowtable/flow_table.hpp"
#include "infer/model.hpp"
#include "infer/network.hpp"
#include "packet/parse.hpp"
#include "packet/pcap_reader.hpp"
#include "picbuilder/batch.hpp"
#include "picbuilder/flowpic.hpp"
#include "tools/dataset.hpp"

namespace fs = std::filesystem;
using namespace flowpic;

namespace {

// ---------------------------------------------------------------- measurement plumbing

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
// Process CPU time: with one pinned core, the share of wall time this run really had the CPU.
double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}
std::string affinity() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return "?";
  std::string s;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) {
      if (!s.empty()) s += ',';
      s += std::to_string(c);
    }
  return s;
}
int first_allowed_cpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) return c;
  return 0;
}

// One timed repetition: `work` items done in `wall` seconds, `cpu` seconds of CPU.
struct Sample {
  double work = 0, wall = 0, cpu = 0;
};

struct Figure {
  std::string bench, name, unit, note;
  double scale = 1;            // value = work / wall / scale
  std::vector<double> values;  // per run
  std::vector<double> cpu_share;
  double median() const {
    auto v = values;
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
  }
  double min() const { return values.empty() ? 0 : *std::min_element(values.begin(), values.end()); }
  double max() const { return values.empty() ? 0 : *std::max_element(values.begin(), values.end()); }
  double cpu_median() const {
    auto v = cpu_share;
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
  }
  // Value per CPU-second instead of per wall-second: what the run would give had it kept its
  // core (an upper bound when other processes also share caches and memory bandwidth).
  double per_cpu_median() const {
    std::vector<double> v;
    for (size_t i = 0; i < values.size(); ++i) v.push_back(cpu_share[i] > 0 ? values[i] / cpu_share[i] : 0);
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
  }
};

struct Report {
  std::vector<Figure> figures;
  nlohmann::json extra = nlohmann::json::object();  // non-rate facts (memory, counts)
  int runs = 3;

  // Runs `fn` `runs` times; each returns a Sample; value = work / wall / scale.
  Figure& measure(const std::string& bench, const std::string& name, const std::string& unit, double scale,
                  const std::function<Sample()>& fn, const std::string& note = {}) {
    Figure f{bench, name, unit, note, scale, {}, {}};
    for (int r = 0; r < runs; ++r) {
      const Sample s = fn();
      f.values.push_back(s.wall > 0 ? s.work / s.wall / scale : 0);
      f.cpu_share.push_back(s.wall > 0 ? s.cpu / s.wall : 0);
    }
    figures.push_back(std::move(f));
    const Figure& g = figures.back();
    std::printf("  %-58s %10.3f %-14s (min %.3f max %.3f, cpu %.2f, per cpu-s %.3f)\n",
                (g.bench + " " + g.name).c_str(), g.median(), g.unit.c_str(), g.min(), g.max(), g.cpu_median(),
                g.per_cpu_median());
    std::fflush(stdout);
    return figures.back();
  }
  void fact(const std::string& key, const nlohmann::json& v, const std::string& text) {
    extra[key] = v;
    std::printf("  %-58s %s\n", key.c_str(), text.c_str());
    std::fflush(stdout);
  }
  void print_table() const {
    std::printf("\n%-10s %-52s %10s %-14s %10s %10s %5s %10s\n", "bench", "figure (median of runs, per wall-s)", "median",
                "unit", "min", "max", "cpu", "per cpu-s");
    for (const auto& f : figures)
      std::printf("%-10s %-52s %10.3f %-14s %10.3f %10.3f %5.2f %10.3f%s%s\n", f.bench.c_str(), f.name.c_str(),
                  f.median(), f.unit.c_str(), f.min(), f.max(), f.cpu_median(), f.per_cpu_median(),
                  f.note.empty() ? "" : "  # ", f.note.c_str());
  }
  nlohmann::json to_json() const {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& f : figures)
      j.push_back({{"bench", f.bench}, {"name", f.name}, {"unit", f.unit}, {"median", f.median()}, {"min", f.min()},
                   {"max", f.max()}, {"values", f.values}, {"cpu_share", f.cpu_share},
                   {"per_cpu_median", f.per_cpu_median()}, {"note", f.note}});
    return j;
  }
};

// Keeps the optimiser from discarding a result.
volatile uint64_t g_sink = 0;

// Runs argv, waits, returns wall seconds and the child's CPU seconds; exit status in *status.
// stdout/stderr go to `out_path` (or /dev/null).
Sample run_child(const std::vector<std::string>& argv, int* status, const std::string& out_path = "/dev/null") {
  std::vector<char*> a;
  for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  const double t0 = now_s();
  const pid_t pid = fork();
  if (pid == 0) {
    FILE* o = std::fopen(out_path.c_str(), "w");
    if (o) {
      dup2(fileno(o), 1);
      dup2(fileno(o), 2);
    }
    execvp(a[0], a.data());
    _exit(127);
  }
  rusage ru{};
  int st = 0;
  wait4(pid, &st, 0, &ru);
  Sample s;
  s.wall = now_s() - t0;
  s.cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
          static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
  *status = st;
  return s;
}
bool have_program(const std::string& name) {
  int st = 0;
  run_child({"sh", "-c", "command -v " + name}, &st);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

// ---------------------------------------------------------------- flowtable

struct FlowtableArgs {
  uint32_t flows = 1000000;
  uint64_t packets = 50000000;
  uint64_t sequence = 4000000;  // packets materialised (whole rounds of all flows), replayed
  std::string window = "count:20";
  uint32_t sweep = 0;           // expire() budget per burst (0 = no sweep)
  uint32_t trace_ns = 1000;     // trace-clock step per packet (1 Mpps of trace time)
  bool no_dpdk = false;
  bool no_peers = false;
};

struct PeerFlowState {  // what the peers keep per flow: the counters a flow table must keep at least
  uint64_t packets, bytes, last_ns;
};

// The packet stream: whole rounds, each a random permutation of all flows (every flow active
// in every round), keys and hashes materialised so the stream is read sequentially.
struct Stream {
  std::vector<FlowKey> keys;
  std::vector<uint64_t> hashes;
  std::vector<uint32_t> lens;
};

FlowKey synth_key(uint32_t i, std::mt19937_64& rng) {
  FlowKey k{};
  k.family = 4;
  k.proto = (rng() & 3) ? 6 : 17;
  // Source address carries i (unique keys); the rest is random.
  k.src[0] = static_cast<uint8_t>(10 + (i >> 24));
  k.src[1] = static_cast<uint8_t>(i >> 16);
  k.src[2] = static_cast<uint8_t>(i >> 8);
  k.src[3] = static_cast<uint8_t>(i);
  const uint64_t r = rng();
  std::memcpy(k.dst, &r, 4);
  k.sport = static_cast<uint16_t>(r >> 32);
  k.dport = static_cast<uint16_t>(r >> 48);
  return k;
}

struct CountingSink {
  uint64_t windows = 0, records = 0;
  static bool take(void* ctx, const WindowInfo& info, const PacketRecord* recs, uint32_t n) {
    auto* s = static_cast<CountingSink*>(ctx);
    ++s->windows;
    s->records += n + (n ? recs[n - 1].size : 0) + info.packets;  // touch what a ring copy would read
    return true;
  }
};

// ---------------------------------------------------------------- hashflood

// Hash flooding (issue 16): N flows whose keys were crafted so that XXH3 with seed 0 (an unseeded
// table) gives them all the same low `bits` bits, replayed like the flowtable bench. Peers in the
// same run: N random keys, and the crafted keys in a table hashed with seed 0 (the attack's goal).
struct HashfloodArgs {
  uint32_t flows = 30000;
  unsigned bits = 12;
  uint64_t packets = 6000000;
};

void bench_hashflood(Report& rep, const HashfloodArgs& a) {
  std::printf("hashflood: %u flows, keys crafted to share the low %u bits of XXH3(seed 0), %llu packets, cpus %s, load %s\n",
              a.flows, a.bits, static_cast<unsigned long long>(a.packets), affinity().c_str(), loadavg().c_str());
  std::mt19937_64 rng(20261201);
  std::vector<FlowKey> random_keys(a.flows), crafted;
  for (uint32_t i = 0; i < a.flows; ++i) random_keys[i] = synth_key(i, rng);
  const uint64_t mask = (uint64_t{1} << a.bits) - 1;
  const double c0 = now_s();
  for (uint32_t i = 0; crafted.size() < a.flows; ++i) {
    const FlowKey k = synth_key(i, rng);
    if ((XXH3_64bits_withSeed(&k, sizeof k, 0) & mask) == 0) crafted.push_back(k);
  }
  std::printf("  crafted %u keys in %.1f s (one in %llu random keys qualifies)\n", a.flows, now_s() - c0,
              static_cast<unsigned long long>(mask + 1));
  FlowTableConfig cfg;
  cfg.capacity = a.flows;
  cfg.window.kind = WindowPolicy::Kind::kCount;
  cfg.window.packets = 20;
  cfg.window.min_packets = 10;
  const uint64_t secret = flow_hash_seed();
  auto run = [&](const std::string& name, const std::vector<FlowKey>& pop, uint64_t seed) {
    set_flow_hash_seed(seed);
    // Rounds of every flow in a random order, hashed with the table's seed.
    std::vector<FlowKey> keys;
    std::vector<uint64_t> hashes;
    std::vector<uint32_t> lens;
    std::vector<uint32_t> perm(pop.size());
    std::iota(perm.begin(), perm.end(), 0u);
    std::mt19937_64 r2(7);
    while (keys.size() < 4 * pop.size()) {
      std::shuffle(perm.begin(), perm.end(), r2);
      for (uint32_t i : perm) {
        keys.push_back(pop[i]);
        hashes.push_back(flow_hash(pop[i]));
        lens.push_back(40 + static_cast<uint32_t>(r2() % 1460));
      }
    }
    const uint64_t S = keys.size() / 32 * 32;
    uint64_t long_probes = 0;
    rep.measure("hashflood", name, "Mpps/core", 1e6, [&] {
      FlowTable t(cfg, nullptr, nullptr);
      TimeNs times[32];
      uint64_t idx = 0;
      const double t0 = now_s(), cpu0 = thread_cpu_s();
      for (uint64_t done = 0; done < a.packets; done += 32, idx += 32) {
        const uint64_t pos = idx % S;
        for (uint32_t i = 0; i < 32; ++i) times[i] = 1'000'000'000'000ull + (idx + i) * 1000;
        t.on_burst(&keys[pos], &hashes[pos], &lens[pos], times, 32, nullptr);
      }
      long_probes = t.counters().long_probes;
      return Sample{static_cast<double>(a.packets), now_s() - t0, thread_cpu_s() - cpu0};
    });
    rep.fact("hashflood long_probes: " + name, long_probes, std::to_string(long_probes) + " index probes longer than 32");
  };
  run("random keys, secret seed", random_keys, secret);
  run("crafted keys, secret seed (flowpicd)", crafted, secret);
  run("crafted keys, seed 0 (an unseeded table)", crafted, 0);
  set_flow_hash_seed(secret);
  const auto& f = rep.figures;
  const size_t n = f.size();
  std::printf("  crafted/random, secret seed: %.3f; seed 0: %.5f (per cpu-s: %.3f, %.5f)\n", f[n - 2].median() / f[n - 3].median(),
              f[n - 1].median() / f[n - 3].median(), f[n - 2].per_cpu_median() / f[n - 3].per_cpu_median(),
              f[n - 1].per_cpu_median() / f[n - 3].per_cpu_median());
}

bool eal_up = false;
bool init_eal() {
  const std::string prefix = "flowpic-bench-" + std::to_string(getpid());
  const std::string lcore = std::to_string(first_allowed_cpu());
  std::vector<std::string> args = {"flowpic-bench", "--no-huge", "-m", "2048", "--no-pci", "--no-shconf",
                                   "--file-prefix", prefix, "-l", lcore, "--log-level=error", "--no-telemetry"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  const int rc = rte_eal_init(static_cast<int>(argv.size()), argv.data());
  if (rc < 0) {
    std::printf("  EAL init failed (%s): rte_hash peer skipped\n", rte_strerror(rte_errno));
    return false;
  }
  eal_up = true;
  return true;
}

void bench_flowtable(Report& rep, const FlowtableArgs& a) {
  std::printf("flowtable: %u flows, %llu packets, window %s, bursts of 32, sweep %u, cpus %s, load %s\n", a.flows,
              static_cast<unsigned long long>(a.packets), a.window.c_str(), a.sweep, affinity().c_str(),
              loadavg().c_str());
  FlowTableConfig cfg;
  cfg.capacity = a.flows;
  std::string why;
  if (!parse_window_spec(a.window, cfg.window, &why)) throw CLI::ValidationError("--window", why);
  cfg.window.min_packets = std::min<uint32_t>(10, cfg.window.packets);
  const std::string err = cfg.validate();
  if (!err.empty()) throw CLI::ValidationError("flow table", err);

  // Stream: whole rounds of all flows.
  const uint64_t rounds = std::max<uint64_t>(1, a.sequence / a.flows);
  const uint64_t S = (rounds * a.flows) / 32 * 32;
  std::mt19937_64 rng(20240601);
  std::vector<FlowKey> pop(a.flows);
  for (uint32_t i = 0; i < a.flows; ++i) pop[i] = synth_key(i, rng);
  Stream st;
  st.keys.resize(S);
  st.hashes.resize(S);
  st.lens.resize(S);
  {
    std::vector<uint32_t> perm(a.flows);
    std::iota(perm.begin(), perm.end(), 0u);
    std::uniform_int_distribution<uint32_t> len(40, 1500);
    for (uint64_t r = 0, p = 0; r < rounds; ++r) {
      std::shuffle(perm.begin(), perm.end(), rng);
      for (uint32_t i = 0; i < a.flows && p < S; ++i, ++p) {
        st.keys[p] = pop[perm[i]];
        st.hashes[p] = flow_hash(pop[perm[i]]);
        st.lens[p] = len(rng);
      }
    }
  }
  std::printf("  stream: %llu packets materialised (%llu rounds of every flow), replayed in order\n",
              static_cast<unsigned long long>(S), static_cast<unsigned long long>(rounds));
  const uint64_t P = a.packets / 32 * 32;

  // Drives `burst(pos, n, first_packet_index)` over P packets after one untimed warm-up round.
  auto drive = [&](const std::function<void(uint64_t, uint32_t, uint64_t)>& burst, uint64_t count, uint64_t base) {
    for (uint64_t done = 0; done < count; done += 32) burst((base + done) % S, 32, base + done);
  };
  const uint64_t warm = (a.flows + 31) / 32 * 32;

  // FlowTable, hashes given (as when the NIC's or the parser's hash is reused) and computed here.
  for (int with_hash = 0; with_hash < 2; ++with_hash) {
    rep.measure("flowtable", with_hash ? "FlowTable flow_hash + on_burst(32)" : "FlowTable on_burst(32), hash given",
                "Mpps/core", 1e6, [&] {
                  CountingSink sink;
                  FlowTable t(cfg, &CountingSink::take, &sink);
                  TimeNs times[32];
                  uint64_t hashes[32];
                  uint32_t slots[32];
                  auto burst = [&](uint64_t pos, uint32_t n, uint64_t idx) {
                    for (uint32_t i = 0; i < n; ++i) times[i] = 1'000'000'000'000ull + (idx + i) * a.trace_ns;
                    const uint64_t* h = &st.hashes[pos];
                    if (with_hash) {
                      for (uint32_t i = 0; i < n; ++i) hashes[i] = flow_hash(st.keys[pos + i]);
                      h = hashes;
                    }
                    t.on_burst(&st.keys[pos], h, &st.lens[pos], times, n, slots);
                    if (a.sweep) t.expire(times[n - 1], a.sweep);
                  };
                  drive(burst, warm, 0);
                  const double c0 = thread_cpu_s(), t0 = now_s();
                  drive(burst, P, warm);
                  Sample s{static_cast<double>(P), now_s() - t0, thread_cpu_s() - c0};
                  if (!with_hash) {
                    const auto& c = t.counters();
                    rep.extra["flowtable_counters"] = {{"packets", c.packets}, {"flows_created", c.flows_created},
                                                       {"windows_emitted", c.windows_emitted},
                                                       {"flows_rejected_full", c.flows_rejected_full},
                                                       {"size", t.size()}};
                    rep.extra["flowtable_memory_bytes"] = t.memory_bytes();
                  }
                  g_sink = g_sink + sink.records;
                  return s;
                });
  }
  {
    FlowTable t(cfg, nullptr, nullptr);
    const double per = static_cast<double>(t.memory_bytes()) / t.capacity();
    rep.fact("flowtable bytes/flow", per,
             std::to_string(t.memory_bytes()) + " B / " + std::to_string(t.capacity()) + " flows = " +
                 std::to_string(static_cast<int>(std::lround(per))) + " B per flow (memory_bytes()/capacity)");
    const auto& c = rep.extra["flowtable_counters"];
    rep.fact("flowtable counters (last run)", c, c.dump());
  }

  // rte_hash: bulk lookup of the burst, add on miss, per-flow counters in an array by position.
  if (!a.no_peers && !a.no_dpdk && (eal_up || init_eal())) {
    rte_hash_parameters hp{};
    hp.name = "flowpic_bench";
    hp.entries = a.flows * 2;  // like FlowTable's index: load <= 1/2
    hp.key_len = sizeof(FlowKey);
    hp.hash_func = rte_hash_crc;
    hp.hash_func_init_val = 0;
    hp.socket_id = static_cast<int>(rte_socket_id());
    rte_malloc_socket_stats before{}, after{};
    rte_malloc_get_socket_stats(hp.socket_id, &before);
    rte_hash* h = rte_hash_create(&hp);
    if (!h) {
      std::printf("  rte_hash_create failed (%s): peer skipped\n", rte_strerror(rte_errno));
    } else {
      rte_malloc_get_socket_stats(hp.socket_id, &after);
      std::vector<PeerFlowState> state(hp.entries + 1);
      uint64_t add_fail = 0;
      rep.measure("flowtable", "peer: rte_hash_lookup_bulk(32) + add on miss", "Mpps/core", 1e6, [&] {
        rte_hash_reset(h);
        std::fill(state.begin(), state.end(), PeerFlowState{});
        const void* kp[32];
        int32_t positions[32];
        auto burst = [&](uint64_t pos, uint32_t n, uint64_t idx) {
          for (uint32_t i = 0; i < n; ++i) kp[i] = &st.keys[pos + i];
          rte_hash_lookup_bulk(h, kp, n, positions);
          for (uint32_t i = 0; i < n; ++i) {
            int32_t p = positions[i];
            if (p < 0) p = rte_hash_add_key(h, kp[i]);
            if (p < 0) {
              ++add_fail;
              continue;
            }
            PeerFlowState& s = state[static_cast<uint32_t>(p)];
            ++s.packets;
            s.bytes += st.lens[pos + i];
            s.last_ns = idx + i;
          }
        };
        drive(burst, warm, 0);
        const double c0 = thread_cpu_s(), t0 = now_s();
        drive(burst, P, warm);
        return Sample{static_cast<double>(P), now_s() - t0, thread_cpu_s() - c0};
      });
      const double bytes = static_cast<double>(after.heap_allocsz_bytes - before.heap_allocsz_bytes) +
                           static_cast<double>(state.size() * sizeof(PeerFlowState));
      rep.fact("peer rte_hash bytes/flow", bytes / a.flows,
               std::to_string(static_cast<int>(std::lround(bytes / a.flows))) +
                   " B per flow (rte_malloc'd table for 2x entries + 24 B state array; adds failed: " +
                   std::to_string(add_fail) + ")");
      rte_hash_free(h);
    }
  }

  // std::unordered_map baseline, same work as the rte_hash peer.
  if (!a.no_peers) {
    struct Hasher {
      size_t operator()(const FlowKey& k) const noexcept { return flow_hash(k); }
    };
    double bytes = 0;
    rep.measure("flowtable", "peer: std::unordered_map find/emplace", "Mpps/core", 1e6, [&] {
      const auto m0 = mallinfo2();
      std::unordered_map<FlowKey, PeerFlowState, Hasher> m;
      m.reserve(a.flows);
      auto burst = [&](uint64_t pos, uint32_t n, uint64_t idx) {
        for (uint32_t i = 0; i < n; ++i) {
          PeerFlowState& s = m.try_emplace(st.keys[pos + i], PeerFlowState{}).first->second;
          ++s.packets;
          s.bytes += st.lens[pos + i];
          s.last_ns = idx + i;
        }
      };
      drive(burst, warm, 0);
      const auto m1 = mallinfo2();
      bytes = static_cast<double>((m1.uordblks + m1.hblkhd) - (m0.uordblks + m0.hblkhd));
      const double c0 = thread_cpu_s(), t0 = now_s();
      drive(burst, P, warm);
      return Sample{static_cast<double>(P), now_s() - t0, thread_cpu_s() - c0};
    });
    rep.fact("peer unordered_map bytes/flow", bytes / a.flows,
             std::to_string(static_cast<int>(std::lround(bytes / a.flows))) + " B per flow (malloc'd, mallinfo2)");
  }
  std::printf("  load after: %s\n", loadavg().c_str());
}

// ---------------------------------------------------------------- parse

struct ParseArgs {
  std::vector<std::string> pcaps;
  std::string dir = "/work/shared/data/ndpi/pcap";
  int repeat = 20;
  bool external = true;
};

std::vector<std::string> captures_in(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const auto ext = e.path().extension().string();
    if (e.is_regular_file() && (ext == ".pcap" || ext == ".pcapng" || ext == ".cap")) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t read_all(const std::vector<std::string>& files) {  // into the page cache
  uint64_t bytes = 0;
  std::vector<char> buf(1 << 20);
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0)
      bytes += static_cast<uint64_t>(in.gcount());
  }
  return bytes;
}

// Ours: PcapReader + parse_packet, as `flowpic dataset` reads.
Sample ours_parse(const std::vector<std::string>& files, int repeat, ParseCounters* pc) {
  uint64_t n = 0, x = 0;
  const double c0 = thread_cpu_s(), t0 = now_s();
  for (int r = 0; r < repeat; ++r)
    for (const auto& f : files) {
      try {
        PcapReader rd(f);
        const LinkType lt = rd.link_type();
        RawPacket pkt{};
        ParsedPacket pp;
        while (rd.next(pkt)) {
          const ParseResult res = parse_packet(pkt.data, pkt.caplen, lt, pp);
          if (pc) pc->add(res);
          x += pp.ip_len + pp.key.sport;
          ++n;
        }
      } catch (const std::exception&) {
        // unreadable captures are skipped, as flowpic dataset does
      }
    }
  g_sink = g_sink + x;
  return Sample{static_cast<double>(n), now_s() - t0, thread_cpu_s() - c0};
}

// The floor: libpcap's pcap_next_ex alone.
Sample libpcap_floor(const std::vector<std::string>& files, int repeat) {
  uint64_t n = 0, x = 0;
  char errbuf[PCAP_ERRBUF_SIZE];
  const double c0 = thread_cpu_s(), t0 = now_s();
  for (int r = 0; r < repeat; ++r)
    for (const auto& f : files) {
      pcap_t* p = pcap_open_offline(f.c_str(), errbuf);
      if (!p) continue;
      pcap_pkthdr* hdr;
      const u_char* data;
      while (pcap_next_ex(p, &hdr, &data) == 1) {
        x += hdr->caplen;
        ++n;
      }
      pcap_close(p);
    }
  g_sink = g_sink + x;
  return Sample{static_cast<double>(n), now_s() - t0, thread_cpu_s() - c0};
}

// One Ethernet capture with the packets of every Ethernet capture in `files`, so external
// tools (one process per file otherwise) are timed on the same packets without start-up costs.
std::string merge_ethernet(const std::vector<std::string>& files, const std::string& out, uint64_t* packets) {
  char errbuf[PCAP_ERRBUF_SIZE];
  pcap_t* dead = pcap_open_dead(DLT_EN10MB, 262144);
  pcap_dumper_t* d = pcap_dump_open(dead, out.c_str());
  if (!d) {
    pcap_close(dead);
    return {};
  }
  *packets = 0;
  for (const auto& f : files) {
    pcap_t* p = pcap_open_offline(f.c_str(), errbuf);
    if (!p) continue;
    if (pcap_datalink(p) == DLT_EN10MB) {
      pcap_pkthdr* hdr;
      const u_char* data;
      while (pcap_next_ex(p, &hdr, &data) == 1) {
        pcap_dump(reinterpret_cast<u_char*>(d), hdr, data);
        ++*packets;
      }
    }
    pcap_close(p);
  }
  pcap_dump_close(d);
  pcap_close(dead);
  return out;
}

void bench_parse(Report& rep, const ParseArgs& a) {
  std::vector<std::string> files = a.pcaps.empty() ? captures_in(a.dir) : a.pcaps;
  if (files.empty()) {
    std::printf("parse: no captures (give --pcap FILE or --dir DIR)\n");
    return;
  }
  const uint64_t bytes = read_all(files);
  std::printf("parse: %zu captures, %.1f MB (in the page cache), repeat %d, cpus %s, load %s\n", files.size(),
              static_cast<double>(bytes) / 1e6, a.repeat, affinity().c_str(), loadavg().c_str());
  ParseCounters pc;
  ours_parse(files, 1, &pc);
  rep.fact("parse packets per pass", pc.total(),
           std::to_string(pc.total()) + " packets, " + std::to_string(pc.get(ParseResult::kOk) + pc.get(ParseResult::kOkFragment)) +
               " with a flow key");
  rep.measure("parse", "PcapReader + parse_packet, all captures", "Mpps/core", 1e6,
              [&] { return ours_parse(files, a.repeat, nullptr); });
  rep.measure("parse", "peer: libpcap pcap_next_ex only, all captures", "Mpps/core", 1e6,
              [&] { return libpcap_floor(files, a.repeat); });

  uint64_t merged_packets = 0;
  const std::string merged =
      merge_ethernet(files, "/tmp/flowpic-bench-merged-" + std::to_string(getpid()) + ".pcap", &merged_packets);
  if (merged.empty()) return;
  const std::vector<std::string> one = {merged};
  read_all(one);
  rep.fact("merged Ethernet capture", merged_packets,
           std::to_string(merged_packets) + " packets of the Ethernet captures in one file (" + merged + ")");
  rep.measure("parse", "PcapReader + parse_packet, merged file", "Mpps/core", 1e6,
              [&] { return ours_parse(one, a.repeat, nullptr); });
  rep.measure("parse", "peer: libpcap pcap_next_ex only, merged file", "Mpps/core", 1e6,
              [&] { return libpcap_floor(one, a.repeat); });
  if (a.external) {
    auto external = [&](const std::string& label, const std::vector<std::string>& argv) {
      rep.measure("parse", label, "Mpps/core", 1e6, [&] {
        int status = 0;
        Sample s = run_child(argv, &status);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) std::printf("  (%s exited with %d)\n", argv[0].c_str(), status);
        s.work = static_cast<double>(merged_packets);
        return s;
      }, "whole process, one run over the merged file");
    };
    if (have_program("tcpdump"))
      external("peer: tcpdump -r merged -w /dev/null", {"tcpdump", "-r", merged, "-w", "/dev/null"});
    else
      std::printf("  tcpdump not installed: peer skipped\n");
    if (have_program("ndpiReader"))
      external("peer: ndpiReader -q -i merged (full DPI)", {"ndpiReader", "-q", "-i", merged});
    else
      std::printf("  ndpiReader not installed (apt-get install libndpi-bin): peer skipped\n");
  }
  std::remove(merged.c_str());
  std::printf("  load after: %s\n", loadavg().c_str());
}

// ---------------------------------------------------------------- picture

struct PictureArgs {
  uint32_t resolution = 32;
  std::string time_axis = "log";
  uint32_t windows = 200000;
  uint32_t big_records = 1000;  // records per window in the 1500x1500 case (15 s time windows)
};

struct SynthWindows {
  std::vector<WindowInfo> infos;
  std::vector<std::vector<PacketRecord>> recs;
  std::vector<WindowRef> refs;
};

SynthWindows synth_windows(uint32_t count, uint32_t records, bool time_window, uint64_t seed) {
  SynthWindows s;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<uint32_t> size(40, 1500);
  std::exponential_distribution<double> gap(time_window ? records / 15.0 : 50.0);  // per second
  s.infos.resize(count);
  s.recs.resize(count);
  for (uint32_t w = 0; w < count; ++w) {
    double t = 0;
    auto& r = s.recs[w];
    r.resize(records);
    for (uint32_t i = 0; i < records; ++i) {
      if (i) t += gap(rng);
      if (time_window) t = std::min(t, 14.999);
      r[i] = {static_cast<uint32_t>(t * 1e6), static_cast<uint16_t>(size(rng)), 1};
    }
    WindowInfo& in = s.infos[w];
    in.start_ns = in.first_ns = 1'000'000'000ull;
    in.last_ns = in.first_ns + r.back().t_us * 1000ull;
    in.end_ns = time_window ? in.start_ns + 15 * kNsPerSec : in.last_ns;
    in.packets = in.n_records = records;
  }
  for (uint32_t w = 0; w < count; ++w) s.refs.push_back({&s.infos[w], s.recs[w].data(), records});
  return s;
}

void bench_picture(Report& rep, const PictureArgs& a) {
  std::printf("picture: R=%u axis %s, cpus %s, load %s\n", a.resolution, a.time_axis.c_str(), affinity().c_str(),
              loadavg().c_str());
  PictureConfig cfg;
  cfg.resolution = a.resolution;
  if (!time_axis_from_name(a.time_axis, cfg.time_axis)) throw CLI::ValidationError("--time-axis", "span|fixed|log");
  cfg.window.kind = WindowPolicy::Kind::kCount;
  cfg.window.packets = 20;
  const SynthWindows s = synth_windows(a.windows, 20, false, 7);
  const size_t px = picture_floats(cfg);
  std::vector<float> out(px * 64);
  const std::string tag = "R=" + std::to_string(a.resolution) + " 20 records";
  rep.measure("picture", "build_flowpic " + tag, "k pictures/s", 1e3, [&] {
    const double c0 = thread_cpu_s(), t0 = now_s();
    for (uint32_t w = 0; w < a.windows; ++w)
      build_flowpic(cfg, s.infos[w], s.recs[w].data(), 20, out.data() + (w & 63) * px);
    return Sample{static_cast<double>(a.windows), now_s() - t0, thread_cpu_s() - c0};
  });
  PictureBatch batch(cfg, 64);
  rep.measure("picture", "PictureBatch::add (build_batch) 64 x " + tag, "k pictures/s", 1e3, [&] {
    const double c0 = thread_cpu_s(), t0 = now_s();
    for (uint32_t w = 0; w + 64 <= a.windows; w += 64) {
      batch.clear();
      batch.add(&s.refs[w], 64);
    }
    return Sample{static_cast<double>(a.windows / 64 * 64), now_s() - t0, thread_cpu_s() - c0};
  }, "TBB: as many threads as the affinity mask allows");

  // The paper's pictures: 1500x1500 from 15 s time windows.
  PictureConfig big;
  big.resolution = 1500;
  big.time_axis = TimeAxis::kSpan;
  big.window.kind = WindowPolicy::Kind::kTime;
  const uint32_t nb = 256;
  const SynthWindows sb = synth_windows(nb, a.big_records, true, 9);
  std::vector<float> bout(picture_floats(big) * 16);
  const std::string btag = "R=1500 " + std::to_string(a.big_records) + " records";
  rep.measure("picture", "build_flowpic " + btag, "pictures/s", 1, [&] {
    const double c0 = thread_cpu_s(), t0 = now_s();
    for (uint32_t w = 0; w < nb; ++w)
      build_flowpic(big, sb.infos[w], sb.recs[w].data(), a.big_records, bout.data() + (w & 15) * picture_floats(big));
    return Sample{nb, now_s() - t0, thread_cpu_s() - c0};
  });
  rep.measure("picture", "build_batch 16 x " + btag, "pictures/s", 1, [&] {
    const double c0 = thread_cpu_s(), t0 = now_s();
    for (uint32_t w = 0; w + 16 <= nb; w += 16) build_batch(big, &sb.refs[w], 16, bout.data());
    return Sample{nb, now_s() - t0, thread_cpu_s() - c0};
  }, "TBB: as many threads as the affinity mask allows");
  std::printf("  load after: %s\n", loadavg().c_str());
}

// ---------------------------------------------------------------- infer

struct InferArgs {
  std::string model;
  int batch = 64;
  int threads = 1;
  double seconds = 2.0;  // per figure and run, lenet
  bool big = true;
};

// Random pictures: `lit` pixels of every 1024 non-zero (about 20 for a 20-packet window's plane,
// 154 = 15 %: the figure earlier sessions measured, which takes the dense first layer).
std::vector<float> random_pictures(int n, size_t floats, uint32_t seed, double lit_per_1024 = 154) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<float> v(static_cast<size_t>(n) * floats);
  for (auto& x : v) x = u(rng) < lit_per_1024 / 1024 ? u(rng) : 0.f;
  return v;
}

void bench_network(Report& rep, const std::shared_ptr<const Model>& model, const std::vector<int>& batches,
                   int threads, double seconds, int min_iters, const std::string& label, double lit_per_1024 = 154) {
  const int maxb = *std::max_element(batches.begin(), batches.end());
  Network net(model, maxb, threads);
  const auto pics = random_pictures(maxb, model->picture_floats(), 3, lit_per_1024);
  std::copy(pics.begin(), pics.end(), net.input());
  std::vector<float> probs(static_cast<size_t>(maxb) * model->num_classes());
  for (int b : batches) {
    for (int i = 0; i < 3; ++i) net.forward(b, probs.data());  // warm-up (oneDNN JIT, caches)
    rep.measure("infer", label + " forward batch " + std::to_string(b) + ", " + std::to_string(threads) + " thr",
                label.find("1500") != std::string::npos ? "pictures/s" : "k pictures/s",
                label.find("1500") != std::string::npos ? 1 : 1e3, [&] {
                  const double c0 = thread_cpu_s(), t0 = now_s();
                  int64_t done = 0;
                  for (int it = 0; it < min_iters || now_s() - t0 < seconds; ++it) {
                    net.forward(b, probs.data());
                    done += b;
                  }
                  return Sample{static_cast<double>(done), now_s() - t0, thread_cpu_s() - c0};
                });
  }
  if (net.errors()) std::printf("  network errors: %llu\n", static_cast<unsigned long long>(net.errors()));
  std::printf("  %s: first layer sparse in %llu batches, dense in %llu\n", label.c_str(),
              static_cast<unsigned long long>(net.sparse_batches()), static_cast<unsigned long long>(net.dense_batches()));
}

void bench_infer(Report& rep, const InferArgs& a) {
  omp_set_num_threads(a.threads);
  std::printf("infer: threads %d, cpus %s, load %s\n", a.threads, affinity().c_str(), loadavg().c_str());
  std::shared_ptr<const Model> lenet;
  if (!a.model.empty()) {
    lenet = Model::load(a.model);
  } else {
    ModelInfo info;
    info.arch = Arch::kLeNet;
    info.picture.resolution = 32;
    info.name = "bench";
    for (int c = 0; c < 5; ++c) info.classes.push_back("c" + std::to_string(c));
    lenet = Model::create(info, 1);
  }
  std::vector<int> batches = {1, 16, a.batch};
  batches.erase(std::unique(batches.begin(), batches.end()), batches.end());
  const std::string name = std::string(arch_name(lenet->info().arch)) + " " + std::to_string(lenet->resolution()) +
                           "x" + std::to_string(lenet->resolution()) + (lenet->channels() == 2 ? "x2" : "");
  // 15 % of pixels lit (dense first layer), and 20 per plane (a 20-packet window: sparse).
  bench_network(rep, lenet, batches, a.threads, a.seconds, 10, name);
  bench_network(rep, lenet, batches, a.threads, a.seconds, 10, name + " 20 lit", 20);
  if (a.model.empty()) {
    // The two-channel picture of bidirectional windows (one plane per direction), same run.
    ModelInfo info = lenet->info();
    info.picture.window.bidirectional = true;
    info.picture.channels = 2;
    bench_network(rep, Model::create(info, 1), batches, a.threads, a.seconds, 10, "lenet 32x32x2");
    bench_network(rep, Model::create(info, 1), batches, a.threads, a.seconds, 10, "lenet 32x32x2 20 lit", 20);
  }
  if (a.big) {
    ModelInfo info;
    info.arch = Arch::kFlowPic;
    info.picture.resolution = 1500;
    info.picture.window.kind = WindowPolicy::Kind::kTime;
    info.picture.time_axis = TimeAxis::kSpan;
    info.name = "bench";
    for (int c = 0; c < 5; ++c) info.classes.push_back("c" + std::to_string(c));
    bench_network(rep, Model::create(info, 1), {1, 16}, a.threads, 1.0, 3, "flowpic 1500x1500");
  }
  std::printf("  load after: %s\n", loadavg().c_str());
}

// ---------------------------------------------------------------- dataset

struct DatasetArgs {
  std::string data = "/work/shared/data/ndpi";
  std::string flowpic;  // path of the flowpic command; default: next to this binary
  int repeat = 5;       // invocations per run (one pass over nDPI's captures takes ~0.1 s)
};

void bench_dataset(Report& rep, const DatasetArgs& a, const std::string& self) {
  std::string exe = a.flowpic;
  if (exe.empty()) exe = (fs::path(self).parent_path().parent_path() / "tools" / "flowpic").string();
  if (!fs::exists(exe)) {
    std::printf("dataset: %s not found (give --flowpic PATH)\n", exe.c_str());
    return;
  }
  const auto files = captures_in(a.data + "/pcap");
  read_all(files);
  std::printf("dataset: %s dataset pcap --data-dir %s (%zu captures), cpus %s, load %s\n", exe.c_str(),
              a.data.c_str(), files.size(), affinity().c_str(), loadavg().c_str());
  const std::string out = "/tmp/flowpic-bench-dataset-" + std::to_string(getpid());
  const std::string log = out + ".log";
  const std::regex re(R"(read (\d+) packets from (\d+) captures in ([0-9.]+) s)");
  double packets = 0;
  rep.measure("dataset", "flowpic dataset pcap: its own reading figure", "Mpps/core", 1e6, [&] {
    Sample sum;
    for (int r = 0; r < a.repeat; ++r) {
      int status = 0;
      const Sample whole =
          run_child({exe, "--no-progress", "dataset", "pcap", "--data-dir", a.data, "-o", out}, &status, log);
      std::ifstream in(log);
      std::stringstream ss;
      ss << in.rdbuf();
      std::smatch m;
      const std::string text = ss.str();
      if (status != 0 || !std::regex_search(text, m, re)) {
        std::printf("  flowpic dataset failed (status %d), see %s\n", status, log.c_str());
        return Sample{};
      }
      packets = std::stod(m[1]);
      const double secs = std::stod(m[3]);
      sum.work += packets;
      sum.wall += secs;
      sum.cpu += whole.wall > 0 ? secs * whole.cpu / whole.wall : 0;  // the process's CPU share, applied to its own timing
    }
    return sum;
  }, "reading + parsing + flow table + windows, timed by the command (its log line)");
  rep.measure("dataset", "flowpic dataset pcap: whole process", "Mpps/core", 1e6, [&] {
    Sample sum;
    for (int r = 0; r < a.repeat; ++r) {
      int status = 0;
      const Sample s = run_child({exe, "--no-progress", "dataset", "pcap", "--data-dir", a.data, "-o", out}, &status);
      sum.work += packets;
      sum.wall += s.wall;
      sum.cpu += s.cpu;
    }
    return sum;
  }, "start-up, labels CSV, writing the dataset included");
  rep.measure("dataset", "peer: libpcap pcap_next_ex only, same captures", "Mpps/core", 1e6,
              [&] { return libpcap_floor(files, a.repeat); });
  std::remove(out.c_str());
  std::remove(log.c_str());
  std::printf("  load after: %s\n", loadavg().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"flowpic-bench: throughput of each flowpic stage beside a peer measured in the same run"};
  app.require_subcommand(1);
  Report rep;
  std::string json_path;
  app.add_option("--runs", rep.runs, "repetitions of every figure (median reported)")->capture_default_str()->check(CLI::Range(1, 100));
  app.add_option("--json", json_path, "also write the figures as JSON to this file");

  FlowtableArgs fa;
  auto* ft = app.add_subcommand("flowtable", "FlowTable::on_burst with N concurrent flows; peers rte_hash and std::unordered_map");
  ft->add_option("--flows", fa.flows, "concurrent flows (table capacity = flows)")->capture_default_str()->check(CLI::Range(1024u, 1u << 26));
  ft->add_option("--packets", fa.packets, "packets timed per run (after a warm-up round)")->capture_default_str();
  ft->add_option("--sequence", fa.sequence, "packets materialised and replayed (whole rounds of all flows)")->capture_default_str();
  ft->add_option("--window", fa.window, "count:N or time:SECONDS")->capture_default_str();
  ft->add_option("--sweep", fa.sweep, "FlowTable::expire budget per burst (0 = none)")->capture_default_str();
  ft->add_option("--trace-ns", fa.trace_ns, "trace time between packets (ns)")->capture_default_str();
  ft->add_flag("--no-dpdk", fa.no_dpdk, "skip the rte_hash peer (no EAL)");
  ft->add_flag("--no-peers", fa.no_peers, "FlowTable only (no rte_hash, no unordered_map)");

  HashfloodArgs ha;
  auto* hf = app.add_subcommand("hashflood", "FlowTable::on_burst over keys crafted to collide under an unseeded hash; peers: random keys, seed 0");
  hf->add_option("--flows", ha.flows, "flows (table capacity)")->capture_default_str()->check(CLI::Range(1024u, 1u << 20));
  hf->add_option("--bits", ha.bits, "low hash bits the crafted keys share under seed 0")->capture_default_str()->check(CLI::Range(4u, 20u));
  hf->add_option("--packets", ha.packets, "packets timed per run")->capture_default_str();

  ParseArgs pa;
  auto* ps = app.add_subcommand("parse", "PcapReader + parse_packet; peers libpcap alone, tcpdump, ndpiReader");
  ps->add_option("--pcap", pa.pcaps, "capture files (default: every capture in --dir)");
  ps->add_option("--dir", pa.dir, "directory of captures")->capture_default_str();
  ps->add_option("--repeat", pa.repeat, "passes over the captures per run")->capture_default_str()->check(CLI::Range(1, 100000));
  ps->add_flag("!--no-external", pa.external, "skip the external tools");

  PictureArgs pi;
  auto* pic = app.add_subcommand("picture", "build_flowpic / build_batch pictures per second");
  pic->add_option("--resolution", pi.resolution, "R of the small pictures")->capture_default_str()->check(CLI::Range(4u, 1500u));
  pic->add_option("--time-axis", pi.time_axis, "span|fixed|log")->capture_default_str();
  pic->add_option("--windows", pi.windows, "windows per run")->capture_default_str();
  pic->add_option("--big-records", pi.big_records, "records per window of the 1500x1500 case")->capture_default_str();

  InferArgs ia;
  auto* inf = app.add_subcommand("infer", "Network::forward pictures per second (lenet 32x32, flowpic 1500x1500)");
  inf->add_option("--model", ia.model, "model file (default: a fresh lenet 32x32, 5 classes)");
  inf->add_option("--batch", ia.batch, "largest batch")->capture_default_str()->check(CLI::Range(1, 1024));
  inf->add_option("--threads", ia.threads, "OpenMP threads")->capture_default_str()->check(CLI::Range(1, 256));
  inf->add_option("--seconds", ia.seconds, "seconds per lenet figure and run")->capture_default_str();
  inf->add_flag("!--no-big", ia.big, "skip the 1500x1500 flowpic arch");

  DatasetArgs da;
  auto* ds = app.add_subcommand("dataset", "time `flowpic dataset pcap` over nDPI's captures");
  ds->add_option("--data", da.data, "directory with pcap/ and flows_labels.csv")->capture_default_str();
  ds->add_option("--repeat", da.repeat, "invocations per run")->capture_default_str()->check(CLI::Range(1, 1000));
  ds->add_option("--flowpic", da.flowpic, "flowpic command (default: ../tools/flowpic from this binary)");

  CLI11_PARSE(app, argc, argv);
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  const std::time_t t = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", std::localtime(&t));
  std::printf("flowpic-bench %s on %s, %ld online cpus, runs %d\n", date, host, sysconf(_SC_NPROCESSORS_ONLN), rep.runs);
  const std::string load_before = loadavg();
  try {
    if (*ft) bench_flowtable(rep, fa);
    if (*hf) bench_hashflood(rep, ha);
    if (*ps) bench_parse(rep, pa);
    if (*pic) bench_picture(rep, pi);
    if (*inf) bench_infer(rep, ia);
    if (*ds) bench_dataset(rep, da, fs::canonical("/proc/self/exe").string());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flowpic-bench: %s\n", e.what());
    return 1;
  }
  rep.print_table();
  if (!json_path.empty()) {
    nlohmann::json j = {{"date", date}, {"host", host}, {"cpus", affinity()}, {"runs", rep.runs},
                        {"load_before", load_before}, {"load_after", loadavg()}, {"figures", rep.to_json()},
                        {"facts", rep.extra}};
    std::ofstream(json_path) << j.dump(2) << "\n";
  }
  if (eal_up) eal_cleanup_and_remove_runtime_dir();
  return 0;
}
