// Integration tests: run the built flowpicd on DPDK net_pcap vdevs (--no-huge, unique
// --file-prefix, CPUs 0-1 only) and check its outputs against known answers.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "harness.hpp"

using namespace flowpic;
using namespace flowpic::test;
using nlohmann::json;

namespace {

class Flowpicd : public ::testing::Test {
 protected:
  void SetUp() override {
    if (flowpicd_bin().empty()) GTEST_SKIP() << "FLOWPICD not set (run through meson test)";
    setenv("FLOWPICD_RUN_DIR", (dir_ / "run").c_str(), 1);  // run directories here, not in /run
    unsetenv("FLOWPIC_SOCKET");
    model_ = dir_ / "random.fpm";
    make_model(model_);
  }
  std::string capture(const std::string& name) const { return test_data() + "/" + name; }
  ConfigSpec replay(const std::string& pcap, const std::string& tx = "") const {
    ConfigSpec c;
    c.model = model_;
    c.ports.push_back({"p0", "net_pcap0,rx_pcap=" + pcap + (tx.empty() ? "" : ",tx_pcap=" + tx), "p0"});
    return c;
  }
  static void expect_clean_run(const RunResult& r) {
    ASSERT_FALSE(r.timed_out) << r.err;
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_TRUE(r.summary.is_object()) << "no --summary-json written\n" << r.err;
  }
  // received = forwarded + dropped by action + tx_full, per port.
  static void expect_accounted(const json& summary) {
    for (const auto& p : summary["ports"]) {
      const uint64_t rx = p["rx"], fwd = p["forwarded"], act = p["dropped"]["action"], full = p["dropped"]["tx_full"];
      EXPECT_EQ(rx, fwd + act + full) << p.dump();
    }
  }
  static std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  }
  // Equal sorted sets of lines; on a mismatch shows a few lines from each side only.
  static void expect_same_lines(const std::vector<std::string>& a, const std::vector<std::string>& b,
                                const char* an, const char* bn) {
    const auto x = sorted(a), y = sorted(b);
    if (x == y) return;
    std::vector<std::string> only_x, only_y;
    std::set_difference(x.begin(), x.end(), y.begin(), y.end(), std::back_inserter(only_x));
    std::set_difference(y.begin(), y.end(), x.begin(), x.end(), std::back_inserter(only_y));
    std::string msg = std::to_string(x.size()) + " lines from " + an + ", " + std::to_string(y.size()) + " from " + bn;
    for (std::size_t i = 0; i < std::min<std::size_t>(2, only_x.size()); ++i) msg += std::string("\nonly ") + an + ": " + only_x[i];
    for (std::size_t i = 0; i < std::min<std::size_t>(2, only_y.size()); ++i) msg += std::string("\nonly ") + bn + ": " + only_y[i];
    ADD_FAILURE() << msg;
  }
  // Replays tests/data/NAME through flowpicd and `flowpic classify` with model_: a clean run,
  // classify exits 0, the same verdict lines. Callers return on HasFatalFailure().
  void run_both(const std::string& name, const std::string& tag, RunResult* d, RunResult* c) {
    const std::string pcap = capture(name);
    *d = run_flowpicd(dir_.path(), yaml_config(replay(pcap)), tag + "d_" + name);
    expect_clean_run(*d);
    if (HasFatalFailure()) return;
    *c = run_process(flowpic_bin(), {"classify", pcap, "-m", model_}, dir_.path(), 120, tag + "c_" + name);
    ASSERT_EQ(c->exit_code, 0) << c->err;
    expect_same_lines(d->out_lines(), c->out_lines(), "flowpicd", "flowpic classify");
  }
  TempDir dir_;
  std::string model_;
};

// (1) + (2): verdicts equal `flowpic classify` window for window, and every packet is accounted for.
TEST_F(Flowpicd, VerdictsEqualFlowpicClassifyOnRealCaptures) {
  if (flowpic_bin().empty() || !std::filesystem::exists(flowpic_bin())) GTEST_SKIP() << "flowpic not built";
  const std::vector<std::string> captures = {"wa_voice.pcap", "zoom2.pcap", "linecall_falsepositve.pcap",
                                             "discord_mid_flow.pcap", "dns_fragmented.pcap"};
  // Not stun_wa_call.pcapng: its timestamps have nanoseconds, which net_pcap truncates to
  // microseconds (docs/flowpicd.md, "Trace time"); window times then differ by 1 us.
  std::size_t total = 0;
  for (const auto& name : captures) {
    SCOPED_TRACE(name);
    const std::string pcap = capture(name);
    RunResult d, c;
    run_both(name, "", &d, &c);
    if (HasFatalFailure()) return;
    const auto mine = d.out_lines();
    total += mine.size();
    // Every packet of the capture was received, and forwarded (no action configured).
    const auto packets = read_pcap_packets(pcap);
    const auto& port = d.summary["ports"][0];
    EXPECT_EQ(port["rx"].get<uint64_t>(), packets.size());
    EXPECT_EQ(port["forwarded"].get<uint64_t>(), packets.size());
    expect_accounted(d.summary);
    EXPECT_EQ(d.summary["verdicts"]["total"].get<uint64_t>(), mine.size());
    EXPECT_EQ(d.summary["windows"]["dropped"]["ring_full"].get<uint64_t>(), 0u);
  }
  EXPECT_GT(total, 50u) << "the captures should give a real number of verdicts";
}

// The shipped model (models/default.fpm, with its temperature; trained without any capture of
// tests/data) gives the same verdicts in flowpicd and `flowpic classify`, and on the README's demo
// capture, a Zoom call, it calls most windows of the call's media flows VoIP.
TEST_F(Flowpicd, ShippedModelGivesClassifysVerdictsAndCallsTheDemoCallVoIP) {
  if (flowpic_bin().empty() || !std::filesystem::exists(flowpic_bin())) GTEST_SKIP() << "flowpic not built";
  model_ = env_or("FLOWPIC_REPO", ".") + "/models/default.fpm";
  for (const std::string name : {"zoom2.pcap", "wa_voice.pcap"}) {
    SCOPED_TRACE(name);
    RunResult d, c;
    run_both(name, "shipped_", &d, &c);
    if (HasFatalFailure()) return;
    if (name != "zoom2.pcap") continue;
    // zoom2.pcap is a Zoom call: its media connections are UDP to Zoom's port 8801 (the one
    // other connection, TCP/443, is its control channel). Most media windows, and the final flow
    // verdict of most media connections, must be VoIP.
    int voip = 0, total = 0;
    std::map<std::string, std::string> last_flow_verdict;
    for (const auto& line : c.out_lines()) {
      const json v = json::parse(line);
      if (!(v["sport"] == 8801 || v["dport"] == 8801)) {
        EXPECT_EQ(v["proto"], 6) << line;
        continue;
      }
      ++total;
      voip += v["class"] == "VoIP";
      last_flow_verdict[v["flow"].get<std::string>()] = v["flow_verdict"]["class"].get<std::string>();
    }
    ASSERT_GE(total, 10);
    EXPECT_GT(2 * voip, total) << voip << " of " << total << " windows of the Zoom call are VoIP";
    int voip_flows = 0;
    for (const auto& [flow, cls] : last_flow_verdict) voip_flows += cls == "VoIP";
    EXPECT_GT(2 * voip_flows, static_cast<int>(last_flow_verdict.size())) << voip_flows << " of " << last_flow_verdict.size();
  }
}

// Issue 10: a two-channel model keys both directions of a connection to one flow on the lcore,
// and flowpicd still gives exactly `flowpic classify`'s verdicts. Every verdict's window holds
// packets of both directions here (the calls' media flows are two-way), so there are fewer
// flows than with the one-direction model on the same capture and each pair of one-way flows
// of a connection became one.
TEST_F(Flowpicd, BidirectionalModelPairsBothDirectionsAndEqualsClassify) {
  if (flowpic_bin().empty() || !std::filesystem::exists(flowpic_bin())) GTEST_SKIP() << "flowpic not built";
  WindowPolicy bi;
  bi.kind = WindowPolicy::Kind::kCount;
  bi.packets = 20;
  bi.min_packets = 10;
  bi.bidirectional = true;
  const std::string uni_model = model_;
  model_ = dir_ / "bi.fpm";
  make_model(model_, -1, 7, "dptest-bi", &bi);
  for (const std::string name : {"zoom2.pcap", "wa_voice.pcap"}) {
    SCOPED_TRACE(name);
    RunResult d, c;
    run_both(name, "bi_", &d, &c);
    if (HasFatalFailure()) return;
    EXPECT_EQ(d.summary["ports"][0]["rx"].get<uint64_t>(), read_pcap_packets(capture(name)).size());
    // Connections seen by the bidirectional run, as unordered endpoint pairs.
    auto endpoints = [](const json& v) {
      std::string a = v["src"].get<std::string>() + ":" + std::to_string(v["sport"].get<int>());
      std::string b = v["dst"].get<std::string>() + ":" + std::to_string(v["dport"].get<int>());
      return std::to_string(v["proto"].get<int>()) + " " + std::min(a, b) + " " + std::max(a, b);
    };
    std::set<std::string> bi_flows, bi_conns, uni_flows, uni_conns;
    for (const auto& line : d.out_lines()) {
      const json v = json::parse(line);
      bi_flows.insert(v["flow"].get<std::string>());
      bi_conns.insert(endpoints(v));
    }
    ASSERT_FALSE(bi_flows.empty());
    EXPECT_EQ(bi_flows.size(), bi_conns.size()) << "a connection appears as two flows";
    const RunResult u = run_process(flowpic_bin(), {"classify", capture(name), "-m", uni_model}, dir_.path(), 120,
                                    "uni_c_" + name);
    ASSERT_EQ(u.exit_code, 0) << u.err;
    for (const auto& line : u.out_lines()) {
      const json v = json::parse(line);
      uni_flows.insert(v["flow"].get<std::string>());
      uni_conns.insert(endpoints(v));
    }
    EXPECT_LT(bi_flows.size(), uni_flows.size()) << "both directions should have been paired";
    for (const auto& conn : uni_conns) EXPECT_TRUE(bi_conns.count(conn)) << conn;
  }
}

// Issue 17 (signals) and 16 (outputs that lose nothing silently): SIGHUP reopens the verdict
// file (logrotate's rename-then-HUP), SIGUSR1 prints a stats line, neither stops forwarding;
// every verdict is in one of the two files, whole.
TEST_F(Flowpicd, SighupReopensTheVerdictFileAndSigusr1PrintsStats) {
  const std::string v = dir_ / "v.jsonl";
  ConfigSpec c = replay(capture("wa_voice.pcap"));
  c.verdicts = v;
  c.exit_at_end = false;
  Daemon d(dir_.path(), yaml_config(c), "sig");
  auto wait_for = [&](auto pred, int seconds) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < end && d.running()) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return pred();
  };
  // The replay is done once the file has stopped growing for a second.
  std::size_t last = 0;
  int stable = 0;
  ASSERT_TRUE(wait_for([&] {
    const std::size_t n = read_file(v).size();
    stable = n > 0 && n == last ? stable + 1 : 0;
    last = n;
    return stable >= 20;
  }, 90)) << d.err();
  std::filesystem::rename(v, v + ".1");
  d.signal(SIGHUP);
  EXPECT_TRUE(wait_for([&] { return std::filesystem::exists(v); }, 20)) << "SIGHUP did not reopen\n" << d.err();
  d.signal(SIGUSR1);
  EXPECT_TRUE(wait_for([&] { return d.err().find("stats: rx 736") != std::string::npos; }, 20)) << d.err();
  ASSERT_TRUE(d.running());
  ASSERT_EQ(d.terminate(), 0) << d.err();
  const json sum = d.summary();
  ASSERT_TRUE(sum.is_object());
  const uint64_t total = sum["verdicts"]["total"];
  EXPECT_GT(total, 0u);
  EXPECT_EQ(sum["outputs"]["verdicts"]["lines"].get<uint64_t>(), total);
  EXPECT_EQ(sum["outputs"]["verdicts"]["dropped"].get<uint64_t>(), 0u);
  std::size_t lines = 0;
  for (const std::string f : {v + ".1", v}) {
    std::istringstream in(read_file(f));
    std::string line;
    while (std::getline(in, line)) {
      EXPECT_TRUE(json::parse(line, nullptr, false).is_object()) << line;
      ++lines;
    }
  }
  EXPECT_EQ(lines, total);
}

// Issue 17: whole lines across crashes. flowpicd is killed with SIGKILL three times while it is
// writing verdicts, and restarted each time on the same verdict file (appending). A record cut by
// a kill stays alone on its line (the next run starts on a new line), so every line but at most one
// per kill parses, and a cut line is never followed by a spliced record.
TEST_F(Flowpicd, KilledMidWriteLeavesOnlyWholeLinesAfterRestart) {
  const std::string pcap = dir_ / "killme.pcap";
  write_round_robin_capture(pcap, 20000, 20);
  const std::string v = dir_ / "killed.jsonl";
  constexpr int kKills = 3;
  std::size_t kills = 0;
  for (int round = 0; round < kKills; ++round) {
    SCOPED_TRACE(round);
    ConfigSpec c = replay(pcap);
    c.verdicts = v;
    c.prefix = unique_prefix();
    const std::size_t before = std::filesystem::exists(v) ? std::filesystem::file_size(v) : 0;
    Daemon d(dir_.path(), yaml_config(c), "kill" + std::to_string(round));
    // Kill once this run has written some 64 KiB of verdicts: it is writing them then.
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(90);
    while (std::chrono::steady_clock::now() < end && d.running() &&
           (!std::filesystem::exists(v) || std::filesystem::file_size(v) < before + 65536))
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    ASSERT_TRUE(d.running()) << "the run ended before it could be killed\n" << d.err();
    d.signal(SIGKILL);
    while (d.running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ++kills;
    // A killed run cannot remove its DPDK runtime directory: the test does, so the suite leaves none.
    const char* xdg = std::getenv("XDG_RUNTIME_DIR");
    for (const std::string base : {std::string("/var/run/dpdk/"), std::string(xdg ? xdg : "/nonexistent") + "/dpdk/"})
      std::filesystem::remove_all(base + c.prefix);
  }
  std::istringstream in(read_file(v));
  std::size_t good = 0, cut = 0;
  for (std::string line; std::getline(in, line);) {
    if (json::parse(line, nullptr, false).is_object()) {
      ++good;
      continue;
    }
    ++cut;
    EXPECT_EQ(line.rfind("{\"", 0), 0u) << "not a cut record: " << line.substr(0, 200);
    EXPECT_EQ(line.find("}{"), std::string::npos) << "two records spliced: " << line.substr(0, 200);
  }
  EXPECT_LE(cut, kills);
  EXPECT_GE(good, 3u * 65536 / 2048) << "too few whole lines (a verdict line is under 2 KiB)";
}

// A closed verdict pipe (`flowpicd | true`) and a full disk (/dev/full): flowpicd forwards every
// packet, exits 0 with its summary, and counts every verdict line it could not write.
TEST_F(Flowpicd, ClosedPipeAndFullDiskAreCountedAndForwardingGoesOn) {
  const std::string pcap = capture("zoom2.pcap");
  const std::size_t packets = read_pcap_packets(pcap).size();
  {
    const std::string cfg = dir_ / "pipe.yaml", sum = dir_ / "pipe.summary.json";
    write_file(cfg, yaml_config(replay(pcap)));
    const RunResult r = run_process("/bin/bash", {"-c", "'" + flowpicd_bin() + "' -c '" + cfg + "' --summary-json '" + sum +
                                                  "' | true"}, dir_.path(), 120, "pipe");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const json s = json::parse(read_file(sum), nullptr, false);
    ASSERT_TRUE(s.is_object()) << "flowpicd died on the closed pipe: no summary\n" << r.err;
    EXPECT_EQ(s["ports"][0]["rx"].get<uint64_t>(), packets);
    EXPECT_EQ(s["ports"][0]["forwarded"].get<uint64_t>(), packets);
    const auto& o = s["outputs"]["verdicts"];
    EXPECT_GT(o["dropped"].get<uint64_t>(), 0u);
    EXPECT_EQ(o["lines"].get<uint64_t>() + o["dropped"].get<uint64_t>(), s["verdicts"]["total"].get<uint64_t>());
  }
  {
    ConfigSpec c = replay(pcap);
    c.verdicts = "/dev/full";
    const RunResult r = run_flowpicd(dir_.path(), yaml_config(c), "full");
    expect_clean_run(r);
    if (HasFatalFailure()) return;
    EXPECT_EQ(r.summary["ports"][0]["forwarded"].get<uint64_t>(), packets);
    const auto& o = r.summary["outputs"]["verdicts"];
    EXPECT_EQ(o["lines"].get<uint64_t>(), 0u);
    EXPECT_EQ(o["dropped"].get<uint64_t>(), r.summary["verdicts"]["total"].get<uint64_t>());
    EXPECT_GE(o["write_errors"].get<uint64_t>(), 1u);
    EXPECT_NE(o["last_error"].get<std::string>().find("No space"), std::string::npos) << o.dump();
    EXPECT_NE(r.err.find("dropped"), std::string::npos) << "the summary should say verdicts were dropped";
  }
}

// Issue 17: `window_ring.on_full: wait` is lossless. A replay whose windows outrun inference
// through a tiny ring holds the lcore in back-pressure for long stretches; that is not an idle
// port, the replay goes to the end of the capture, and flowpicd gives classify's verdicts.
TEST_F(Flowpicd, WaitOnFullReplaysEveryPacketThroughATinyRing) {
  if (flowpic_bin().empty() || !std::filesystem::exists(flowpic_bin())) GTEST_SKIP() << "flowpic not built";
  const std::string pcap = dir_ / "many.pcap";
  constexpr uint32_t kFlows = 400, kPackets = 20;
  write_round_robin_capture(pcap, kFlows, kPackets);
  // The paper's 1500x1500 architecture: a batch of 64 windows takes about half a second here,
  // longer than the replay's idle limit (400 ms), so the lcore waits that long for ring room.
  ModelInfo info;
  info.arch = Arch::kFlowPic;
  info.picture.resolution = 1500;
  info.picture.window.packets = 20;
  info.picture.window.min_packets = 10;
  info.classes = default_classes();
  info.name = "slow";
  model_ = dir_ / "slow.fpm";
  Model::create(info, 3)->save(model_);
  ConfigSpec c = replay(pcap);
  c.on_full = "wait";
  c.ring_size = 64;  // the smallest allowed
  const RunResult d = run_flowpicd(dir_.path(), yaml_config(c), "wait", {}, 300);
  expect_clean_run(d);
  if (HasFatalFailure()) return;
  EXPECT_EQ(d.summary["ports"][0]["rx"].get<uint64_t>(), uint64_t{kFlows} * kPackets) << d.err;
  EXPECT_EQ(d.summary["verdicts"]["total"].get<uint64_t>(), uint64_t{kFlows}) << d.err;
  EXPECT_EQ(d.summary["windows"]["dropped"]["ring_full"].get<uint64_t>(), 0u);
  EXPECT_GT(d.summary["lcores"][0]["backpressure_s"].get<double>(), 0.4) << "the tiny ring never held the lcore long";
  const RunResult cl = run_process(flowpic_bin(), {"classify", pcap, "-m", model_}, dir_.path(), 300, "wait_c");
  ASSERT_EQ(cl.exit_code, 0) << cl.err;
  expect_same_lines(d.out_lines(), cl.out_lines(), "flowpicd", "flowpic classify");
}

// Issue 17: a replay of a capture that is not Ethernet (Linux SLL, raw IP, BSD loopback) gave no
// verdict and exit 0, every packet counted not_ip. flowpicd now refuses it at start, naming the
// link type and what to do (libpcap reports LINKTYPE_RAW 101 as DLT_RAW 12); `flowpic classify`
// reads the same files.
TEST_F(Flowpicd, NonEthernetReplaysAreRefusedNamingTheLinkType) {
  for (const auto& [name, dlt] : std::vector<std::pair<std::string, std::string>>{
           {"dns2tcp_tunnel.pcap", "113"}, {"codm.pcap", "12"}, {"nats.pcap", "0"}}) {
    SCOPED_TRACE(name);
    const RunResult r = run_flowpicd(dir_.path(), yaml_config(replay(capture(name))), "dlt");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("has link type " + dlt), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("flowpic classify"), std::string::npos) << r.err;
    if (flowpic_bin().empty()) continue;
    const RunResult c = run_process(flowpic_bin(), {"classify", capture(name), "-m", model_}, dir_.path(), 120, "dlt_c");
    EXPECT_EQ(c.exit_code, 0) << c.err;
  }
}

// Issue 17: every run left /var/run/dpdk/<prefix>/ behind (the suite's unique prefixes piled
// up gigabytes of tmpfs); flowpicd removes its runtime directory at exit.
// Issue 17: a corrupt or truncated replay capture is said loudly and counted, as `flowpic
// classify` does (exit 3): a warning at start and in the summary, and the summary's
// ports[].capture holds the packets before the bad record and libpcap's error.
TEST_F(Flowpicd, CorruptOrTruncatedCaptureIsWarnedAndCounted) {
  const std::string good = capture("wa_voice.pcap");
  const std::string bytes = read_file(good);
  const std::size_t packets = read_pcap_packets(good).size();
  // Truncated: the last record loses its last 10 bytes.
  const std::string cut = dir_ / "cut.pcap";
  write_file(cut, bytes.substr(0, bytes.size() - 10));
  // Corrupt: record 6's caplen set to 0x7fffffff (the pcap header is 24 bytes, each record 16 + caplen).
  std::string bad = bytes;
  std::size_t off = 24;
  for (int i = 0; i < 5; ++i) {
    uint32_t caplen = 0;
    std::memcpy(&caplen, bad.data() + off + 8, 4);
    off += 16 + caplen;
  }
  const uint32_t huge = 0x7fffffff;
  std::memcpy(bad.data() + off + 8, &huge, 4);
  const std::string corrupt = dir_ / "corrupt.pcap";
  write_file(corrupt, bad);
  for (const auto& [file, before] : std::vector<std::pair<std::string, uint64_t>>{{cut, packets - 1}, {corrupt, 5}}) {
    SCOPED_TRACE(file);
    const RunResult r = run_flowpicd(dir_.path(), yaml_config(replay(file)), "corrupt");
    expect_clean_run(r);
    if (HasFatalFailure()) return;
    EXPECT_NE(r.err.find("is corrupt or truncated after " + std::to_string(before) + " packets"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("WARNING: capture"), std::string::npos) << "the summary must repeat it\n" << r.err;
    const auto& c = r.summary["ports"][0]["capture"];
    EXPECT_EQ(c["packets"].get<uint64_t>(), before) << c.dump();
    EXPECT_TRUE(c["error"].is_string()) << c.dump();
    const RunResult cl = run_process(flowpic_bin(), {"classify", file, "-m", model_}, dir_.path(), 60, "corrupt_c");
    EXPECT_EQ(cl.exit_code, 3) << cl.err;
  }
  // A whole capture: no warning, error null.
  const RunResult ok = run_flowpicd(dir_.path(), yaml_config(replay(good)), "whole");
  expect_clean_run(ok);
  EXPECT_EQ(ok.err.find("corrupt or truncated"), std::string::npos) << ok.err;
  EXPECT_TRUE(ok.summary["ports"][0]["capture"]["error"].is_null());
  EXPECT_EQ(ok.summary["ports"][0]["capture"]["packets"].get<uint64_t>(), packets);
}

// Issue 16: the summary was written with std::ofstream, as root, through whatever sat at its
// path. It is now written to a new file and renamed over the path: a planted symlink is replaced,
// its target untouched.
TEST_F(Flowpicd, SummaryReplacesASymlinkAndLeavesItsTargetAlone) {
  const std::string target = dir_ / "precious.txt";
  write_file(target, "keep me\n");
  const std::string cfg = dir_ / "sym.yaml", summary = dir_ / "sym.summary.json";
  write_file(cfg, yaml_config(replay(capture("wa_voice.pcap"))));
  ASSERT_EQ(symlink(target.c_str(), summary.c_str()), 0);
  const RunResult r = run_process(flowpicd_bin(), {"-c", cfg, "--summary-json", summary}, dir_.path(), 120, "sym");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(target), "keep me\n");
  EXPECT_FALSE(std::filesystem::is_symlink(summary));
  EXPECT_TRUE(json::parse(read_file(summary), nullptr, false).is_object());
  for (const auto& e : std::filesystem::directory_iterator(dir_.path()))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << "temporary left: " << e.path();
}

TEST_F(Flowpicd, LeavesNoDpdkRuntimeDirectory) {
  ConfigSpec c = replay(capture("zoom2.pcap"));
  c.prefix = unique_prefix();
  const RunResult r = run_flowpicd(dir_.path(), yaml_config(c), "rtdir");
  expect_clean_run(r);
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  for (const std::string base : {std::string("/var/run/dpdk/"), std::string(xdg ? xdg : "/nonexistent") + "/dpdk/",
                                 std::string("/tmp/dpdk/")})
    EXPECT_FALSE(std::filesystem::exists(base + c.prefix)) << base + c.prefix << " left behind";
}

// (3): action forward writes a tx_pcap whose packets equal the input, in order.
TEST_F(Flowpicd, ForwardWritesTheInputUnchangedInOrder) {
  const std::string in = capture("zoom2.pcap"), out = dir_ / "out.pcap";
  ConfigSpec c = replay(in, out);
  c.actions = "{VoIP: forward, Video: forward, File_Transfer: forward, Chat: forward, Browsing: forward}";
  const RunResult r = run_flowpicd(dir_.path(), yaml_config(c));
  expect_clean_run(r);
  EXPECT_FALSE(r.out_lines().empty());
  int dlt = 0;
  const auto a = read_pcap_packets(in), b = read_pcap_packets(out, &dlt);
  EXPECT_EQ(dlt, DLT_EN10MB);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << "packet " << i;
  expect_accounted(r.summary);
}

// A capture for the action tests: 40 IPv4 UDP flows and 4 IPv6 UDP flows that each open with
// 20 packets (a full window), then a long round-robin tail over them so packets keep coming
// after the verdicts are back; plus "shy" flows of 5 packets (never classified) and ARP
// frames (not IP) spread through the tail.
struct ActionCapture {
  std::string path;
  std::set<std::string> shy_frames;  // bytes of every frame of the never-classified flows
  std::size_t packets = 0;
};

ActionCapture make_action_capture(const std::string& path, std::size_t tail) {
  ActionCapture ac;
  ac.path = path;
  PcapWriter w(path);
  uint64_t t = 1'700'000'000'000'000ULL;
  auto frame_of = [](std::size_t flow, uint16_t len) {
    if (flow < 40)
      return udp4_frame(0x0a000001 + static_cast<uint32_t>(flow), 0x0a100001, static_cast<uint16_t>(10000 + flow),
                        4000, len, /*tos ECN*/ 0x01);
    return udp6_frame(static_cast<uint8_t>(flow), 0xfe, static_cast<uint16_t>(10000 + flow), 4000,
                      static_cast<uint16_t>(len - 40), 0x02);
  };
  const std::size_t flows = 44;
  for (std::size_t f = 0; f < flows; ++f)
    for (int k = 0; k < 20; ++k, ++ac.packets) w.add(frame_of(f, static_cast<uint16_t>(60 + 37 * k % 900)), t += 100);
  std::vector<uint8_t> arp(60, 0);
  arp[12] = 0x08;
  arp[13] = 0x06;
  for (std::size_t i = 0; i < tail; ++i, ++ac.packets) {
    if (i % 5000 == 4999) {  // a shy flow: 5 packets, never a window
      for (int k = 0; k < 5; ++k, ++ac.packets) {
        auto f = udp4_frame(0xc0a80001 + static_cast<uint32_t>(i), 0xc0a80101, 5353, 5353, 80);
        ac.shy_frames.insert(std::string(f.begin(), f.end()));
        w.add(f, t += 10);
      }
    }
    if (i % 1000 == 0) {
      w.add(arp, t += 10);
      ++ac.packets;
    }
    w.add(frame_of(i % flows, static_cast<uint16_t>(60 + 3 * (i % 97))), t += 10);
  }
  return ac;
}

// (4a): dscp rewrites the field (IPv4 TOS keeping ECN, with a valid checksum; IPv6 traffic
// class) of the classified flows' packets once their verdict is back, and nothing else.
TEST_F(Flowpicd, DscpRewritesTheFieldWithAValidChecksum) {
  const std::string winner = dir_ / "voip.fpm";
  make_model(winner, /*VoIP*/ 0);
  const ActionCapture ac = make_action_capture(dir_ / "actions.pcap", 200000);
  const std::string out = dir_ / "dscp_out.pcap";
  ConfigSpec c = replay(ac.path, out);
  c.idle_ms = 1500;  // a long capture: never mistake a slow disk read for its end
  c.model = winner;
  c.actions = "{VoIP: dscp 46}";
  c.verdicts = dir_ / "verdicts.jsonl";
  const RunResult r = run_flowpicd(dir_.path(), yaml_config(c), "dscp", {}, 300);
  expect_clean_run(r);
  expect_accounted(r.summary);
  const auto a = read_pcap_packets(ac.path), b = read_pcap_packets(out);
  ASSERT_EQ(a.size(), b.size()) << "dscp must not drop anything";
  uint64_t marked4 = 0, marked6 = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] == b[i]) continue;
    ASSERT_EQ(a[i].size(), b[i].size());
    const auto* x = reinterpret_cast<const uint8_t*>(a[i].data());
    const auto* y = reinterpret_cast<const uint8_t*>(b[i].data());
    if (x[12] == 0x08) {  // IPv4: only TOS and checksum differ
      for (std::size_t k = 0; k < a[i].size(); ++k)
        if (k != 15 && k != 24 && k != 25) ASSERT_EQ(x[k], y[k]) << "packet " << i << " byte " << k;
      EXPECT_EQ(y[15] >> 2, 46);
      EXPECT_EQ(y[15] & 3, 1) << "ECN bits kept";
      EXPECT_EQ(ip_checksum(y + 14, 20), 0) << "IPv4 header checksum must verify, packet " << i;
      ++marked4;
    } else {  // IPv6: only the traffic class bits of bytes 14-15 differ
      for (std::size_t k = 0; k < a[i].size(); ++k)
        if (k != 14 && k != 15) ASSERT_EQ(x[k], y[k]) << "packet " << i << " byte " << k;
      const uint8_t tc = static_cast<uint8_t>(((y[14] & 0x0f) << 4) | (y[15] >> 4));
      EXPECT_EQ(tc, (46 << 2) | 2);
      EXPECT_EQ(y[15] & 0x0f, x[15] & 0x0f) << "flow label kept";
      ++marked6;
    }
    EXPECT_EQ(ac.shy_frames.count(a[i]), 0u) << "a flow without a verdict was re-marked";
  }
  EXPECT_GT(marked4, 1000u) << "verdicts should come back while the tail is still flowing";
  EXPECT_GT(marked6, 0u);
  EXPECT_EQ(r.summary["lcores"][0]["dscp_marked"].get<uint64_t>(), marked4 + marked6);
}

// (4b) + (2): drop drops only the packets of flows whose class says drop; every packet is
// accounted for; a class that never wins drops nothing.
TEST_F(Flowpicd, DropDropsOnlyThatClass) {
  const std::string winner = dir_ / "voip.fpm";
  make_model(winner, /*VoIP*/ 0);
  const ActionCapture ac = make_action_capture(dir_ / "actions.pcap", 200000);
  const auto in = read_pcap_packets(ac.path);
  ASSERT_EQ(in.size(), ac.packets);
  {  // the class that never wins: nothing dropped
    const std::string out = dir_ / "video_out.pcap";
    ConfigSpec c = replay(ac.path, out);
    c.idle_ms = 1500;
    c.model = winner;
    c.actions = "{Video: drop, Chat: drop}";
    c.verdicts = "none";
    const RunResult r = run_flowpicd(dir_.path(), yaml_config(c), "drop_video", {}, 300);
    expect_clean_run(r);
    EXPECT_EQ(r.summary["ports"][0]["dropped"]["action"].get<uint64_t>(), 0u);
    EXPECT_EQ(r.summary["ports"][0]["rx"].get<uint64_t>(), in.size()) << "the replay was ended before its end";
    EXPECT_EQ(read_pcap_packets(out).size(), in.size());
  }
  const std::string out = dir_ / "voip_out.pcap";
  ConfigSpec c = replay(ac.path, out);
  c.idle_ms = 1500;
  c.model = winner;
  c.actions = "{VoIP: drop}";
  const RunResult r = run_flowpicd(dir_.path(), yaml_config(c), "drop_voip", {}, 300);
  expect_clean_run(r);
  expect_accounted(r.summary);
  const auto& port = r.summary["ports"][0];
  const auto outp = read_pcap_packets(out);
  EXPECT_EQ(port["rx"].get<uint64_t>(), in.size());
  EXPECT_EQ(port["forwarded"].get<uint64_t>(), outp.size());
  EXPECT_GT(port["dropped"]["action"].get<uint64_t>(), 1000u);
  // The output is the input minus dropped packets, in order; the dropped ones all belong to
  // flows with a VoIP verdict (never the shy flows, never ARP).
  std::set<std::string> classified;  // "src sport" of flows with a verdict
  for (const auto& line : r.out_lines()) {
    const json v = json::parse(line);
    EXPECT_EQ(v["class"], "VoIP");
    classified.insert(v["flow"].get<std::string>());
  }
  EXPECT_EQ(classified.size(), 44u);
  std::size_t j = 0, dropped = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (j < outp.size() && outp[j] == in[i]) {
      ++j;
      continue;
    }
    ++dropped;
    const auto* x = reinterpret_cast<const uint8_t*>(in[i].data());
    EXPECT_TRUE(x[12] == 0x08 || x[12] == 0x86) << "a non-IP frame was dropped";
    EXPECT_EQ(ac.shy_frames.count(in[i]), 0u) << "a flow without a verdict was dropped";
  }
  EXPECT_EQ(j, outp.size()) << "output is not an in-order subsequence of the input";
  EXPECT_EQ(dropped, port["dropped"]["action"].get<uint64_t>());
}

// (5): two polling lcores (two net_pcap rx queues, one capture each) give the same verdicts
// as one lcore per capture.
TEST_F(Flowpicd, TwoPollingLcoresGiveTheSameVerdictsAsOne) {
  const std::string a = capture("wa_voice.pcap"), b = capture("zoom2.pcap");
  std::vector<std::string> single;
  for (const auto& p : {a, b}) {
    const RunResult r = run_flowpicd(dir_.path(), yaml_config(replay(p)), "single_" + std::filesystem::path(p).stem().string());
    expect_clean_run(r);
    for (auto& l : r.out_lines()) single.push_back(l);
  }
  ConfigSpec c;
  c.model = model_;
  c.ports.push_back({"p0", "net_pcap0,rx_pcap=" + a + ",rx_pcap=" + b + ",tx_pcap=" + (dir_ / "t0.pcap") +
                               ",tx_pcap=" + (dir_ / "t1.pcap"),
                     "p0", 2});
  c.poll = "[0, 1]";
  c.build = "[]";
  c.infer = "[]";
  const RunResult r = run_flowpicd(dir_.path(), yaml_config(c), "dual");
  expect_clean_run(r);
  ASSERT_EQ(r.summary["lcores"].size(), 2u);
  for (const auto& l : r.summary["lcores"]) EXPECT_GT(l["rx"].get<uint64_t>(), 0u) << "both lcores must poll";
  expect_same_lines(r.out_lines(), single, "two lcores", "one lcore per capture");
  EXPECT_GT(single.size(), 30u);
  expect_accounted(r.summary);
  EXPECT_EQ(r.summary["ports"][0]["rx"].get<uint64_t>(), read_pcap_packets(a).size() + read_pcap_packets(b).size());
}

// (6): a flood of new flows past the table size: the table keeps what it has (documented
// policy: new flows are not tracked when full and no idle flow can be reclaimed), counts the
// rest, forwards every packet, and the process stays up and exits cleanly.
TEST_F(Flowpicd, FloodOfNewFlowsPastTheTableSize) {
  const std::string path = dir_ / "flood.pcap";
  const uint32_t flows = 20000;
  {
    PcapWriter w(path);
    uint64_t t = 1'700'000'000'000'000ULL;
    for (uint32_t i = 0; i < flows; ++i)  // 1 ms apart: all within the idle timeout
      w.add(udp4_frame(0x0b000000 + i, 0x0c000001, static_cast<uint16_t>(1024 + i % 60000), 53, 64), t += 1000);
  }
  ConfigSpec c = replay(path, dir_ / "flood_out.pcap");
  c.capacity = 1024;
  const RunResult r = run_flowpicd(dir_.path(), yaml_config(c), "flood");
  expect_clean_run(r);
  expect_accounted(r.summary);
  const auto& port = r.summary["ports"][0];
  EXPECT_EQ(port["rx"].get<uint64_t>(), flows);
  EXPECT_EQ(port["forwarded"].get<uint64_t>(), flows) << "untracked flows are still forwarded";
  const auto& f = r.summary["lcores"][0]["flows"];
  EXPECT_EQ(f["created"].get<uint64_t>(), 1024u);
  EXPECT_EQ(f["rejected_full"].get<uint64_t>(), flows - 1024u);
  EXPECT_EQ(f["untracked_packets"].get<uint64_t>(), flows - 1024u);
  EXPECT_EQ(read_pcap_packets(dir_ / "flood_out.pcap").size(), flows);
}

// clock auto picks trace on net_pcap (its packets carry timestamps); tsc works on the same
// capture (count windows do not depend on time, so the windows are the same ones: equal
// flow/index/packets/bytes; their times are now live wall-clock times).
TEST_F(Flowpicd, ClockAutoPicksTraceAndTscGivesTheSameCountWindows) {
  const std::string pcap = capture("zoom2.pcap");
  ConfigSpec c = replay(pcap);
  c.clock = "auto";
  const RunResult a = run_flowpicd(dir_.path(), yaml_config(c), "auto");
  expect_clean_run(a);
  EXPECT_EQ(a.summary["lcores"][0]["clock"], "trace");
  c.clock = "tsc";
  const RunResult t = run_flowpicd(dir_.path(), yaml_config(c), "tsc");
  expect_clean_run(t);
  EXPECT_EQ(t.summary["lcores"][0]["clock"], "tsc");
  auto shape = [](const RunResult& r) {
    std::vector<std::string> v;
    for (const auto& l : r.out_lines()) {
      const json j = json::parse(l);
      if (j["window"]["reason"] == "count")
        v.push_back(j["flow"].get<std::string>() + " " + std::to_string(j["window"]["index"].get<int>()) + " " +
                    std::to_string(j["packets"].get<int>()) + " " + std::to_string(j["bytes"].get<int>()));
    }
    return v;
  };
  const auto sa = shape(a), st = shape(t);
  EXPECT_FALSE(sa.empty());
  expect_same_lines(sa, st, "trace", "tsc");
  // tsc times are wall-clock times of this run, trace times are the capture's (2022).
  const json first = json::parse(t.out_lines().at(0));
  EXPECT_GT(first["window"]["start"].get<double>(), 1.7e9);
}

// SIGTERM on a live run (no exit_at_end): clean stop, open windows classified, summary written.
TEST_F(Flowpicd, SigtermStopsCleanlyWithASummary) {
  ConfigSpec c = replay(capture("wa_voice.pcap"));
  c.extra = "";
  std::string yaml = yaml_config(c);
  yaml.replace(yaml.find("exit_at_end: true"), std::string("exit_at_end: true").size(), "exit_at_end: false");
  const std::string cfg = dir_ / "live.yaml", summary = dir_ / "live.summary.json";
  write_file(cfg, yaml);
  const pid_t pid = fork();
  if (pid == 0) {
    const int fo = open((dir_ / "live.stdout").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int fe = open((dir_ / "live.stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fo, 1);
    dup2(fe, 2);
    execl(flowpicd_bin().c_str(), flowpicd_bin().c_str(), "-c", cfg.c_str(), "--summary-json", summary.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait for the capture to be read (the stats in the summary would show it anyway).
  for (int i = 0; i < 200 && read_file(dir_ / "live.stderr").find("placement") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << read_file(dir_ / "live.stderr");
  EXPECT_EQ(WEXITSTATUS(status), 0);
  const json s = json::parse(read_file(summary));
  EXPECT_EQ(s["stop_reason"], "signal SIGTERM");
  EXPECT_EQ(s["ports"][0]["rx"].get<uint64_t>(), read_pcap_packets(capture("wa_voice.pcap")).size());
  // The flushed windows (reason flush) were classified too.
  const std::string out = read_file(dir_ / "live.stdout");
  EXPECT_NE(out.find("\"reason\":\"flush\""), std::string::npos);
  EXPECT_EQ(s["verdicts"]["total"].get<uint64_t>(), s["windows"]["emitted"].get<uint64_t>());
}

// `--check` catches what would otherwise fail only after EAL and the ports had started (issue 17):
// a control socket path too long for sun_path, a socket under a regular file, a Prometheus address
// that is a host name, a model with more classes than a run can hold. One line each, exit 1.
TEST_F(Flowpicd, CheckCatchesWhatWouldFailAfterStart) {
  const std::string pcap = capture("wa_voice.pcap");
  write_file(dir_ / "plain-file", "not a directory\n");
  const std::string many = dir_ / "many-classes.fpm";
  {
    ModelInfo info;
    info.arch = Arch::kLeNet;
    for (int i = 0; i < 1024; ++i) info.classes.push_back("app" + std::to_string(i));
    info.name = "many";
    Model::create(info, 3)->save(many);
  }
  struct Case {
    std::string name, extra, model, expect;
  };
  const std::vector<Case> cases = {
      {"socket path too long", "control: {socket: /tmp/" + std::string(120, 's') + ".sock}\n", "", "control.socket: path is 130 bytes"},
      {"socket under a file", "control: {socket: " + (dir_ / "plain-file") + "/ctl.sock}\n", "", "is not a directory"},
      {"prometheus host name", "control: {prometheus: {enabled: true, address: localhost, port: 0}}\n", "",
       "control.prometheus.address: 'localhost' is not a numeric"},
      {"too many classes", "", many, "1024 classes, flowpicd holds at most 1023"},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.name);
    ConfigSpec spec = replay(pcap);
    spec.extra = k.extra;
    if (!k.model.empty()) spec.model = k.model;
    const RunResult r = run_flowpicd(dir_.path(), yaml_config(spec), "check", {"--check"}, 60);
    ASSERT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(k.expect), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("EAL"), std::string::npos) << "--check must not start DPDK: " << r.err;
  }
  // And the valid config passes --check.
  const RunResult ok = run_flowpicd(dir_.path(), yaml_config(replay(pcap)), "check-ok", {"--check"}, 60);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.err.find("config and model OK"), std::string::npos) << ok.err;
}

// Issue 17: every way flowpicd stops writes its summary and removes the control socket it made:
// SIGTERM, SIGINT, SIGQUIT, the end of a replay, and a start that fails after the socket was
// created (the Prometheus port taken). A SIGKILL cannot; the next start replaces the stale socket.
TEST_F(Flowpicd, EveryExitPathRemovesTheControlSocket) {
  const std::string sock = dir_ / "ctl.sock";
  auto spec = [&](bool exit_at_end) {
    ConfigSpec c = replay(capture("wa_voice.pcap"));
    c.exit_at_end = exit_at_end;
    c.extra = "control: {socket: " + sock + ", prometheus: {enabled: true, address: 127.0.0.1, port: 0}}\n";
    return c;
  };
  auto wait_socket = [&](Daemon& d) {
    for (int i = 0; i < 600 && d.running() && !std::filesystem::exists(sock); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return std::filesystem::exists(sock);
  };
  for (const auto& [sig, name] : std::vector<std::pair<int, std::string>>{
           {SIGTERM, "SIGTERM"}, {SIGINT, "SIGINT"}, {SIGQUIT, "SIGQUIT"}}) {
    SCOPED_TRACE(name);
    Daemon d(dir_.path(), yaml_config(spec(false)), "exit_" + name);
    ASSERT_TRUE(wait_socket(d)) << d.err();
    d.signal(sig);
    EXPECT_EQ(d.terminate(60), 0) << d.err();
    EXPECT_FALSE(std::filesystem::exists(sock)) << "socket left after " << name;
    const json s = d.summary();
    ASSERT_TRUE(s.is_object()) << d.err();
    EXPECT_EQ(s["stop_reason"], "signal " + name);
  }
  {
    SCOPED_TRACE("end of replay");
    const RunResult r = run_flowpicd(dir_.path(), yaml_config(spec(true)), "exit_end");
    expect_clean_run(r);
    EXPECT_FALSE(std::filesystem::exists(sock));
  }
  {
    SCOPED_TRACE("start fails after the socket");
    const int busy = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(busy, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(listen(busy, 1), 0);
    socklen_t len = sizeof a;
    getsockname(busy, reinterpret_cast<sockaddr*>(&a), &len);
    ConfigSpec c = spec(true);
    c.extra = "control: {socket: " + sock + ", prometheus: {enabled: true, address: 127.0.0.1, port: " +
              std::to_string(ntohs(a.sin_port)) + "}}\n";
    const RunResult r = run_flowpicd(dir_.path(), yaml_config(c), "exit_fail");
    close(busy);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("Address already in use"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("control socket listening"), std::string::npos) << "the socket was made first\n" << r.err;
    EXPECT_FALSE(std::filesystem::exists(sock));
  }
}

// Issue 16: nothing is created as root in a directory anyone may write to without the sticky
// bit (another user could swap the file in between); /tmp-like sticky directories are fine.
TEST_F(Flowpicd, RefusesOutputsInWorldWritableDirectoriesWithoutStickyBit) {
  const std::string open_dir = dir_ / "open", sticky = dir_ / "sticky";
  std::filesystem::create_directories(open_dir);
  std::filesystem::create_directories(sticky);
  ::chmod(open_dir.c_str(), 0777);
  ::chmod(sticky.c_str(), 01777);
  for (const auto& [what, extra, expect] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"verdicts", "", "outputs.verdicts: " + open_dir},
           {"socket", "control: {socket: " + open_dir + "/ctl.sock}\n", "control.socket: " + open_dir}}) {
    SCOPED_TRACE(what);
    ConfigSpec c = replay(capture("wa_voice.pcap"));
    if (what == "verdicts") c.verdicts = open_dir + "/v.jsonl";
    c.extra = extra;
    const RunResult r = run_flowpicd(dir_.path(), yaml_config(c), "ww", {"--check"}, 60);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(expect + " is world-writable without the sticky bit"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(open_dir + "/v.jsonl"));
  }
  ConfigSpec c = replay(capture("wa_voice.pcap"));
  c.verdicts = sticky + "/v.jsonl";
  c.extra = "control: {socket: " + sticky + "/run/ctl.sock}\n";
  const RunResult r = run_flowpicd(dir_.path(), yaml_config(c), "sticky");
  expect_clean_run(r);
  EXPECT_TRUE(std::filesystem::exists(sticky + "/v.jsonl"));
  struct stat st {};
  ASSERT_EQ(::stat((sticky + "/run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0750u) << "the socket's missing directory is created private";
}

// Start-up errors: one clear line on stderr, exit code 1.
TEST_F(Flowpicd, StartupErrorsStopWithOneClearLine) {
  const std::string pcap = capture("wa_voice.pcap");
  const std::string bad_model = dir_ / "corrupt.fpm";
  write_file(bad_model, "FPMODEL\0garbage");
  struct Case {
    std::string name;
    ConfigSpec spec;
    std::string expect;
  };
  std::vector<Case> cases;
  auto base = [&] { return replay(pcap); };
  {
    Case k{"unknown key", base(), "unknown key 'colour'"};
    k.spec.extra = "colour: blue\n";
    cases.push_back(k);
  }
  {
    Case k{"missing model", base(), "missing.fpm"};
    k.spec.model = dir_ / "missing.fpm";
    cases.push_back(k);
  }
  {
    Case k{"corrupt model", base(), "corrupt.fpm"};
    k.spec.model = bad_model;
    cases.push_back(k);
  }
  {
    Case k{"cores overlap", base(), "CPU 1 is in both poll and build"};
    k.spec.build = "[1]";
    cases.push_back(k);
  }
  {
    Case k{"cpu missing", base(), "CPU 77 does not exist"};
    k.spec.infer = "[77]";
    cases.push_back(k);
  }
  {
    Case k{"missing pcap", replay(dir_ / "nope.pcap"), "rx_pcap file"};
    cases.push_back(k);
  }
  {
    Case k{"window differs", base(), "window: differs from the model's"};
    k.spec.extra = "window: {kind: time, length_s: 15}\n";
    cases.push_back(k);
  }
  {
    Case k{"action for unknown class", base(), "actions.Gaming: model"};
    k.spec.actions = "{Gaming: drop}";
    cases.push_back(k);
  }
  {
    Case k{"mempool too small", base(), "mempool.size 100 is too small"};
    k.spec.mempool = "100";
    cases.push_back(k);
  }
  {
    Case k{"queues unsupported", base(), "rx_queues 2 but the device supports 1"};
    k.spec.ports[0].rx_queues = 2;
    k.spec.poll = "[0, 1]";
    k.spec.build = "[]";
    cases.push_back(k);
  }
  {
    Case k{"port missing", base(), "port p1: DPDK has no device '0000:7f:1f.7'"};
    k.spec.ports.push_back({"p1", "0000:7f:1f.7", "p1", 0});
    k.spec.extra = "";
    cases.push_back(k);
  }
  for (auto& k : cases) {
    SCOPED_TRACE(k.name);
    std::string yaml = yaml_config(k.spec);
    if (k.name == "port missing") {  // PCI scan must stay on for a PCI port
      const auto at = yaml.find(", --no-pci");
      yaml.erase(at, std::string(", --no-pci").size());
    }
    const RunResult r = run_flowpicd(dir_.path(), yaml, "err", {}, 60);
    ASSERT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    std::vector<std::string> ours;
    std::stringstream ss(r.err);
    for (std::string l; std::getline(ss, l);)
      if (l.rfind("flowpicd: ", 0) == 0) ours.push_back(l);
    ASSERT_EQ(ours.size(), 1u) << r.err;
    EXPECT_NE(ours[0].find(k.expect), std::string::npos) << ours[0];
    EXPECT_TRUE(r.out.empty()) << "no verdicts on a failed start";
  }
  // No hugepages reserved here: a config without --no-huge is refused before EAL starts.
  if (read_file("/proc/meminfo").find("HugePages_Free:        0") != std::string::npos) {
    std::string yaml = yaml_config(base());
    yaml.replace(yaml.find("--no-huge, -m, \"512\", "), std::string("--no-huge, -m, \"512\", ").size(), "");
    const RunResult r = run_flowpicd(dir_.path(), yaml, "nohuge", {}, 60);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("flowpicd: no free hugepages"), std::string::npos) << r.err;
  }
}

// ---------------------------------------------------------------- issue 16: run directory, service user

std::string flowpicctl_bin() { return env_or("FLOWPICCTL", ""); }


// A replay that keeps running after the capture (stopped by SIGTERM), with the given instance,
// control socket and verdict file named relative to its run directory.
std::string live_instance_yaml(ConfigSpec c, const std::string& instance) {
  c.exit_at_end = false;
  c.verdicts = "verdicts.jsonl";
  c.extra += "instance: " + instance + "\ncontrol: {socket: control.sock}\n";
  return yaml_config(c);
}

// The run directory is made 0750 for the instance, holds the socket and the verdict file, and its
// lock refuses a second flowpicd of the same instance before DPDK starts; flowpicctl finds the
// instance by name (-i) and on its own when it is the only one, and says which when several run.
TEST_F(Flowpicd, RunDirectoryIsPrivateLockedAndFoundByFlowpicctl) {
  if (flowpicctl_bin().empty()) GTEST_SKIP() << "FLOWPICCTL not set (run through meson test)";
  const std::string base = dir_ / "run", alpha = base + "/alpha", beta = base + "/beta";
  auto ctl = [&](std::vector<std::string> args, const std::string& tag) {
    return run_process(flowpicctl_bin(), args, dir_.path(), 60, tag);
  };
  {
    const RunResult none = ctl({"status"}, "ctl-none");
    EXPECT_EQ(none.exit_code, 3) << none.err;
    EXPECT_NE(none.err.find("no flowpicd instance runs"), std::string::npos) << none.err;
  }
  Daemon a(dir_.path(), live_instance_yaml(replay(capture("wa_voice.pcap")), "alpha"), "a");
  ASSERT_TRUE(wait_for_socket(a, alpha + "/control.sock")) << a.err();
  struct stat st {};
  ASSERT_EQ(::lstat(alpha.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(st.st_uid, ::geteuid());
  EXPECT_TRUE(std::filesystem::is_regular_file(alpha + "/verdicts.jsonl")) << "relative verdicts: in the run dir";
  EXPECT_TRUE(std::filesystem::is_regular_file(alpha + "/flowpicd.lock"));

  // Same instance again (another config file, another EAL prefix): refused, one line, before EAL.
  const RunResult twin = run_flowpicd(dir_.path(), live_instance_yaml(replay(capture("wa_voice.pcap")), "alpha"),
                                      "twin", {}, 60);
  EXPECT_EQ(twin.exit_code, 1) << twin.err;
  const auto lines = flowpicd_lines(twin.err);
  ASSERT_EQ(lines.size(), 1u) << twin.err;
  EXPECT_NE(lines[0].find("instance 'alpha' is already running (pid " + std::to_string(a.pid())), std::string::npos)
      << lines[0];
  EXPECT_NE(lines[0].find("another name with instance:"), std::string::npos) << lines[0];
  EXPECT_EQ(twin.err.find("EAL arguments"), std::string::npos) << "refused before DPDK starts";
  EXPECT_TRUE(a.running()) << "the first instance is untouched";

  // flowpicctl: by name, and alone without -i/-s.
  RunResult r = ctl({"-i", "alpha", "--json", "status"}, "ctl-i");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(json::parse(r.out).contains("version"));
  r = ctl({"--json", "status"}, "ctl-found");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ctl({"-i", "gamma", "status"}, "ctl-gamma").exit_code, 3);

  Daemon b(dir_.path(), live_instance_yaml(replay(capture("wa_voice.pcap")), "beta"), "b");
  ASSERT_TRUE(wait_for_socket(b, beta + "/control.sock")) << b.err();
  r = ctl({"status"}, "ctl-several");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("several flowpicd instances run under " + base + " (alpha, beta): choose one with -i"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(ctl({"-i", "beta", "--json", "status"}, "ctl-beta").exit_code, 0);
  EXPECT_EQ(b.terminate(), 0) << b.err();
  EXPECT_EQ(a.terminate(), 0) << a.err();
  EXPECT_FALSE(std::filesystem::exists(alpha + "/control.sock")) << "the socket is removed at stop";
  EXPECT_EQ(ctl({"status"}, "ctl-after").exit_code, 3);
}

// A run directory that someone else could have prepared is refused, naming it and the fix:
// world- or group-writable, a symlink, owned by another user (root only), or under a
// world-writable parent without the sticky bit.
TEST_F(Flowpicd, UnsafeRunDirectoriesAreRefused) {
  const std::string base = dir_ / "run";
  ASSERT_EQ(::mkdir(base.c_str(), 0755), 0);
  auto make = [](const std::string& p, mode_t mode) {
    ASSERT_EQ(::mkdir(p.c_str(), 0700), 0);
    ASSERT_EQ(::chmod(p.c_str(), mode), 0);
  };
  make(base + "/ww", 0777);
  make(base + "/gw", 0770);
  make(dir_ / "elsewhere", 0750);
  ASSERT_EQ(::symlink((dir_ / "elsewhere").c_str(), (base + "/ln").c_str()), 0);
  make(dir_ / "open", 0777);
  struct Case {
    std::string instance, extra, expect;
  };
  std::vector<Case> cases = {{"ww", "", "is group- or world-writable (mode 0777)"},
                             {"gw", "", "is group- or world-writable (mode 0770)"},
                             {"ln", "", "exists and is not a directory"},
                             {"sub", "run_dir: " + (dir_ / "open") + "/sub\n", "world-writable without the sticky bit"}};
  if (::geteuid() == 0) {
    make(base + "/other", 0750);
    ASSERT_EQ(::chown((base + "/other").c_str(), 65534, 65534), 0);
    cases.push_back({"other", "", "not by root: someone else made it"});
  }
  for (const auto& k : cases) {
    SCOPED_TRACE(k.instance);
    ConfigSpec c = replay(capture("wa_voice.pcap"));
    c.extra = "instance: " + k.instance + "\n" + k.extra;
    const RunResult r = run_flowpicd(dir_.path(), yaml_config(c), "unsafe", {}, 60);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    const auto lines = flowpicd_lines(r.err);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_NE(lines[0].find("run directory "), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find(k.expect), std::string::npos) << lines[0];
    EXPECT_EQ(r.err.find("EAL arguments"), std::string::npos) << "refused before DPDK starts";
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ / "elsewhere/flowpicd.lock")) << "nothing written through the symlink";
}

// A relative memif socket= lands in the run directory as a socket file (socket-abstract=no added:
// DPDK 22.11's memif PMD would make an abstract socket, in no directory, by default).
TEST_F(Flowpicd, RelativeMemifSocketIsAFileInTheRunDirectory) {
  ConfigSpec c = replay(capture("wa_voice.pcap"));
  c.ports[0].peer = "m0";
  c.ports.push_back({"m0", "net_memif0,role=server,socket=m0.memif", "m0", 0});  // TX only
  c.exit_at_end = false;
  c.extra = "instance: lab\n";
  const std::string sock = dir_ / "run/lab/m0.memif";
  Daemon d(dir_.path(), yaml_config(c), "memif");
  ASSERT_TRUE(wait_for_socket(d, sock)) << d.err();
  EXPECT_NE(d.err().find("--vdev=net_memif0,role=server,socket=" + sock + ",socket-abstract=no"), std::string::npos)
      << d.err();
  EXPECT_EQ(d.terminate(), 0) << d.err();
}

// --check validates user:/group: (and --user) without creating anything.
TEST_F(Flowpicd, CheckValidatesTheServiceUser) {
  ConfigSpec c = replay(capture("wa_voice.pcap"));
  struct Case {
    std::string extra;
    std::vector<std::string> args;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"user: flowpicd-no-such-user\n", {}, "user: no user 'flowpicd-no-such-user' on this system; create it (useradd"},
      {"user: nobody\ngroup: flowpicd-no-such-group\n", {}, "group: no group 'flowpicd-no-such-group'"},
      {"user: root\n", {}, "user: 'root' is root (uid 0)"},
      {"", {"--user", "flowpicd-no-such-user"}, "user: no user 'flowpicd-no-such-user'"},
  };
  const bool have_nobody = getpwnam("nobody") != nullptr;
  for (const auto& k : cases) {
    SCOPED_TRACE(k.extra + (k.args.empty() ? "" : k.args[1]));
    ConfigSpec s = c;
    s.extra = k.extra;
    std::vector<std::string> args = {"--check"};
    args.insert(args.end(), k.args.begin(), k.args.end());
    const RunResult r = run_flowpicd(dir_.path(), yaml_config(s), "chk", args, 60);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    const auto lines = flowpicd_lines(r.err);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_NE(lines[0].find(k.expect), std::string::npos) << lines[0];
  }
  if (have_nobody) {
    // The summary is written after the switch: a directory the user cannot write is refused...
    c.extra = "user: nobody\n";
    const RunResult bad = run_flowpicd(dir_.path(), yaml_config(c), "chksum", {"--check"}, 60);
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.err.find("--summary-json: " + dir_.path() + " is not writable by user nobody"), std::string::npos)
        << bad.err;
    // ...and without one the config passes, creating nothing.
    write_file(dir_ / "chkok.yaml", yaml_config(c));
    const RunResult ok = run_process(flowpicd_bin(), {"-c", dir_ / "chkok.yaml", "--check"}, dir_.path(), 60, "chkok");
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_FALSE(std::filesystem::exists(dir_ / "run/chkok")) << "--check creates no run directory";
  }
}

struct TaskCreds {
  std::string tid, name, uid, gid, cap_eff, cap_prm;
};
// Uid/Gid/CapEff/CapPrm lines of every thread of `pid` (/proc/PID/task/*/status).
std::vector<TaskCreds> task_creds(pid_t pid) {
  std::vector<TaskCreds> out;
  std::error_code ec;
  for (const auto& t : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream f(t.path() / "status");
    TaskCreds c;
    c.tid = t.path().filename().string();
    for (std::string line; std::getline(f, line);) {
      auto val = [&](const char* key) {
        std::string v = line.substr(std::strlen(key));
        v.erase(0, v.find_first_not_of(" \t"));
        return v;
      };
      if (line.rfind("Name:", 0) == 0) c.name = val("Name:");
      if (line.rfind("Uid:", 0) == 0) c.uid = val("Uid:");
      if (line.rfind("Gid:", 0) == 0) c.gid = val("Gid:");
      if (line.rfind("CapEff:", 0) == 0) c.cap_eff = val("CapEff:");
      if (line.rfind("CapPrm:", 0) == 0) c.cap_prm = val("CapPrm:");
    }
    if (!c.uid.empty()) out.push_back(c);
  }
  return out;
}

// Issue 16: with user: flowpicd switches every thread (main, EAL interrupt thread, polling lcore,
// builders, inference, control) to that user after start-up, keeps no capability, says so in the
// summary, and classifies exactly as a run as root.
TEST_F(Flowpicd, ReplayRunsAsAnUnprivilegedServiceUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: creating the user flowpicd-test and switching to it";
  const char* kUser = "flowpicd-test";
  if (!getpwnam(kUser)) {
    const int rc = std::system("useradd --system --no-create-home --shell /usr/sbin/nologin flowpicd-test");
    if (rc != 0 || !getpwnam(kUser)) GTEST_SKIP() << "useradd --system flowpicd-test failed (exit " << rc << ")";
  }
  const passwd* pw = getpwnam(kUser);
  const uid_t uid = pw->pw_uid;
  const gid_t gid = pw->pw_gid;
  const std::string uid_line = std::to_string(uid) + "\t" + std::to_string(uid) + "\t" + std::to_string(uid) + "\t" +
                               std::to_string(uid);
  const std::string gid_line = std::to_string(gid) + "\t" + std::to_string(gid) + "\t" + std::to_string(gid) + "\t" +
                               std::to_string(gid);

  // As root first: the reference verdicts (stopped by SIGTERM like the other run).
  const std::string pcap = capture("zoom2.pcap");
  auto run_live = [&](const std::string& tag, const std::string& extra, std::vector<TaskCreds>* creds) {
    ConfigSpec c = replay(pcap);
    c.exit_at_end = false;
    c.extra = "instance: " + tag + "\n" + extra;
    c.prefix = unique_prefix();
    const std::string yaml = yaml_config(c);
    Daemon d(dir_.path(), yaml, tag);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
    while (std::chrono::steady_clock::now() < deadline && d.running() &&
           d.err().find(extra.empty() ? "placement" : "threads checked, no capabilities") == std::string::npos)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_TRUE(d.running()) << d.err();
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the capture is read
    if (creds) *creds = task_creds(d.pid());
    EXPECT_EQ(d.terminate(), 0) << d.err();
    // DPDK's runtime directory was made by root: the service user cannot remove it (documented;
    // --in-memory, which would avoid it, does not go with --no-huge).
    std::error_code ec;
    std::filesystem::remove_all("/var/run/dpdk/" + c.prefix, ec);
    return std::make_pair(d.summary(), RunResult{0, false, d.out(), d.err(), {}});
  };
  // The service user must reach its run directory (to remove its socket) and write the summary.
  ASSERT_EQ(::chown(dir_.path().c_str(), uid, 0), 0);
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);

  const auto [root_sum, root_run] = run_live("asroot", "", nullptr);
  ASSERT_TRUE(root_sum.is_object()) << root_run.err;
  EXPECT_EQ(root_sum["process"]["uid"], 0);
  EXPECT_EQ(root_sum["process"]["switched"], false);

  std::vector<TaskCreds> threads;
  const auto [sum, run] =
      run_live("asuser", std::string("user: ") + kUser + "\ncontrol: {socket: control.sock}\n", &threads);
  ASSERT_TRUE(sum.is_object()) << run.err;
  // The summary's word...
  EXPECT_EQ(sum["process"]["user"], kUser);
  EXPECT_EQ(sum["process"]["uid"].get<uint64_t>(), uid);
  EXPECT_EQ(sum["process"]["gid"].get<uint64_t>(), gid);
  EXPECT_EQ(sum["process"]["switched"], true);
  EXPECT_GE(sum["process"]["threads_checked"].get<uint64_t>(), 4u);
  // ...and the kernel's, for every thread while it ran.
  ASSERT_GE(threads.size(), 4u);
  bool saw_lcore = false;
  std::string names;
  for (const auto& t : threads) {
    names += " " + t.name;
    SCOPED_TRACE("thread " + t.tid + " (" + t.name + ")");
    EXPECT_EQ(t.uid, uid_line);
    EXPECT_EQ(t.gid, gid_line);
    EXPECT_EQ(t.cap_eff, "0000000000000000");
    EXPECT_EQ(t.cap_prm, "0000000000000000");
    saw_lcore |= t.name.rfind("rte-worker-", 0) == 0;  // DPDK 22.11's name for lcore 1's thread
  }
  EXPECT_TRUE(saw_lcore) << "DPDK's polling lcore was among those checked:" << names;
  EXPECT_NE(names.find("eal-intr-thread"), std::string::npos) << names;
  // The run directory belongs to the user; the socket it made as root was handed over and removed.
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "run/asuser").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, uid);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "run/asuser/control.sock"));
  // Same packets, same verdicts as root.
  EXPECT_EQ(sum["ports"][0]["rx"], root_sum["ports"][0]["rx"]);
  ASSERT_GT(root_run.out_lines().size(), 0u);
  expect_same_lines(run.out_lines(), root_run.out_lines(), "as flowpicd-test", "as root");
}

}  // namespace
