// Hash flooding (issue 16): with an unseeded (or known) hash anyone can precompute flow keys
// that share their index home, and one lcore then walks a cluster of thousands of entries per
// packet. These tests craft such keys against seed 0 (the old unseeded XXH3) and check that the
// per-process secret seed scatters them, that the crafted keys do collide under the seed they were
// made for (so the test can fail), and that two processes draw different seeds.
#include <gtest/gtest.h>
#include <unistd.h>
#include <xxhash.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "flowtable/flow_table.hpp"
#include "tests/flowtable/collector.hpp"

namespace flowpic {
namespace {

// n UDP keys whose XXH3 under `seed` has its low `bits` bits zero: one index home in any table
// whose index has at most 2^bits entries. Deterministic (keys are enumerated, not random).
std::vector<FlowKey> crafted_keys(uint32_t n, unsigned bits, uint64_t seed) {
  std::vector<FlowKey> out;
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  for (uint32_t i = 0; out.size() < n; ++i) {
    const FlowKey k = test::key_v4(0x0a000000u + (i >> 10), 0xc0a80001u, static_cast<uint16_t>(1024 + (i & 1023)), 53);
    if ((XXH3_64bits_withSeed(&k, sizeof k, seed) & mask) == 0) out.push_back(k);
  }
  return out;
}

uint64_t long_probes_after_inserting(const std::vector<FlowKey>& keys) {
  FlowTableConfig cfg;
  cfg.capacity = 4096;  // index 8192 entries: 13 bits, keys share their low 12
  cfg.window.kind = WindowPolicy::Kind::kCount;
  cfg.window.packets = 20;
  cfg.window.min_packets = 20;
  FlowTable t(cfg, nullptr, nullptr);
  TimeNs now = 1'700'000'000ull * kNsPerSec;
  for (int round = 0; round < 2; ++round)  // insert, then look every flow up again
    for (const FlowKey& k : keys) EXPECT_NE(test::feed(t, k, 100, now += 1000), FlowTable::kNoSlot);
  return t.counters().long_probes;
}

TEST(HashFlood, KeysCraftedAgainstAKnownSeedDoNotCollideUnderTheSecretOne) {
  const std::vector<FlowKey> keys = crafted_keys(3000, 12, 0);
  const uint64_t secret = flow_hash_seed();
  ASSERT_NE(secret, 0u) << "the flow hash must be seeded (getrandom at start)";
  const uint64_t scattered = long_probes_after_inserting(keys);
  set_flow_hash_seed(0);  // as if the hash were unseeded: the keys pile up on one home
  const uint64_t piled = long_probes_after_inserting(keys);
  set_flow_hash_seed(secret);
  std::printf("long probes over 6000 lookups: %llu under the secret seed, %llu under seed 0\n",
              static_cast<unsigned long long>(scattered), static_cast<unsigned long long>(piled));
  EXPECT_GT(piled, 5000u) << "the crafted keys should collide under the seed they were made for";
  EXPECT_LE(scattered, 5u) << "keys crafted against seed 0 collide under this process's seed";
}

// The seed differs between processes: two runs of this binary print theirs.
TEST(HashFlood, EveryProcessDrawsItsOwnSeed) {
  if (const char* p = std::getenv("FLOWPIC_PRINT_SEED"); p && *p) {
    std::printf("seed=%llu\n", static_cast<unsigned long long>(flow_hash_seed()));
    return;
  }
  char self[4096] = {};
  ASSERT_GT(::readlink("/proc/self/exe", self, sizeof self - 1), 0);
  const std::string cmd = std::string("FLOWPIC_PRINT_SEED=1 '") + self +
                          "' --gtest_filter=HashFlood.EveryProcessDrawsItsOwnSeed 2>/dev/null";
  std::set<std::string> seeds;
  for (int i = 0; i < 3; ++i) {
    FILE* f = ::popen(cmd.c_str(), "r");
    ASSERT_NE(f, nullptr);
    char line[256];
    while (std::fgets(line, sizeof line, f))
      if (std::string(line).rfind("seed=", 0) == 0) seeds.insert(line);
    ::pclose(f);
  }
  EXPECT_EQ(seeds.size(), 3u) << "three processes, three seeds";
}

}  // namespace
}  // namespace flowpic
