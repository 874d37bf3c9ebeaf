// flowpic-dataplane-bench: packets per second of one flowpicd polling lcore, running the
// appliance's own loop (flowpic::lcore_main from dataplane/worker.cpp: parse, flow_hash,
// FlowTable::on_burst, action, tx burst), beside the same port in pure forwarding.
//
// No generator in the loop: a net_ring port whose TX ring is its RX ring, pre-filled with a
// fixed population of 64-byte (on the wire) UDP/IPv4 packets, one mbuf per flow and
// `--packets-per-flow` rounds, so the lcore sees every flow once per round and the table
// holds `--flows` concurrent flows. Packets are never rewritten.
//
//   flowpic-dataplane-bench [EAL args] -- [--flows N] [--seconds S] [--warmup S] [--json]
//
// Main lcore: drains closed windows (stands in for the FlowPic builders, which are not what
// is measured) and samples the counters. One worker lcore polls.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_prefetch.h>
#include <rte_ring.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/eal_cleanup.hpp"
#include "dataplane/pipeline.hpp"
#include "dataplane/worker.hpp"
#include "export/exporter.hpp"
#include "flowtable/flow_table.hpp"
#include "flowtable/packet_step.hpp"  // kSweepBudget, as dataplane/app.cpp

namespace {

using namespace flowpic;

struct Options {
  uint32_t flows = 1u << 20;
  uint32_t packets_per_flow = 1;
  uint32_t capacity = 0;  // 0 = flows (as configs/inline.yaml: capacity 1048576)
  uint32_t window_packets = 20;  // default model: count windows of 20 packets, min 10
  uint32_t max_records = 1024;
  uint32_t window_ring = 4096;
  double seconds = 5.0;
  double warmup = 2.0;
  std::string modes = "forward,flowpicd";
  bool json = false;
  bool pairs = false;  // flow 2k+1 is flow 2k's other direction (for flowpicd-bi)
  double idle_ms = 30000;  // flow table idle timeout (1: every packet of a 1M-flow population ends its flow)
};

// Ethernet + IPv4 + UDP, 60 bytes in the mbuf (64 on the wire with the FCS).
constexpr uint16_t kFrameLen = 60;

uint16_t ip_checksum(const uint8_t* h, unsigned len) {
  uint32_t s = 0;
  for (unsigned i = 0; i < len; i += 2) s += static_cast<uint32_t>(h[i] << 8 | h[i + 1]);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

void write_packet(uint8_t* p, uint32_t flow, bool pairs) {
  std::memset(p, 0, kFrameLen);
  const uint8_t dmac[6] = {0x02, 0, 0, 0, 0, 2}, smac[6] = {0x02, 0, 0, 0, 0, 1};
  std::memcpy(p, dmac, 6);
  std::memcpy(p + 6, smac, 6);
  p[12] = 0x08;  // IPv4
  uint8_t* ip = p + 14;
  ip[0] = 0x45;
  const uint16_t ip_len = kFrameLen - 14;
  ip[2] = ip_len >> 8;
  ip[3] = ip_len & 0xff;
  ip[8] = 64;
  ip[9] = 17;  // UDP
  // Flow i: source 10.x.y.z = 10.0.0.0 + i / 64k, source port 1024 + i % 64k (distinct up to 16M).
  // With pairs, flows 2k and 2k+1 are the two directions of connection k.
  const uint32_t c = pairs ? flow / 2 : flow;
  uint32_t src = 0x0a000000u + (c >> 16), dst = 0xc0a80001u;
  uint16_t sport = static_cast<uint16_t>(1024 + (c & 0xffff)), dport = 443;
  if (pairs && (flow & 1)) {
    std::swap(src, dst);
    std::swap(sport, dport);
  }
  for (int b = 0; b < 4; ++b) {
    ip[12 + b] = static_cast<uint8_t>(src >> (24 - 8 * b));
    ip[16 + b] = static_cast<uint8_t>(dst >> (24 - 8 * b));
  }
  const uint16_t cs = ip_checksum(ip, 20);
  ip[10] = cs >> 8;
  ip[11] = cs & 0xff;
  uint8_t* udp = ip + 20;
  udp[0] = sport >> 8;
  udp[1] = sport & 0xff;
  udp[2] = dport >> 8;
  udp[3] = dport & 0xff;
  const uint16_t ulen = ip_len - 20;
  udp[4] = ulen >> 8;
  udp[5] = ulen & 0xff;
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "flowpic-dataplane-bench: %s\n", what.c_str());
  rte_exit(EXIT_FAILURE, "stopped\n");
}

// Pure forwarding on the same port: rx burst -> tx burst, nothing else.
struct ForwardArgs {
  uint16_t port = 0;
  const std::atomic<bool>* stop = nullptr;
  Counter rx, tx;
};

int forward_main(void* arg) {
  auto& a = *static_cast<ForwardArgs*>(arg);
  rte_mbuf* pkts[kBurst];
  while (!a.stop->load(std::memory_order_relaxed)) {
    const uint16_t n = rte_eth_rx_burst(a.port, 0, pkts, kBurst);
    if (n == 0) continue;
    a.rx.add(n);
    const uint16_t sent = rte_eth_tx_burst(a.port, 0, pkts, n);
    a.tx.add(sent);
    if (sent < n) rte_pktmbuf_free_bulk(pkts + sent, n - sent);
  }
  return 0;
}

// Forwarding with the least per-packet work a real application does (DPDK's l2fwd, testpmd
// macswap): swap each frame's MAC addresses. It touches exactly the mbuf lines flowpicd must
// touch (header, frame) and nothing else, so it measures what this feed costs per packet. Held
// in the same three-burst pipeline as flowpicd's lcore (dataplane/worker.cpp), so both hide
// the mbuf misses alike.
int macswap_main(void* arg) {
  auto& a = *static_cast<ForwardArgs*>(arg);
  constexpr unsigned kStages = 3;
  rte_mbuf* pkts[kStages][kBurst];
  uint16_t n[kStages] = {};
  for (uint64_t it = kStages;; ++it) {
    const bool stopping = a.stop->load(std::memory_order_relaxed);
    const unsigned oldest = (it - 2) % kStages, middle = (it - 1) % kStages, in = it % kStages;
    for (uint16_t i = 0; i < n[oldest]; ++i) {
      uint8_t* e = rte_pktmbuf_mtod(pkts[oldest][i], uint8_t*);
      uint8_t tmp[6];
      std::memcpy(tmp, e, 6);
      std::memcpy(e, e + 6, 6);
      std::memcpy(e + 6, tmp, 6);
    }
    if (n[oldest]) {
      const uint16_t sent = rte_eth_tx_burst(a.port, 0, pkts[oldest], n[oldest]);
      a.tx.add(sent);
      if (sent < n[oldest]) rte_pktmbuf_free_bulk(pkts[oldest] + sent, n[oldest] - sent);
      n[oldest] = 0;
    }
    for (uint16_t i = 0; i < n[middle]; ++i) rte_prefetch0(rte_pktmbuf_mtod(pkts[middle][i], void*));
    n[in] = stopping ? 0 : rte_eth_rx_burst(a.port, 0, pkts[in], kBurst);
    a.rx.add(n[in]);
    for (uint16_t i = 0; i < n[in]; ++i) rte_prefetch0(pkts[in][i]);
    if (stopping && n[middle] == 0 && n[in] == 0) break;
  }
  return 0;
}

// CPU time the polling thread actually got: the cores are shared, so wall-clock Mpps
// alone would measure the neighbours too. Mpps per CPU-second is reported beside it.
pthread_t g_worker_thread;
int record_thread(void*) {
  g_worker_thread = pthread_self();
  return 0;
}
double thread_cpu_s(pthread_t t) {
  clockid_t cid;
  timespec ts{};
  if (pthread_getcpuclockid(t, &cid) != 0 || clock_gettime(cid, &ts) != 0) return 0;
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

struct RunResult {
  std::string mode;
  double mpps = 0;
  uint64_t packets = 0;
  uint64_t windows = 0;  // windows_sent during `seconds` (flowpicd)
  double seconds = 0;
  double cpu_seconds = 0;  // CPU time of the polling thread during `seconds`
  nlohmann::json extra = nlohmann::json::object();
};

// Samples `rx` (and `windows`, if given) after the warm-up and after the measured interval;
// the main lcore meanwhile drains `win_ring` (if any) back into `win_pool`.
RunResult measure(const Options& o, const Counter& rx, rte_ring* win_ring, rte_mempool* win_pool,
                  uint64_t* windows_drained, const Counter* windows = nullptr) {
  using clock = std::chrono::steady_clock;
  auto drain_until = [&](auto until) {
    void* objs[64];
    while (clock::now() < until) {
      unsigned n = win_ring ? rte_ring_sc_dequeue_burst(win_ring, objs, 64, nullptr) : 0;
      if (n) {
        rte_mempool_put_bulk(win_pool, objs, n);
        *windows_drained += n;
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
  };
  drain_until(clock::now() + std::chrono::duration<double>(o.warmup));
  const uint64_t p0 = rx.get();
  const uint64_t w0 = windows ? windows->get() : 0;
  const double c0 = thread_cpu_s(g_worker_thread);
  const auto t0 = clock::now();
  drain_until(t0 + std::chrono::duration<double>(o.seconds));
  const uint64_t p1 = rx.get();
  const uint64_t w1 = windows ? windows->get() : 0;
  const double c1 = thread_cpu_s(g_worker_thread);
  const auto t1 = clock::now();
  RunResult r;
  r.cpu_seconds = c1 - c0;
  r.packets = p1 - p0;
  r.windows = w1 - w0;
  r.seconds = std::chrono::duration<double>(t1 - t0).count();
  r.mpps = static_cast<double>(r.packets) / r.seconds / 1e6;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const int eal_used = rte_eal_init(argc, argv);
  if (eal_used < 0) {
    std::fprintf(stderr, "flowpic-dataplane-bench: EAL init failed: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  argc -= eal_used;
  argv += eal_used;
  Options o;
  CLI::App app{"flowpicd polling lcore throughput on a recirculating net_ring port (run after EAL args and --)"};
  app.add_option("--flows", o.flows, "distinct 5-tuples in the packet population")->check(CLI::Range(1u, 1u << 24));
  app.add_option("--packets-per-flow", o.packets_per_flow, "mbufs per flow (rounds of the population)")
      ->check(CLI::Range(1u, 64u));
  app.add_option("--capacity", o.capacity, "flow table capacity (0 = --flows)");
  app.add_option("--window-packets", o.window_packets, "count window length (default model: 20)");
  app.add_option("--max-records", o.max_records, "flow_table.max_records");
  app.add_option("--window-ring", o.window_ring, "window ring size (configs: 4096)");
  app.add_option("--seconds", o.seconds, "measured interval per mode");
  app.add_option("--warmup", o.warmup, "seconds run before measuring");
  app.add_option("--modes", o.modes, "comma list: forward (rx -> tx), macswap (forward swapping MACs), flowpicd, "
                                     "flowpicd-bi (the flow table pairs both directions: a bidirectional model), "
                                     "flowpicd-ipfix (flowpicd with exporters.ipfix: flow records to a UDP socket nobody reads)");
  app.add_option("--idle-ms", o.idle_ms, "flow table idle timeout in ms (1: with --flows 1048576 every packet ends its flow)");
  app.add_flag("--pairs", o.pairs, "flows 2k and 2k+1 are the two directions of one connection (--flows/2 connections)");
  app.add_flag("--json", o.json, "print one JSON object instead of text");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (rte_lcore_count() < 2) die("needs two lcores (e.g. -l 0-1): main drains windows, one worker polls");
  const unsigned worker = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
  const int socket = static_cast<int>(rte_lcore_to_socket_id(worker));
  rte_eal_remote_launch(record_thread, nullptr, worker);
  rte_eal_wait_lcore(worker);
  if (o.capacity == 0) o.capacity = o.flows;

  // Population: one small mbuf per packet (data room = headroom + 64 B).
  const uint32_t population = o.flows * o.packets_per_flow;
  const uint16_t data_room = RTE_PKTMBUF_HEADROOM + 64;
  rte_mempool* pool = rte_pktmbuf_pool_create("dpb_pkts", population, 0, 0, data_room, socket);
  if (!pool) die("cannot allocate " + std::to_string(population) + " mbufs: " + rte_strerror(rte_errno) + " (raise -m)");
  std::size_t pool_bytes = 0;
  rte_mempool_mem_iter(pool, [](rte_mempool*, void* opaque, rte_mempool_memhdr* h, unsigned) {
    *static_cast<std::size_t*>(opaque) += h->len;
  }, &pool_bytes);
  const uint32_t ring_size = rte_align32pow2(population + 1);
  rte_ring* loop = rte_ring_create("dpb_loop", ring_size, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (!loop) die(std::string("cannot create the loop ring: ") + rte_strerror(rte_errno));
  const int port_id = rte_eth_from_rings("net_ring_dpb", &loop, 1, &loop, 1, static_cast<unsigned>(socket));
  if (port_id < 0) die(std::string("rte_eth_from_rings: ") + rte_strerror(rte_errno));
  const uint16_t port = static_cast<uint16_t>(port_id);
  rte_eth_conf conf{};
  if (rte_eth_dev_configure(port, 1, 1, &conf) != 0 || rte_eth_rx_queue_setup(port, 0, 1024, socket, nullptr, pool) != 0 ||
      rte_eth_tx_queue_setup(port, 0, 1024, socket, nullptr) != 0 || rte_eth_dev_start(port) != 0)
    die("cannot configure/start the net_ring port");

  // Fill: rounds of all flows, flow order shuffled once (fixed seed), mbufs in pool order.
  std::vector<uint32_t> order(o.flows);
  std::iota(order.begin(), order.end(), 0u);
  std::shuffle(order.begin(), order.end(), std::mt19937(12345));
  std::vector<rte_mbuf*> mb(population);
  if (rte_pktmbuf_alloc_bulk(pool, mb.data(), population) != 0) die("mbuf allocation failed");
  for (uint32_t i = 0; i < population; ++i) {
    rte_mbuf* m = mb[i];
    write_packet(rte_pktmbuf_mtod(m, uint8_t*), order[i % o.flows], o.pairs);
    m->data_len = m->pkt_len = kFrameLen;
  }
  if (rte_ring_enqueue_bulk(loop, reinterpret_cast<void**>(mb.data()), population, nullptr) != population)
    die("cannot fill the loop ring");

  nlohmann::json out;
  out["flows"] = o.flows;
  out["packets_per_flow"] = o.packets_per_flow;
  out["population_mbufs"] = population;
  out["frame_bytes"] = kFrameLen;
  out["pairs"] = o.pairs;
  out["mbuf_pool_bytes"] = pool_bytes;
  out["loop_ring_bytes"] = rte_ring_get_memsize(ring_size);
  out["hugepages"] = rte_eal_has_hugepages() != 0;
  out["worker_lcore"] = worker;
  out["worker_cpu"] = rte_lcore_to_cpu_id(static_cast<int>(worker));
  out["runs"] = nlohmann::json::array();

  std::atomic<bool> stop{false};
  auto want = [&](const char* m) { return ("," + o.modes + ",").find(std::string(",") + m + ",") != std::string::npos; };

  for (const char* mode : {"forward", "macswap"}) {
    if (!want(mode)) continue;
    ForwardArgs fa;
    fa.port = port;
    fa.stop = &stop;
    stop = false;
    rte_eal_remote_launch(std::string(mode) == "forward" ? forward_main : macswap_main, &fa, worker);
    uint64_t none = 0;
    RunResult r = measure(o, fa.rx, nullptr, nullptr, &none);
    stop = true;
    rte_eal_wait_lcore(worker);
    r.mode = mode;
    r.extra["tx_refused"] = fa.rx.get() - fa.tx.get();
    out["runs"].push_back({{"mode", r.mode}, {"mpps", r.mpps}, {"packets", r.packets}, {"seconds", r.seconds},
                           {"cpu_seconds", r.cpu_seconds}, {"mpps_per_cpu_s", r.packets / r.cpu_seconds / 1e6},
                           {"extra", r.extra}});
  }

  for (const char* fmode : {"flowpicd", "flowpicd-bi", "flowpicd-ipfix"}) {
    if (!want(fmode)) continue;
    const bool bidir = std::string(fmode) == "flowpicd-bi";
    const bool ipfix = std::string(fmode) == "flowpicd-ipfix";
    // The lcore exactly as dataplane/app.cpp wires it, with the window ring and pool of
    // dataplane/pipeline.cpp and live (TSC) time as configs/inline.yaml.
    ClassTable classes;
    const uint32_t win_pool_size = window_pool_size(o.window_ring, PipelineOptions{}.batch);
    rte_ring* win_ring = rte_ring_create("dpb_win", o.window_ring, socket, RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
    rte_mempool* win_pool = rte_mempool_create("dpb_winpool", win_pool_size,
                                               static_cast<unsigned>(WindowMsg::bytes_for(o.max_records)), 0, 0, nullptr,
                                               nullptr, nullptr, nullptr, socket, RTE_MEMPOOL_F_SP_PUT | RTE_MEMPOOL_F_SC_GET);
    rte_ring* verdicts = rte_ring_create_elem("dpb_verd", sizeof(VerdictMsg), 4096, socket, RING_F_SC_DEQ);
    if (!win_ring || !win_pool || !verdicts) die("cannot create the window ring/pool (raise -m)");
    auto lc = std::make_unique<LcoreState>();
    lc->index = 0;
    lc->lcore_id = worker;
    lc->rx_port = lc->tx_port = port;
    lc->win_ring = win_ring;
    lc->win_pool = win_pool;
    lc->verdict_ring = verdicts;
    lc->classes = &classes;
    lc->stop = &stop;
    lc->max_records = o.max_records;
    lc->ring_full = RingFullPolicy::kDrop;
    lc->clock_mode = ClockMode::kTsc;
    lc->tsc.init(rte_get_tsc_hz(), rte_rdtsc(), 0);
    lc->expire_budget = kSweepBudget;
    FlowTableConfig tc;
    tc.capacity = o.capacity;
    tc.idle_timeout_ns = static_cast<TimeNs>(o.idle_ms * 1e6);
    tc.window.kind = WindowPolicy::Kind::kCount;
    tc.window.packets = o.window_packets;
    tc.window.min_packets = std::min<uint32_t>(10, o.window_packets);
    tc.max_records = o.max_records;
    tc.window.bidirectional = bidir;
    lc->table = std::make_unique<FlowTable>(tc, &window_sink, lc.get(), 0);
    // flowpicd-ipfix: the exporter thread as app.cpp wires it, sending to a bound UDP socket that
    // is never read (the kernel drops what does not fit), so only export's cost is measured.
    std::unique_ptr<IpfixExporter> exporter;
    int sink_fd = -1;
    if (ipfix) {
      sink_fd = ::socket(AF_INET, SOCK_DGRAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      bind(sink_fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
      socklen_t al = sizeof a;
      getsockname(sink_fd, reinterpret_cast<sockaddr*>(&a), &al);
      ExportConfig ec;
      ec.port = ntohs(a.sin_port);
      exporter = std::make_unique<IpfixExporter>(ec, 1);
      exporter->publish(1, "bench", {"VoIP"});
      exporter->start();
      lc->exporter = exporter.get();
      lc->table->set_flow_end_sink(&flow_end_sink, lc.get(), static_cast<TimeNs>(ec.active_timeout_s * 1e9));
    }
    lc->sweep = SweepPacer(tc.capacity, sweep_period(tc.idle_timeout_ns), lc->tsc.to_ns(rte_rdtsc()));  // as app.cpp
    stop = false;
    uint64_t drained = 0;
    rte_eal_remote_launch(lcore_main, lc.get(), worker);
    RunResult r = measure(o, lc->c.rx, win_ring, win_pool, &drained, &lc->c.windows_sent);
    const FlowTableCounters ftc = lc->table->counters();  // sampled while running: slightly stale is fine
    const uint32_t live_flows = lc->table->size();
    stop = true;
    // The lcore flushes its table on stop and the sink then waits: keep draining.
    std::atomic<bool> lcore_done{false};
    std::thread drainer([&] {
      void* objs[64];
      while (!lcore_done.load()) {
        unsigned n = rte_ring_sc_dequeue_burst(win_ring, objs, 64, nullptr);
        if (n) rte_mempool_put_bulk(win_pool, objs, n);
      }
    });
    rte_eal_wait_lcore(worker);
    lcore_done = true;
    drainer.join();
    if (exporter) exporter->finish();
    r.mode = fmode;
    const auto& c = lc->c;
    r.extra = {{"flows_in_table", live_flows},
               {"table_capacity", lc->table->capacity()},
               {"table_memory_bytes", lc->table->memory_bytes()},
               {"table_bytes_per_flow", static_cast<double>(lc->table->memory_bytes()) / lc->table->capacity()},
               {"record_chunks", lc->table->record_chunks()},
               {"flows_created", ftc.flows_created},
               {"flows_rejected_full", ftc.flows_rejected_full},
               {"untracked", c.untracked.get()},
               {"parse_ok", c.parse[static_cast<std::size_t>(ParseResult::kOk)].get()},
               {"tx_full", c.tx_full.get()},
               {"windows_per_s", static_cast<double>(r.windows) / r.seconds},
               {"windows_ring_full", c.windows_ring_full.get()},
               {"windows_pool_empty", c.windows_pool_empty.get()},
               {"window_pool_bytes", static_cast<uint64_t>(rte_mempool_calc_obj_size(
                                         static_cast<uint32_t>(WindowMsg::bytes_for(o.max_records)), 0, nullptr)) *
                                         win_pool_size},
               {"window_packets", o.window_packets},
               {"idle_ms", o.idle_ms},
               {"flows_expired", ftc.flows_expired}};
    if (exporter) {
      const ExportStats es = exporter->stats();
      r.extra["flow_records"] = c.flow_records.get();
      r.extra["flow_records_dropped"] = c.flow_records_dropped.get();
      r.extra["flow_records_per_s"] = static_cast<double>(ftc.flow_records) / r.seconds;
      r.extra["exporter_sent"] = es.flow_records;
      close(sink_fd);
    }
    out["runs"].push_back({{"mode", r.mode}, {"mpps", r.mpps}, {"packets", r.packets}, {"seconds", r.seconds},
                           {"cpu_seconds", r.cpu_seconds}, {"mpps_per_cpu_s", r.packets / r.cpu_seconds / 1e6},
                           {"extra", r.extra}});
    rte_ring_free(verdicts);
    rte_mempool_free(win_pool);
    rte_ring_free(win_ring);
  }

  if (o.json) {
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("population: %u flows x %u = %u mbufs of %u B frames, mbuf pool %.1f MiB, loop ring %.1f MiB, %s\n",
                o.flows, o.packets_per_flow, population, kFrameLen, pool_bytes / 1048576.0,
                out["loop_ring_bytes"].get<double>() / 1048576.0, rte_eal_has_hugepages() ? "hugepages" : "no hugepages");
    for (const auto& r : out["runs"])
      std::printf("%-11s %8.2f Mpps, %8.2f Mpps per CPU-second  (%lu packets in %.2f s, %.2f s on CPU)  %s\n",
                  r["mode"].get<std::string>().c_str(), r["mpps"].get<double>(), r["mpps_per_cpu_s"].get<double>(),
                  r["packets"].get<unsigned long>(), r["seconds"].get<double>(), r["cpu_seconds"].get<double>(),
                  r["extra"].dump().c_str());
  }
  rte_eth_dev_stop(port);
  eal_cleanup_and_remove_runtime_dir();
  return 0;
}
