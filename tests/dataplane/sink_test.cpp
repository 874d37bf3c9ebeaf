// window_sink against a real DPDK ring and mempool (EAL with --no-huge, no devices): every
// window is either in the ring with its records intact or counted as dropped, and the
// messages an lcore stashes all go back to the pool.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "dataplane/eal_cleanup.hpp"
#include "dataplane/pipeline.hpp"
#include "dataplane/worker.hpp"

using namespace flowpic;

namespace {

constexpr unsigned kRing = 8;
constexpr unsigned kPool = kRing + 2 * kWindowMsgStash;
constexpr uint32_t kMaxRecords = 32;

class WindowSinkTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string prefix = "--file-prefix=fp-sink-" + std::to_string(getpid());
    std::vector<std::string> args = {"sink_test", "-l", "0", "--no-huge", "-m", "64", "--no-pci", prefix,
                                      "--log-level=lib.eal:error"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    ASSERT_GE(rte_eal_init(static_cast<int>(argv.size()), argv.data()), 0) << "EAL init failed";
  }
  static void TearDownTestSuite() { eal_cleanup_and_remove_runtime_dir(); }  // no /var/run/dpdk leftovers
  void SetUp() override {
    const std::string tag = std::to_string(++serial_);
    ring_ = rte_ring_create(("sink_r" + tag).c_str(), kRing, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
    pool_ = rte_mempool_create(("sink_p" + tag).c_str(), kPool, static_cast<unsigned>(WindowMsg::bytes_for(kMaxRecords)),
                               0, 0, nullptr, nullptr, nullptr, nullptr, SOCKET_ID_ANY,
                               RTE_MEMPOOL_F_SP_PUT | RTE_MEMPOOL_F_SC_GET);
    ASSERT_NE(ring_, nullptr);
    ASSERT_NE(pool_, nullptr);
    lc_.win_ring = ring_;
    lc_.win_pool = pool_;
    lc_.max_records = kMaxRecords;
    lc_.ring_full = RingFullPolicy::kDrop;
    lc_.index = 3;
  }
  void TearDown() override {
    rte_ring_free(ring_);
    rte_mempool_free(pool_);
  }
  // Window number i: its index and record sizes say which one it is.
  bool send(uint32_t i) {
    WindowInfo info{};
    info.index = i;
    info.packets = 20;
    std::vector<PacketRecord> recs(20);
    for (uint32_t j = 0; j < recs.size(); ++j) recs[j] = PacketRecord{j * 100, static_cast<uint16_t>(i + j), 1};
    return window_sink(&lc_, info, recs.data(), static_cast<uint32_t>(recs.size()));
  }
  // Takes everything out of the ring, checks each message and returns it to the pool.
  std::vector<uint32_t> drain() {
    std::vector<uint32_t> got;
    void* obj;
    while (rte_ring_sc_dequeue(ring_, &obj) == 0) {
      const auto* m = static_cast<const WindowMsg*>(obj);
      EXPECT_EQ(m->info.lcore, 3u);
      EXPECT_EQ(m->n, 20u);
      for (uint32_t j = 0; j < m->n; ++j) EXPECT_EQ(m->recs[j].size, m->info.index + j) << m->info.index;
      got.push_back(m->info.index);
      rte_mempool_put(pool_, obj);
    }
    return got;
  }
  static inline unsigned serial_ = 0;
  rte_ring* ring_ = nullptr;
  rte_mempool* pool_ = nullptr;
  LcoreState lc_;
};

TEST_F(WindowSinkTest, FullRingDropsAndCountsAndEveryMessageReturns) {
  uint32_t sent = 0;
  for (uint32_t i = 0; i < 100; ++i) sent += send(i);
  EXPECT_EQ(sent, kRing);
  EXPECT_EQ(lc_.c.windows_sent.get(), kRing);
  EXPECT_EQ(lc_.c.windows_ring_full.get(), 100u - kRing);
  EXPECT_EQ(lc_.c.windows_pool_empty.get(), 0u);
  const std::vector<uint32_t> got = drain();
  ASSERT_EQ(got.size(), kRing);
  for (uint32_t k = 0; k < kRing; ++k) EXPECT_EQ(got[k], k);  // in order, the first ones
  // Draining while sending: nothing lost, several stash refills.
  for (uint32_t i = 100; i < 305; ++i) {
    ASSERT_TRUE(send(i));
    ASSERT_EQ(drain(), std::vector<uint32_t>{i});
  }
  ASSERT_GT(lc_.msg_stashed, 0u);  // messages outside the pool until the lcore stops
  EXPECT_LT(rte_mempool_avail_count(pool_), kPool);
  return_window_stash(lc_);
  EXPECT_EQ(lc_.msg_stashed, 0u);
  EXPECT_EQ(rte_mempool_avail_count(pool_), kPool);
}

TEST_F(WindowSinkTest, EmptyPoolDropsAndCounts) {
  std::vector<void*> held(kPool);
  ASSERT_EQ(rte_mempool_get_bulk(pool_, held.data(), kPool), 0);
  EXPECT_FALSE(send(1));
  EXPECT_EQ(lc_.c.windows_pool_empty.get(), 1u);
  EXPECT_EQ(lc_.c.windows_sent.get(), 0u);
  // Fewer messages free than a stash: the sink takes them one at a time.
  rte_mempool_put_bulk(pool_, held.data(), 3);
  EXPECT_TRUE(send(2));
  EXPECT_TRUE(send(3));
  EXPECT_TRUE(send(4));
  EXPECT_FALSE(send(5));
  EXPECT_EQ(lc_.c.windows_pool_empty.get(), 2u);
  EXPECT_EQ(drain(), (std::vector<uint32_t>{2, 3, 4}));
  rte_mempool_put_bulk(pool_, held.data() + 3, kPool - 3);
  return_window_stash(lc_);
  EXPECT_EQ(rte_mempool_avail_count(pool_), kPool);
}

}  // namespace
