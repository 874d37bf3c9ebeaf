// Lab replays (issue 14): flowpicd driven by another DPDK process (dpdk-testpmd over memif) and by
// the kernel (a veth pair into a net_af_packet port), and what a second DPDK process with the same
// --file-prefix is told. Real peers only: testpmd, the kernel, flowpicd, flowpic classify.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "harness.hpp"

using namespace flowpic;
using namespace flowpic::test;
using nlohmann::json;

namespace {

std::string flowpicctl_bin() { return env_or("FLOWPICCTL", ""); }

// dpdk-testpmd from $TESTPMD or the PATH (Debian's dpdk package installs it in /usr/bin).
std::string testpmd_bin() {
  if (const std::string t = env_or("TESTPMD", ""); !t.empty()) return t;
  std::stringstream path(env_or("PATH", "/usr/bin:/bin"));
  for (std::string d; std::getline(path, d, ':');)
    if (::access((d + "/dpdk-testpmd").c_str(), X_OK) == 0) return d + "/dpdk-testpmd";
  return "";
}


// A process with stdin on a pipe and stdout/stderr in files (testpmd: "Press enter to exit").
class Child {
 public:
  Child(const std::string& bin, const std::vector<std::string>& args, const std::string& out, const std::string& err)
      : out_(out), err_(err) {
    int p[2];
    if (::pipe(p) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::dup2(p[0], 0);
      ::close(p[1]);
      const int fo = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int fe = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fo, 1);
      ::dup2(fe, 2);
      std::vector<char*> argv{const_cast<char*>(bin.c_str())};
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
    ::close(p[0]);
    stdin_ = p[1];
  }
  ~Child() {
    if (stdin_ >= 0) ::close(stdin_);
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  void send(const std::string& s) const { [[maybe_unused]] auto n = ::write(stdin_, s.data(), s.size()); }
  // Waits for the exit; -1 after a timeout (then killed).
  int wait(int timeout_s) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    int st = 0;
    while (waitpid(pid_, &st, WNOHANG) != pid_) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        pid_ = -1;
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  }
  std::string out() const { return read_file(out_); }
  std::string err() const { return read_file(err_); }

 private:
  std::string out_, err_;
  pid_t pid_ = -1;
  int stdin_ = -1;
};

// testpmd's "Forward statistics for port N" blocks at stop: port -> {RX-packets, TX-packets, ...}.
std::map<int, std::map<std::string, uint64_t>> testpmd_forward_stats(const std::string& out) {
  std::map<int, std::map<std::string, uint64_t>> r;
  const std::regex head(R"(Forward statistics for port (\d+))"), kv(R"(([A-Z]+-[a-z]+):\s+(\d+))");
  std::stringstream ss(out);
  int port = -1;
  for (std::string l; std::getline(ss, l);) {
    std::smatch m;
    if (std::regex_search(l, m, head)) {
      port = std::stoi(m[1]);
      continue;
    }
    if (l.find("Accumulated") != std::string::npos) port = -1;
    if (port < 0) continue;
    for (auto it = std::sregex_iterator(l.begin(), l.end(), kv); it != std::sregex_iterator(); ++it)
      r[port][(*it)[1]] = std::stoull((*it)[2]);
  }
  return r;
}

class Lab : public ::testing::Test {
 protected:
  void SetUp() override {
    if (flowpicd_bin().empty()) GTEST_SKIP() << "FLOWPICD not set (run through meson test)";
    setenv("FLOWPICD_RUN_DIR", (dir_ / "run").c_str(), 1);
    model_ = env_or("FLOWPIC_REPO", ".") + "/models/default.fpm";
  }
  TempDir dir_;
  std::string model_;
};

// Item 1 and 3 of issue 14: dpdk-testpmd (io forwarding, --no-flush-rx) replays wa_voice.pcap
// from a net_pcap port into its memif client port; flowpicd (memif server, the lab set-up) forwards
// every packet back, testpmd forwards them to its net_pcap tx_pcap. Every packet is accounted for
// at each hop, the returned capture is the input byte for byte, the device counters of flowpicd's
// memif port survive testpmd's leaving, and the windows are those of `flowpic classify`.
TEST_F(Lab, TestpmdOverMemifAccountsEveryPacketAndKeepsDeviceCounters) {
  const std::string testpmd = testpmd_bin();
  if (testpmd.empty()) GTEST_SKIP() << "dpdk-testpmd not found (Debian package dpdk; or set TESTPMD)";
  if (flowpicctl_bin().empty()) GTEST_SKIP() << "FLOWPICCTL not set (run through meson test)";
  const std::string pcap = test_data() + "/wa_voice.pcap";
  const auto input = read_pcap_packets(pcap);
  ASSERT_EQ(input.size(), 736u);

  ConfigSpec c;
  c.model = model_;
  c.clock = "auto";  // trace if the first packet carries a capture time: memif carries none
  c.exit_at_end = false;
  c.ports.push_back({"lab", "net_memif0,role=server,socket=lab.memif", "lab"});
  c.extra = "instance: lab\ncontrol: {socket: control.sock}\n";
  Daemon fd(dir_.path(), yaml_config(c), "flowpicd");
  const std::string run = dir_ / "run/lab";
  ASSERT_TRUE(wait_for_socket(fd, run + "/control.sock")) << fd.err();

  // testpmd: main lcore and its forwarding lcore both on CPU 0 (the forwarder busy-polls; the
  // main lcore sleeps), flowpicd's poller alone on CPU 1: on two CPUs, no two pollers share one.
  const std::string returned = dir_ / "returned.pcap", tp_prefix = unique_prefix() + "tp";
  // DPDK 22.11 leaves testpmd's runtime directory behind: removed at the end of the test.
  struct RemoveRuntimeDir {
    std::string dir;
    ~RemoveRuntimeDir() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } tp_runtime{(::getuid() == 0 ? std::string("/var/run") : env_or("XDG_RUNTIME_DIR", "/tmp")) + "/dpdk/" + tp_prefix};
  Child tp(testpmd,
           {"--no-huge", "-m", "256", "--no-pci", "--file-prefix", tp_prefix, "--lcores=0@0,1@0",
            "--log-level", "lib.eal:warning", "--vdev=net_pcap0,rx_pcap=" + pcap + ",tx_pcap=" + returned,
            "--vdev=net_memif0,role=client,socket=" + run + "/lab.memif,socket-abstract=no", "--", "--forward-mode=io",
            "--no-flush-rx", "--nb-cores=1", "--total-num-mbufs=4096"},
           dir_ / "testpmd.out", dir_ / "testpmd.err");

  // Until flowpicd has forwarded all 736 packets (its stats through flowpicctl).
  json st;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < deadline) {
    const RunResult r = run_process(flowpicctl_bin(), {"-i", "lab", "--json", "stats"}, dir_.path(), 30, "ctl");
    if (r.exit_code == 0) {
      st = json::parse(r.out, nullptr, false);
      if (st.is_object() && st["ports"][0]["tx"]["packets"].get<uint64_t>() >= input.size()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(st.is_object()) << fd.err();
  ASSERT_EQ(st["ports"][0]["tx"]["packets"].get<uint64_t>(), input.size())
      << "flowpicd did not forward the replay\n" << tp.out() << tp.err() << fd.err();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the way back to testpmd
  tp.send("\n");  // "Press enter to exit": testpmd stops, prints its stats, disconnects
  ASSERT_EQ(tp.wait(60), 0) << tp.out() << tp.err();
  EXPECT_TRUE(std::filesystem::is_directory(tp_runtime.dir)) << "testpmd's runtime directory, to be removed";

  // testpmd: port 0 net_pcap (the capture), port 1 memif (flowpicd).
  const auto tstats = testpmd_forward_stats(tp.out());
  ASSERT_EQ(tstats.size(), 2u) << tp.out();
  EXPECT_EQ(tstats.at(0).at("RX-packets"), 736u) << "read from the capture";
  EXPECT_EQ(tstats.at(1).at("TX-packets"), 736u) << "sent to flowpicd";
  EXPECT_EQ(tstats.at(1).at("TX-dropped"), 0u);
  EXPECT_EQ(tstats.at(1).at("RX-packets"), 736u) << "returned by flowpicd";
  EXPECT_EQ(tstats.at(0).at("TX-packets"), 736u) << "written to tx_pcap";
  EXPECT_EQ(read_pcap_packets(returned), input) << "every packet back, unchanged, in order";

  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // flowpicd sees the peer leave
  ASSERT_EQ(fd.terminate(), 0) << fd.err();
  const json s = fd.summary();
  ASSERT_TRUE(s.is_object()) << fd.err();
  const auto& p = s["ports"][0];
  EXPECT_EQ(p["rx"].get<uint64_t>(), 736u);
  EXPECT_EQ(p["forwarded"].get<uint64_t>(), 736u);
  EXPECT_EQ(p["dropped"]["action"].get<uint64_t>() + p["dropped"]["tx_full"].get<uint64_t>(), 0u);
  // The memif PMD reports 0 once its peer is gone; flowpicd keeps what it reported before.
  EXPECT_EQ(p["device_stats"]["ipackets"].get<uint64_t>(), 736u) << p.dump();
  EXPECT_EQ(p["device_stats"]["opackets"].get<uint64_t>(), 736u) << p.dump();
  EXPECT_TRUE(p["device_stats"]["held"].get<bool>()) << "testpmd left before flowpicd stopped: " << p.dump();
  EXPECT_EQ(s["lcores"][0]["clock"], "tsc") << "memif carries no capture time: clock auto falls back to tsc";

  // Verdicts: memif carries no capture time, so flowpicd's windows span the replay's microseconds,
  // not the call's seconds; the windows themselves (count windows) are those of `flowpic classify`
  // when classify's idle timeout, which splits flows at gaps of the capture's time, is set beyond
  // the capture. Classes are then not comparable (the time axis of every picture collapsed).
  const std::vector<std::string> mine = RunResult{0, false, fd.out(), "", {}}.out_lines();
  EXPECT_EQ(s["verdicts"]["total"].get<uint64_t>(), mine.size());
  if (flowpic_bin().empty()) return;
  const RunResult cl =
      run_process(flowpic_bin(), {"classify", pcap, "-m", model_, "--idle-timeout", "3600s"}, dir_.path(), 120, "classify");
  ASSERT_EQ(cl.exit_code, 0) << cl.err;
  auto windows = [](const std::vector<std::string>& lines, double* max_span) {
    std::multiset<std::tuple<std::string, uint64_t, uint64_t, uint64_t, std::string>> w;
    for (const auto& l : lines) {
      const json v = json::parse(l);
      w.emplace(v["flow"], v["window"]["index"], v["packets"], v["bytes"], v["window"]["reason"]);
      *max_span = std::max(*max_span, v["window"]["end"].get<double>() - v["window"]["start"].get<double>());
    }
    return w;
  };
  double span_lab = 0, span_trace = 0;
  const auto wl = windows(mine, &span_lab), wc = windows(cl.out_lines(), &span_trace);
  EXPECT_EQ(wl.size(), 30u);
  EXPECT_EQ(wl, wc) << "the same windows (flow, index, packets, bytes, reason) as flowpic classify";
  EXPECT_GT(span_trace, 10.0) << "the call's windows span seconds";
  EXPECT_LT(span_lab, 5.0) << "a full-speed replay's windows span the replay's time";
}

// Issue 14, item 2: a second flowpicd with another instance name but the first one's --file-prefix
// is told who holds the prefix and what to change, in one line; never "Success".
TEST_F(Lab, SecondDpdkProcessOnTheSamePrefixIsToldWhoHoldsIt) {
  ConfigSpec c;
  c.model = model_;
  c.exit_at_end = false;
  c.prefix = unique_prefix() + "same";
  c.ports.push_back({"p0", "net_pcap0,rx_pcap=" + test_data() + "/wa_voice.pcap", "p0"});
  ConfigSpec one = c, two = c;
  one.extra = "instance: one\ncontrol: {socket: control.sock}\n";
  two.extra = "instance: two\n";
  Daemon first(dir_.path(), yaml_config(one), "one");
  ASSERT_TRUE(wait_for_socket(first, dir_ / "run/one/control.sock")) << first.err();
  const RunResult r = run_flowpicd(dir_.path(), yaml_config(two), "two", {}, 60);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const auto lines = flowpicd_lines(r.err);
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_NE(lines[0].find("DPDK EAL init failed: --file-prefix " + c.prefix + " is in use by another DPDK process (pid " +
                          std::to_string(first.pid()) + ", flowpicd"),
            std::string::npos)
      << lines[0];
  EXPECT_NE(lines[0].find("give this flowpicd its own --file-prefix in eal:"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[0].find("Success"), std::string::npos) << lines[0];
  EXPECT_TRUE(first.running()) << "the first one is untouched";
  EXPECT_EQ(first.terminate(), 0) << first.err();
}

// GET /metrics from 127.0.0.1:port (HTTP/1.0): the whole answer, "" on failure.
std::string scrape(int port) {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) return "";
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET /metrics HTTP/1.0\r\n\r\n";
    if (::write(s, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::read(s, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(s);
  return out;
}

// A veth pair, removed at destruction. ok() false (and why()) when the kernel refuses it.
class Veth {
 public:
  explicit Veth(const std::string& base) : a_(base + "a"), b_(base + "b") {
    ok_ = std::system(("ip link add " + a_ + " type veth peer name " + b_ + " >/dev/null 2>&1").c_str()) == 0 &&
          std::system(("ip link set " + a_ + " up && ip link set " + b_ + " up").c_str()) == 0;
  }
  ~Veth() { [[maybe_unused]] int rc = std::system(("ip link del " + a_ + " >/dev/null 2>&1").c_str()); }
  bool ok() const { return ok_; }
  const std::string& a() const { return a_; }
  const std::string& b() const { return b_; }

 private:
  std::string a_, b_;
  bool ok_ = false;
};

// Item 4 of issue 14: frames the kernel drops because a net_af_packet port's ring is full never
// reach flowpicd's rx counters; flowpicd reads the kernel's counters of the PMD's sockets
// (PACKET_STATISTICS) and reports them: kernel packets = flowpicd rx + kernel drops.
TEST_F(Lab, AfPacketRingDropsOfTheKernelAreCounted) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (ip link add, AF_PACKET sockets)";
  Veth veth("fpv" + std::to_string(::getpid() % 100000));
  if (!veth.ok()) GTEST_SKIP() << "cannot create a veth pair here (ip link add ... type veth refused)";
  ConfigSpec c;
  c.model = model_;
  c.clock = "tsc";
  c.exit_at_end = false;
  // A tiny ring: 2 blocks of 4096 bytes, 4 frames of 2048.
  c.ports.push_back({"k0", "net_af_packet0,iface=" + veth.a() + ",blocksz=4096,framesz=2048,framecnt=4", "k0"});
  c.extra = "instance: kdrops\ncontrol: {socket: control.sock, prometheus: {enabled: true, address: 127.0.0.1, port: 0}}\n";
  Daemon fd(dir_.path(), yaml_config(c), "flowpicd");
  ASSERT_TRUE(wait_for_socket(fd, dir_ / "run/kdrops/control.sock")) << fd.err();

  // A burst from the kernel side: 200,000 frames into the peer, as fast as a raw socket goes.
  const int s = ::socket(AF_PACKET, SOCK_RAW, 0);
  ASSERT_GE(s, 0) << std::strerror(errno);
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = static_cast<int>(if_nametoindex(veth.b().c_str()));
  to.sll_halen = 6;
  ASSERT_GT(to.sll_ifindex, 0);
  uint64_t sent = 0;
  for (uint32_t i = 0; i < 200000; ++i) {
    const auto f = udp4_frame(0x0a000001 + i % 64, 0x0b000001, static_cast<uint16_t>(1000 + i % 64), 443,
                              static_cast<uint16_t>(60 + i % 900));
    if (::sendto(s, f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
        static_cast<ssize_t>(f.size()))
      ++sent;
  }
  ::close(s);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::smatch pm;
  const std::string log = fd.err();
  ASSERT_TRUE(std::regex_search(log, pm, std::regex(R"(Prometheus metrics on http://127\.0\.0\.1:(\d+)/metrics)"))) << log;
  const std::string metrics = scrape(std::stoi(pm[1]));
  const RunResult live = run_process(flowpicctl_bin().empty() ? "/bin/false" : flowpicctl_bin(),
                                     {"-i", "kdrops", "--json", "stats"}, dir_.path(), 30, "ctl");
  ASSERT_EQ(fd.terminate(), 0) << fd.err();
  const json sum = fd.summary();
  ASSERT_TRUE(sum.is_object()) << fd.err();
  const auto& p = sum["ports"][0];
  ASSERT_TRUE(p["device_stats"].contains("kernel")) << p.dump();
  const uint64_t kp = p["device_stats"]["kernel"]["packets"], kd = p["device_stats"]["kernel"]["dropped"];
  const uint64_t rx = p["rx"];
  EXPECT_GT(sent, 0u);
  EXPECT_GT(kd, 0u) << "a 4-frame ring under a 200k-frame burst: the kernel must have dropped some " << p.dump();
  // Every frame the kernel handed the socket was received or dropped, but for those still in the
  // 4-frame ring when the lcore stopped (the kernel's own IPv6 chatter on a fresh link).
  EXPECT_GE(kp, rx + kd) << p.dump();
  EXPECT_LE(kp, rx + kd + 4) << p.dump();
  EXPECT_NE(fd.err().find("kernel (af_packet ring): " + std::to_string(kp) + " frames, " + std::to_string(kd) +
                          " dropped before flowpicd received them"),
            std::string::npos)
      << fd.err();
  if (!flowpicctl_bin().empty()) {
    ASSERT_EQ(live.exit_code, 0) << live.err;
    const json st = json::parse(live.out);
    EXPECT_GT(st["ports"][0]["device"]["kernel_dropped"].get<uint64_t>(), 0u) << live.out;
    EXPECT_LE(st["ports"][0]["device"]["kernel_dropped"].get<uint64_t>(), kd) << live.out;
  }
  std::smatch mm;
  ASSERT_TRUE(std::regex_search(metrics, mm, std::regex(R"(\nflowpic_port_device_dropped_packets_total\{port="k0",reason="kernel_dropped"\} (\d+))")))
      << metrics;
  EXPECT_GT(std::stoull(mm[1]), 0u);
  EXPECT_LE(std::stoull(mm[1]), kd);
}

}  // namespace
