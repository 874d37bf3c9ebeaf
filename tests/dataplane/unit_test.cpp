// Unit tests of flowpicd's pieces that need no DPDK runtime: config validation, the DSCP
// rewrite, the latency histogram, the TSC clock, the sweep pacer, the symmetric RSS key.
#include <gtest/gtest.h>

#include <cstring>
#include <unistd.h>
#include <fstream>
#include <filesystem>
#include <random>

#include <rte_thash.h>

#include "dataplane/config.hpp"
#include "dataplane/pipeline.hpp"
#include "dataplane/rss.hpp"
#include "dataplane/worker.hpp"
#include "harness.hpp"

using namespace flowpic;
using flowpic::test::ip_checksum;

namespace {

const char* kGood = R"(
eal: [--no-huge, -m, "512"]
ports:
  - {name: a, device: "net_pcap0,rx_pcap=x.pcap", peer: b}
  - {name: b, device: "0000:3b:00.1", rx_queues: 2}
cores: {poll: [1, 2, 3], build: [0], infer: [4, 5]}
model: m.fpm
actions: {VoIP: forward, Video: "dscp 34", Chat: drop, Browsing: {dscp: 10}}
)";

std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    parse_config(yaml, "t.yaml", overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Config, ParsesAGoodConfig) {
  const Config c = parse_config(kGood, "t.yaml");
  ASSERT_EQ(c.ports.size(), 2u);
  EXPECT_EQ(c.ports[0].peer, "b");
  EXPECT_EQ(c.ports[1].peer, "b");  // default: itself
  EXPECT_FALSE(c.ports[0].is_pci());
  EXPECT_TRUE(c.ports[1].is_pci());
  EXPECT_EQ(c.ports[0].dpdk_name(), "net_pcap0");
  EXPECT_EQ(c.ports[1].dpdk_name(), "0000:3b:00.1");
  EXPECT_EQ(c.poll_cores, (std::vector<unsigned>{1, 2, 3}));
  EXPECT_FALSE(c.mempool_size.has_value());
  EXPECT_EQ(c.actions.at("Video").kind, Action::Kind::kDscp);
  EXPECT_EQ(c.actions.at("Video").dscp, 34);
  EXPECT_EQ(c.actions.at("Browsing").dscp, 10);
  EXPECT_EQ(c.actions.at("Chat").kind, Action::Kind::kDrop);
  EXPECT_EQ(c.clock, ClockMode::kAuto);
}

TEST(Config, IpfixExporter) {
  const Config c = parse_config(std::string(kGood) +
                                    "flow_table: {idle_timeout_s: 20}\n"
                                    "exporters: {ipfix: {collector: \"[::1]:4739\", transport: tcp, observation_domain: 7, "
                                    "template_refresh: 30, active_timeout: 120, mtu: 9000}}\n",
                                "t.yaml");
  ASSERT_TRUE(c.ipfix.has_value());
  EXPECT_EQ(c.ipfix->host, "::1");
  EXPECT_EQ(c.ipfix->port, 4739);
  EXPECT_EQ(c.ipfix->transport, ExportConfig::Transport::kTcp);
  EXPECT_EQ(c.ipfix->observation_domain, 7u);
  EXPECT_DOUBLE_EQ(c.ipfix->active_timeout_s, 120);
  EXPECT_EQ(c.ipfix->mtu, 9000u);
  EXPECT_DOUBLE_EQ(c.idle_timeout_s, 20);
  EXPECT_FALSE(parse_config(kGood, "t.yaml").ipfix.has_value());
  const std::string base = kGood;
  for (const auto& [extra, expect] : std::vector<std::pair<std::string, std::string>>{
           {"exporters: {ipfix: {transport: udp}}\n", "exporters.ipfix.collector: missing: give HOST:PORT"},
           {"exporters: {ipfix: {collector: \"collector\"}}\n", "exporters.ipfix.collector: expected HOST:PORT"},
           {"exporters: {ipfix: {collector: \"h:0\"}}\n", "exporters.ipfix.collector: port must be 1-65535"},
           {"exporters: {ipfix: {collector: \"h:1\", transport: sctp}}\n", "exporters.ipfix.transport: expected udp or tcp"},
           {"exporters: {ipfix: {collector: \"h:1\", mtu: 100}}\n", "exporters.ipfix.mtu: must be between 576"},
           {"exporters: {ipfix: {collector: \"h:1\", ring_size: 1000}}\n", "exporters.ipfix.ring_size: must be a power of two"},
           {"exporters: {netflow: {}}\n", "exporters: unknown key 'netflow'"},
           {"flow_table: {idle_timeout_s: 30}\nexporters: {ipfix: {collector: \"h:1\", idle_timeout: 10}}\n",
            "exporters.ipfix.idle_timeout: differs from flow_table.idle_timeout_s"}}) {
    std::string err;
    try {
      parse_config(base + extra, "t.yaml");
    } catch (const ConfigError& e) {
      err = e.what();
    }
    EXPECT_NE(err.find(expect), std::string::npos) << extra << " -> " << err;
    EXPECT_EQ(err.find('\n'), std::string::npos);
  }
}

TEST(Config, ShortPciAddressGetsTheDomain) {
  PortConfig p;
  p.device = "3B:00.0";
  EXPECT_TRUE(p.is_pci());
  EXPECT_EQ(p.dpdk_name(), "0000:3b:00.0");
}

TEST(Config, OverridesApplyBeforeValidation) {
  const Config c = parse_config(kGood, "t.yaml", {"inference.batch=16", "ports.0.rx_desc=256", "clock=tsc"});
  EXPECT_EQ(c.batch, 16u);
  EXPECT_EQ(c.ports[0].rx_desc, 256u);
  EXPECT_EQ(c.clock, ClockMode::kTsc);
  EXPECT_NE(error_of(kGood, {"inference.batch"}).find("expected key=value"), std::string::npos);
  EXPECT_NE(error_of(kGood, {"inference.batchsize=3"}).find("unknown key 'batchsize'"), std::string::npos);
}

TEST(Config, IntegersAreDecimal) {  // issue 17: "capacity: 010" was read as octal 8
  const Config c = parse_config(kGood, "t.yaml", {"flow_table.capacity=0100", "inference.batch=032"});
  EXPECT_EQ(c.table_capacity, 100u);  // not 64
  EXPECT_EQ(c.batch, 32u);
  EXPECT_NE(error_of(kGood, {"inference.batch=0x20"}).find("expected a whole number, got '0x20'"), std::string::npos);
  EXPECT_NE(error_of(kGood, {"inference.batch=+3"}).find("expected a whole number"), std::string::npos);
}

TEST(Config, WindowMinIpLenIsReadAndBounded) {  // issue 10: packets under N bytes enter no window
  const Config c = parse_config(std::string(kGood) + "window: {min_ip_len: 53}\n", "t.yaml");
  ASSERT_TRUE(c.window.has_value());
  EXPECT_EQ(c.window->min_ip_len, 53u);
  EXPECT_EQ(c.window_keys, (std::vector<std::string>{"min_ip_len"}));
  EXPECT_NE(error_of(std::string(kGood) + "window: {min_ip_len: 70000}\n").find("window.min_ip_len: must be between 0 and 65535"),
            std::string::npos);
}

TEST(Config, EveryMistakeIsOneLineSayingWhatToChange) {
  struct Case {
    std::string yaml_extra;  // appended or substituted
    std::string expect;
  };
  const std::string base = kGood;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {base + "bogus: 1\n", "unknown key 'bogus'"},
      {base + "? [a, b]\n: 1\n", "a key must be a plain name"},  // fuzz/crashes/config: was a bad_conversion
      {std::string(kGood).replace(std::string(kGood).find("Chat: drop"), 10, "? [Chat]: drop"),
       "actions: a key must be a plain name"},
      {base + "flow_table: {capacity: lots}\n", "flow_table.capacity: expected a whole number, got 'lots'"},
      {base + "clock: sometimes\n", "clock: expected auto, trace or tsc"},
      {base + "inference: {batch: 0}\n", "inference.batch: must be between 1 and 4096"},
      {base + "window_ring: {size: 1000}\n", "window_ring.size: must be a power of two"},
      {std::string(kGood).replace(std::string(kGood).find("build: [0]"), 10, "build: [1]"),
       "CPU 1 is in both poll and build"},
      {std::string(kGood).replace(std::string(kGood).find("infer: [4, 5]"), 13, "infer: [0]"),
       "CPU 0 is in both build and infer"},
      {std::string(kGood).replace(std::string(kGood).find("poll: [1, 2, 3]"), 15, "poll: [1, 2]"),
       "lists 2 CPUs but the ports have 3 rx_queues"},
      {std::string(kGood).replace(std::string(kGood).find("peer: b"), 7, "peer: c"), "no port named 'c'"},
      {std::string(kGood).replace(std::string(kGood).find("\"512\"]"), 6, "\"512\", -l, \"0-3\"]"),
       "remove '-l'"},
      {std::string(kGood).replace(std::string(kGood).find("Chat: drop"), 10, "Chat: reject"),
       "actions.Chat: expected forward, drop or 'dscp N'"},
      {std::string(kGood).replace(std::string(kGood).find("\"dscp 34\""), 9, "\"dscp 64\""),
       "actions.Video: must be between 0 and 63"},
      {"ports: []\n", "ports: at least one port is needed"},
      {std::string(kGood).replace(std::string(kGood).find("model: m.fpm"), 12, ""), "model: missing"},
      {"ports: [oops\n", "not valid YAML"},
  };
  for (const auto& [yaml, expect] : cases) {
    const std::string err = error_of(yaml);
    EXPECT_NE(err.find(expect), std::string::npos) << "expected '" << expect << "' in: " << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
    EXPECT_EQ(err.rfind("config t.yaml: ", 0), 0u) << err;
  }
}

TEST(Config, EmbeddedReplayConfigIsValid) {
  const Config c = parse_config(embedded_replay_config(), "embedded");
  EXPECT_EQ(c.clock, ClockMode::kTrace);
  EXPECT_TRUE(c.exit_at_end);
  ASSERT_EQ(c.ports.size(), 1u);
  EXPECT_NE(c.ports[0].device.find("rx_pcap=tests/data/"), std::string::npos);
}

// Issue 16: relative run-time paths land in the instance's run directory; absolute ones stay.
TEST(Config, RelativeRunTimePathsResolveInTheRunDirectory) {
  setenv("FLOWPICD_RUN_DIR", "/x/base", 1);
  const std::string yaml = std::string(kGood) +
                           "control: {socket: control.sock}\noutputs: {verdicts: v/verdicts.jsonl}\n";
  const Config c = parse_config(yaml, "configs/lab.yaml",
                                {"ports.0.device=net_memif0,role=server,socket=lab.memif"});
  EXPECT_EQ(c.instance, "lab");
  EXPECT_EQ(c.run_dir, "/x/base/lab");
  EXPECT_EQ(c.control_socket, "/x/base/lab/control.sock");
  EXPECT_EQ(c.verdicts, "/x/base/lab/v/verdicts.jsonl");
  // DPDK 22.11 memif sockets are abstract by default: a file in the run dir needs socket-abstract=no.
  EXPECT_EQ(c.ports[0].device, "net_memif0,role=server,socket=/x/base/lab/lab.memif,socket-abstract=no");

  // run_dir: and instance: win; absolute paths, stdout and an explicitly abstract memif socket stay.
  const Config d = parse_config(yaml + "instance: edge-1\nrun_dir: /srv/fp/\n", "configs/lab.yaml",
                                {"ports.0.device=net_memif0,socket=m.sock,socket-abstract=yes",
                                 "control.socket=/run/other.sock", "outputs.verdicts=stdout"});
  EXPECT_EQ(d.instance, "edge-1");
  EXPECT_EQ(d.run_dir, "/srv/fp");
  EXPECT_EQ(d.control_socket, "/run/other.sock");
  EXPECT_EQ(d.verdicts, "stdout");
  EXPECT_EQ(d.ports[0].device, "net_memif0,socket=m.sock,socket-abstract=yes");

  unsetenv("FLOWPICD_RUN_DIR");
  EXPECT_EQ(parse_config(kGood, "/etc/flowpic/inline.yaml").run_dir, "/run/flowpicd/inline");
  EXPECT_EQ(parse_config(embedded_replay_config(), "<embedded configs/replay.yaml>").control_socket,
            "/run/flowpicd/replay/control.sock");

  // Mistakes name the key and the fix.
  EXPECT_NE(error_of(std::string(kGood) + "instance: ../etc\n").find("instance: '../etc' is no instance name"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kGood) + "run_dir: rel/dir\n").find("run_dir: must be an absolute path"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kGood) + "group: adm\n").find("group: needs user:"), std::string::npos);
  setenv("FLOWPICD_RUN_DIR", "relative", 1);
  EXPECT_NE(error_of(kGood).find("$FLOWPICD_RUN_DIR must be an absolute path"), std::string::npos);
  unsetenv("FLOWPICD_RUN_DIR");
}

TEST(Dscp, Ipv4RewriteKeepsEcnAndAValidChecksum) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 2000; ++trial) {
    auto f = flowpic::test::udp4_frame(rng(), rng(), static_cast<uint16_t>(rng()), static_cast<uint16_t>(rng()),
                                       static_cast<uint16_t>(28 + rng() % 1400), static_cast<uint8_t>(rng()));
    uint8_t* ip = f.data() + 14;
    ip[4] = static_cast<uint8_t>(rng());  // vary the id so checksums vary
    const uint16_t c = ip_checksum((ip[10] = 0, ip[11] = 0, ip), 20);
    ip[10] = static_cast<uint8_t>(c >> 8);
    ip[11] = static_cast<uint8_t>(c);
    const uint8_t ecn = ip[1] & 3;
    const uint8_t dscp = static_cast<uint8_t>(rng() % 64);
    ASSERT_TRUE(rewrite_dscp(ip, 20, dscp));
    EXPECT_EQ(ip[1] >> 2, dscp);
    EXPECT_EQ(ip[1] & 3, ecn);
    EXPECT_EQ(ip_checksum(ip, 20), 0) << "checksum must verify (sum of header words = 0xffff)";
  }
}

TEST(Dscp, Ipv6RewriteTouchesOnlyTheTrafficClass) {
  auto f = flowpic::test::udp6_frame(1, 2, 1000, 2000, 100, 0xA3);  // DSCP 40, ECN 3
  uint8_t* ip = f.data() + 14;
  ip[1] |= 0x0f;  // flow label bits next to the traffic class
  ip[2] = 0xab;
  ASSERT_TRUE(rewrite_dscp(ip, 40, 46));
  const uint8_t tc = static_cast<uint8_t>(((ip[0] & 0x0f) << 4) | (ip[1] >> 4));
  EXPECT_EQ(tc >> 2, 46);
  EXPECT_EQ(tc & 3, 3);
  EXPECT_EQ(ip[0] >> 4, 6);
  EXPECT_EQ(ip[1] & 0x0f, 0x0f);
  EXPECT_EQ(ip[2], 0xab);
}

TEST(Dscp, RefusesWhatItCannotRewrite) {
  uint8_t short_v4[10] = {0x45};
  EXPECT_FALSE(rewrite_dscp(short_v4, sizeof short_v4, 10));
  uint8_t arp[20] = {0x00};
  EXPECT_FALSE(rewrite_dscp(arp, sizeof arp, 10));
}

TEST(Latency, PercentilesWithinTheBucketError) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100000; ++v) h.record(v * 1000);  // 1 us .. 100 ms uniformly
  EXPECT_EQ(h.count(), 100000u);
  const double p50 = static_cast<double>(h.percentile(50)), p99 = static_cast<double>(h.percentile(99));
  EXPECT_NEAR(p50, 50e6, 50e6 * 0.125);
  EXPECT_NEAR(p99, 99e6, 99e6 * 0.125);
  EXPECT_EQ(h.max(), 100000u * 1000u);
  LatencyHistogram empty;
  EXPECT_EQ(empty.percentile(99), 0u);
}

TEST(Clock, TscConversionIsExact) {
  TscClock c;
  c.init(2'500'000'000ULL, 1000, 5'000'000'000ULL);
  EXPECT_EQ(c.to_ns(1000), 5'000'000'000ULL);
  EXPECT_NEAR(static_cast<double>(c.to_ns(1000 + 2'500'000'000ULL)), 6e9, 2.0);
  EXPECT_NEAR(static_cast<double>(c.to_ns(1000 + 25'000'000'000'000ULL)), 5e9 + 1e13, 1e4);  // ~2.8 h later
}

TEST(SweepPacer, PeriodIsAnEighthOfTheIdleTimeoutWithinBounds) {
  EXPECT_EQ(sweep_period(30 * kNsPerSec), kNsPerSec);           // configs' 30 s: once a second
  EXPECT_EQ(sweep_period(4 * kNsPerSec), kNsPerSec / 2);
  EXPECT_EQ(sweep_period(kNsPerMs), kNsPerMs);                   // never below 1 ms
}

TEST(SweepPacer, BusyPollsSweepTheTableOncePerPeriod) {
  // 1000 slots per second; a full burst every 0.1 ms for 3 s.
  SweepPacer p(1000, kNsPerSec, 0);
  uint64_t swept = 0, calls = 0;
  for (TimeNs t = 100'000; t <= 3 * kNsPerSec; t += 100'000) {
    const uint32_t b = p.budget(t, true, 64);
    EXPECT_TRUE(b == 0 || (b >= SweepPacer::kMinRun && b <= 64)) << b;
    swept += b;
    calls += b > 0;
  }
  EXPECT_GE(swept, 3000u - SweepPacer::kMinRun);  // what is owed, less a run not yet due
  EXPECT_LE(swept, 3000u);
  EXPECT_EQ(calls, swept / SweepPacer::kMinRun);  // in runs of kMinRun, not a slot per poll
}

TEST(SweepPacer, PollsWithTimeToSpareSweepAWholeBudget) {
  SweepPacer p(1'000'000, kNsPerSec, 0);
  EXPECT_EQ(p.budget(1000, false, 64), 64u);
  EXPECT_EQ(p.budget(2000, false, 64), 64u);
  EXPECT_EQ(p.budget(3000, true, 64), 0u);  // 1 slot owed per us: under a run
}

TEST(SweepPacer, OwesAtMostOneTableAndSurvivesTimeGoingBack) {
  SweepPacer p(100, kNsPerSec, 0);
  // An hour without a poll owes one table, not 3600: 100 slots, then the rate again.
  uint64_t swept = 0;
  for (int i = 0; i < 10; ++i) swept += p.budget(3600 * kNsPerSec, true, 64);
  EXPECT_EQ(swept, 100u);
  EXPECT_EQ(p.budget(3600 * kNsPerSec - 5, true, 64), 0u);  // a clock step back owes nothing
  EXPECT_EQ(p.budget(3600 * kNsPerSec + kNsPerSec / 10, true, 64), 10u);
}

// The RSS key flowpicd programs: DPDK's own software Toeplitz (the NIC's function) must give
// both directions of a connection the same hash, for IPv4 and IPv6, so one queue (one lcore)
// sees both; the usual random-looking key must not, or the test would prove nothing.
TEST(SymmetricRss, BothDirectionsHashAlikeWithTheKeyAndNotWithoutIt) {
  uint8_t key[40];
  symmetric_rss_key(key, sizeof key);
  uint8_t plain[40];
  std::mt19937 krng(5);
  for (auto& b : plain) b = static_cast<uint8_t>(krng());
  std::mt19937 rng(9);
  int plain_differs = 0;
  for (int i = 0; i < 5000; ++i) {
    rte_ipv4_tuple a{}, b{};
    a.src_addr = rng();
    a.dst_addr = rng();
    a.sport = static_cast<uint16_t>(rng());
    a.dport = static_cast<uint16_t>(rng());
    b.src_addr = a.dst_addr;
    b.dst_addr = a.src_addr;
    b.sport = a.dport;
    b.dport = a.sport;
    const uint32_t ha = rte_softrss(reinterpret_cast<uint32_t*>(&a), RTE_THASH_V4_L4_LEN, key);
    const uint32_t hb = rte_softrss(reinterpret_cast<uint32_t*>(&b), RTE_THASH_V4_L4_LEN, key);
    ASSERT_EQ(ha, hb) << i;
    plain_differs += rte_softrss(reinterpret_cast<uint32_t*>(&a), RTE_THASH_V4_L4_LEN, plain) !=
                     rte_softrss(reinterpret_cast<uint32_t*>(&b), RTE_THASH_V4_L4_LEN, plain);
    // IPv6: addresses as DPDK loads them (rte_thash_load_v6_addr byte-swaps per 32-bit word).
    rte_ipv6_tuple a6{}, b6{};
    for (int k = 0; k < 16; ++k) a6.src_addr[k] = static_cast<uint8_t>(rng()), a6.dst_addr[k] = static_cast<uint8_t>(rng());
    a6.sport = a.sport;
    a6.dport = a.dport;
    std::memcpy(b6.src_addr, a6.dst_addr, 16);
    std::memcpy(b6.dst_addr, a6.src_addr, 16);
    b6.sport = a6.dport;
    b6.dport = a6.sport;
    ASSERT_EQ(rte_softrss(reinterpret_cast<uint32_t*>(&a6), RTE_THASH_V6_L4_LEN, key),
              rte_softrss(reinterpret_cast<uint32_t*>(&b6), RTE_THASH_V6_L4_LEN, key)) << i;
  }
  EXPECT_GT(plain_differs, 4900);
  // And it still spreads: 5000 random connections over 8 queues (hash % 8, the default
  // redirection table) put 625 +- 100 in each.
  int per_queue[8] = {};
  for (int i = 0; i < 5000; ++i) {
    rte_ipv4_tuple a{};
    a.src_addr = rng();
    a.dst_addr = rng();
    a.sport = static_cast<uint16_t>(rng());
    a.dport = static_cast<uint16_t>(rng());
    ++per_queue[rte_softrss(reinterpret_cast<uint32_t*>(&a), RTE_THASH_V4_L4_LEN, key) % 8];
  }
  for (int q : per_queue) EXPECT_NEAR(q, 625, 100);
}

// Verdict output (issues 16 and 17): whole lines only, a new line after a cut one, no writing
// through a symlink, a full disk counted.
TEST(VerdictOutputTest, WholeLinesAfterACutOneAndNoSymlinks) {
  char tmpl[] = "/tmp/fpvoXXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl, path = dir + "/v.jsonl", target = dir + "/target", link = dir + "/link";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    std::fputs("{\"flow\":\"cut by a crash", f);  // no newline: killed mid-line
    std::fclose(f);
  }
  {
    VerdictOutput out(path);
    out.write("{\"a\":1}\n{\"b\":2}\n");
    out.write("{\"c\":3}\n");
    EXPECT_EQ(out.stats().lines, 3u);
  }
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[1], "{\"a\":1}");  // not spliced onto the cut line
  EXPECT_EQ(lines[3], "{\"c\":3}");
  // A symlink (e.g. planted in a world-writable directory) is refused; its target is untouched.
  { std::ofstream(target) << "precious\n"; }
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  try {
    VerdictOutput bad(link);
    ADD_FAILURE() << "wrote through a symlink";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("symlink"), std::string::npos) << e.what();
  }
  std::ifstream t(target);
  std::string content((std::istreambuf_iterator<char>(t)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "precious\n");
  // A full device: nothing written, every line counted as dropped, no exception.
  VerdictOutput full("/dev/full");
  full.write("{\"a\":1}\n{\"b\":2}\n");
  EXPECT_EQ(full.stats().lines, 0u);
  EXPECT_EQ(full.stats().dropped, 2u);
  EXPECT_EQ(full.stats().write_errors, 1u);
  std::filesystem::remove_all(dir);
}

// Issue 17: a model whose classes would pass the limit registers none of them.
TEST(ClassTableTest, RegistrationIsAllOrNothing) {
  ClassTable t;
  std::vector<std::string> many;
  for (int i = 0; i < ClassTable::kMaxClasses - 3; ++i) many.push_back("c" + std::to_string(i));
  std::vector<int16_t> ids;
  ASSERT_TRUE(t.intern_all(many, &ids));
  EXPECT_EQ(t.size(), ClassTable::kMaxClasses - 3);
  const std::vector<std::string> too_many = {"c0", "x1", "x2", "x3", "x4"};  // 4 new, 3 free
  EXPECT_FALSE(t.intern_all(too_many, &ids));
  EXPECT_EQ(t.size(), ClassTable::kMaxClasses - 3) << "a refused model registered some of its classes";
  ASSERT_TRUE(t.intern_all({"c5", "x1", "x2", "x3"}, &ids));
  EXPECT_EQ(ids, (std::vector<int16_t>{5, static_cast<int16_t>(ClassTable::kMaxClasses - 3),
                                       static_cast<int16_t>(ClassTable::kMaxClasses - 2),
                                       static_cast<int16_t>(ClassTable::kMaxClasses - 1)}));
}

// The summary and the stats spelled an undecided clock two ways ("auto" and "undecided").
TEST(LcoreClockName, OneSpellingPerState) {
  EXPECT_STREQ(lcore_clock_name(static_cast<uint8_t>(LcoreClock::kTrace)), "trace");
  EXPECT_STREQ(lcore_clock_name(static_cast<uint8_t>(LcoreClock::kTsc)), "tsc");
  EXPECT_STREQ(lcore_clock_name(static_cast<uint8_t>(LcoreClock::kUndecided)), "undecided");
  EXPECT_STREQ(lcore_clock_name(7), "undecided");
}
