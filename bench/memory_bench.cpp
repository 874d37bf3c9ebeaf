// flowpic-memory-bench: how many random cache lines one core can read per second, with 1 to
// N independent reads in flight. At 1M flows every packet of flowpicd's polling loop reads a
// handful of cold lines (mbuf header, frame, index entry, two slot lines, record), so this
// rate over the lines per packet bounds the loop's packet rate; docs/benchmarks-dataplane.md
// sets the two side by side. bench/dataplane.sh runs it in the same run as the dataplane bench.
//
//   flowpic-memory-bench [--mib 512] [--in-flight 1,8,16,24,32] [--pages thp|4k] [--json]
//
// Each of the N chains follows its own random cycle through the lines of one region (the next
// line's offset is stored in the line), so the N reads of a round are independent and each
// read of a chain waits for the previous one: N misses in flight, no hardware prefetch help.
#include <sys/mman.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace {

constexpr std::size_t kLine = 64;
constexpr std::size_t kHugePage = 2u << 20;

struct Region {
  void* base = nullptr;
  std::size_t bytes = 0;
  char* lines = nullptr;  // 2 MiB aligned inside base
  ~Region() {
    if (base) munmap(base, bytes);
  }
};

// Links every line of the region into one random cycle; returns the first line's offset.
void link_random_cycle(char* lines, std::size_t n_lines, std::vector<uint32_t>& order) {
  order.resize(n_lines);
  std::iota(order.begin(), order.end(), 0u);
  std::mt19937_64 rng(42);
  std::shuffle(order.begin(), order.end(), rng);
  for (std::size_t i = 0; i < n_lines; ++i)
    *reinterpret_cast<uint64_t*>(lines + order[i] * kLine) = order[(i + 1) % n_lines] * kLine;
}

// Reads `reads` lines in total over `chains` chains; returns ns per read.
double chase(const char* lines, const std::vector<uint32_t>& order, unsigned chains, uint64_t reads) {
  std::vector<uint64_t> at(chains);
  for (unsigned c = 0; c < chains; ++c) at[c] = order[order.size() / chains * c] * kLine;
  const uint64_t rounds = reads / chains;
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t r = 0; r < rounds; ++r)
    for (unsigned c = 0; c < chains; ++c) at[c] = *reinterpret_cast<const volatile uint64_t*>(lines + at[c]);
  const auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(rounds * chains);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"flowpic-memory-bench: random cache lines read per second by one core, by reads in flight"};
  std::size_t mib = 512;
  std::vector<unsigned> in_flight{1, 8, 16, 24, 32};
  std::string pages = "thp";
  uint64_t reads = 20'000'000;
  bool json = false;
  app.add_option("--mib", mib, "region size in MiB (far larger than the caches)")->check(CLI::Range(64, 16384));
  app.add_option("--in-flight", in_flight, "independent reads in flight to measure")
      ->delimiter(',')->check(CLI::Range(1, 256));
  app.add_option("--pages", pages, "thp: transparent 2 MiB pages, as the flow table asks for; 4k: base pages")
      ->check(CLI::IsMember({"thp", "4k"}));
  app.add_option("--reads", reads, "reads per measurement")->check(CLI::Range(1'000'000ull, 1'000'000'000ull));
  app.add_flag("--json", json, "one JSON object instead of the table");
  CLI11_PARSE(app, argc, argv);

  Region r;
  r.bytes = (mib << 20) + kHugePage;
  r.base = mmap(nullptr, r.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r.base == MAP_FAILED) {
    r.base = nullptr;
    std::fprintf(stderr, "flowpic-memory-bench: cannot map %zu MiB; lower --mib\n", mib);
    return 1;
  }
  r.lines = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(r.base) + kHugePage - 1) & ~(kHugePage - 1));
  madvise(r.lines, mib << 20, pages == "thp" ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);  // best effort
  std::vector<uint32_t> order;
  const std::size_t n_lines = (mib << 20) / kLine;
  link_random_cycle(r.lines, n_lines, order);

  nlohmann::json out{{"mib", mib}, {"pages", pages}, {"reads", reads}, {"runs", nlohmann::json::array()}};
  if (!json) std::printf("%zu MiB region, %s pages, %llu reads each\n%10s %12s %14s\n", mib, pages.c_str(),
                         static_cast<unsigned long long>(reads), "in flight", "ns per read", "M lines/s");
  for (const unsigned n : in_flight) {
    const double ns = chase(r.lines, order, n, reads);
    out["runs"].push_back({{"in_flight", n}, {"ns_per_read", ns}, {"mlines_per_s", 1e3 / ns}});
    if (!json) std::printf("%10u %12.2f %14.1f\n", n, ns, 1e3 / ns);
  }
  if (json) std::printf("%s\n", out.dump().c_str());
  return 0;
}
