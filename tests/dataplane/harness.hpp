// Test harness for flowpicd integration tests: temp dirs, models with known behaviour,
// configs, running the built binary as a subprocess, reading and writing pcaps.
#pragma once

#include <fcntl.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "infer/model.hpp"

namespace flowpic::test {

inline std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}
inline std::string flowpicd_bin() { return env_or("FLOWPICD", ""); }
inline std::string flowpic_bin() { return env_or("FLOWPIC", ""); }
inline std::string test_data() { return env_or("FLOWPIC_TEST_DATA", "tests/data"); }

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
}

// A fresh directory under /tmp, removed at destruction (kept when FLOWPIC_KEEP_TMP is set).
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/flowpicd-test-XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    if (!std::getenv("FLOWPIC_KEEP_TMP")) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The ODE-Flow classes the default model uses.
inline std::vector<std::string> default_classes() { return {"VoIP", "Video", "File_Transfer", "Chat", "Browsing"}; }

// A lenet model on the default picture config (count windows of 20 packets). winner >= 0:
// the last layer is zeroed and its bias makes that class win every window (known verdicts);
// otherwise seeded random weights with biases set so that verdicts vary with the picture.
inline std::shared_ptr<const Model> make_model(const std::string& path, int winner = -1, uint64_t seed = 7,
                                               const std::string& name = "dptest",
                                               const WindowPolicy* window = nullptr) {
  ModelInfo info;
  if (window) info.picture.window = *window;
  info.picture.channels = info.picture.window.bidirectional ? 2 : 1;  // one picture per direction
  info.arch = Arch::kLeNet;
  info.classes = default_classes();
  info.name = name;
  info.training = {{"note", "dataplane test model, not trained"}};
  auto m = Model::create(info, seed);
  auto& t = m->mutable_tensors();
  // Last two tensors: final FC weight and bias.
  Tensor& w = t[t.size() - 2];
  Tensor& b = t[t.size() - 1];
  if (winner >= 0) {
    std::fill(w.data.begin(), w.data.end(), 0.f);
    std::fill(b.data.begin(), b.data.end(), 0.f);
    b.data[static_cast<std::size_t>(winner)] = 10.f;
  } else {
    for (auto& v : w.data) v *= 8.f;  // sharper softmax: verdicts differ between pictures
  }
  m->save(path);
  return Model::load(path);
}

struct RunResult {
  int exit_code = -1;
  bool timed_out = false;
  std::string out, err;
  nlohmann::json summary;  // from --summary-json when present
  std::vector<std::string> out_lines() const {
    std::vector<std::string> v;
    std::stringstream ss(out);
    for (std::string l; std::getline(ss, l);)
      if (!l.empty()) v.push_back(l);
    return v;
  }
};

// Runs `bin args...` with stdout/stderr captured to files in dir; kills it after timeout_s.
inline RunResult run_process(const std::string& bin, const std::vector<std::string>& args, const std::string& dir,
                             int timeout_s = 120, const std::string& tag = "run") {
  RunResult r;
  const std::string out = dir + "/" + tag + ".stdout", err = dir + "/" + tag + ".stderr";
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    const int fo = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int fe = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fo, 1);
    dup2(fe, 2);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(bin.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  int status = 0;
  for (;;) {
    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      r.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

// Unique EAL file prefix per run, so tests (and other users) never share DPDK runtime state.
inline std::string unique_prefix() {
  static int counter = 0;
  return "fpt" + std::to_string(getpid()) + "_" + std::to_string(++counter);
}

struct PortSpec {
  std::string name, device, peer;
  int rx_queues = 1;
};

// A complete config for tests: --no-huge -m 512, a unique --file-prefix, CPUs 0-1 only.
struct ConfigSpec {
  std::vector<PortSpec> ports;
  std::string poll = "[1]", build = "[0]", infer = "[]";
  std::string model;
  std::string clock = "trace";
  std::string actions = "{}";
  std::string verdicts = "stdout";
  uint32_t capacity = 65536;
  std::string extra;  // more YAML appended verbatim
  std::string on_full = "drop";
  uint32_t ring_size = 4096;
  std::string mempool = "auto";
  uint32_t idle_ms = 400;
  bool exit_at_end = true;
  std::string prefix;  // EAL --file-prefix; empty: unique_prefix()
};

inline std::string yaml_config(const ConfigSpec& c) {
  std::ostringstream y;
  y << "eal: [--no-huge, -m, \"512\", --no-pci, --file-prefix, " << (c.prefix.empty() ? unique_prefix() : c.prefix)
    << ", --log-level, \"lib.eal:warning\"]\n";
  y << "ports:\n";
  for (const auto& p : c.ports)
    y << "  - {name: " << p.name << ", device: \"" << p.device << "\", peer: " << (p.peer.empty() ? p.name : p.peer)
      << ", rx_queues: " << p.rx_queues << ", rx_desc: 512, tx_desc: 512}\n";
  y << "mempool: {size: " << c.mempool << ", cache: 64}\n";
  y << "cores: {poll: " << c.poll << ", build: " << c.build << ", infer: " << c.infer << "}\n";
  y << "flow_table: {capacity: " << c.capacity << ", idle_timeout_s: 30, max_records: 1024}\n";
  y << "clock: " << c.clock << "\n";
  y << "model: " << c.model << "\n";
  y << "inference: {batch: 64, max_wait_ms: 5, threads: 1}\n";
  y << "outputs: {verdicts: " << c.verdicts << ", stats_interval_s: 0}\n";
  y << "actions: " << c.actions << "\n";
  y << "replay: {exit_at_end: " << (c.exit_at_end ? "true" : "false") << ", idle_ms: " << c.idle_ms << "}\n";
  y << "window_ring: {size: " << c.ring_size << ", on_full: " << c.on_full << "}\n";
  y << c.extra;
  return y.str();
}

// Writes the config to dir/name.yaml and runs flowpicd on it with --summary-json.
inline RunResult run_flowpicd(const std::string& dir, const std::string& yaml, const std::string& tag = "flowpicd",
                              std::vector<std::string> extra_args = {}, int timeout_s = 120) {
  const std::string cfg = dir + "/" + tag + ".yaml", summary = dir + "/" + tag + ".summary.json";
  write_file(cfg, yaml);
  std::vector<std::string> args{"-c", cfg, "--summary-json", summary};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  RunResult r = run_process(flowpicd_bin(), args, dir, timeout_s, tag);
  const std::string s = read_file(summary);
  if (!s.empty()) r.summary = nlohmann::json::parse(s, nullptr, false);
  return r;
}

// flowpicd running in the background (control-plane tests): stdout/stderr to files in dir.
class Daemon {
 public:
  Daemon(const std::string& dir, const std::string& yaml, const std::string& tag = "flowpicd") : dir_(dir), tag_(tag) {
    const std::string cfg = dir + "/" + tag + ".yaml";
    summary_path_ = dir + "/" + tag + ".summary.json";
    write_file(cfg, yaml);
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      const int fo = open((dir + "/" + tag + ".stdout").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int fe = open((dir + "/" + tag + ".stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fo, 1);
      dup2(fe, 2);
      const std::string bin = flowpicd_bin();
      execl(bin.c_str(), bin.c_str(), "-c", cfg.c_str(), "--summary-json", summary_path_.c_str(), nullptr);
      _exit(127);
    }
  }
  ~Daemon() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  bool running() {
    if (pid_ <= 0) return false;
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      exit_code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
      pid_ = -1;
      return false;
    }
    return true;
  }
  // SIGTERM, then waits up to timeout_s (SIGKILL after). Returns the exit code (-1: killed).
  int terminate(int timeout_s = 120) {
    if (pid_ <= 0) return exit_code_;
    kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (running()) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        pid_ = -1;
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return exit_code_;
  }
  void signal(int sig) const {
    if (pid_ > 0) kill(pid_, sig);
  }
  pid_t pid() const { return pid_; }
  nlohmann::json summary() const { return nlohmann::json::parse(read_file(summary_path_), nullptr, false); }
  std::string out() const { return read_file(dir_ + "/" + tag_ + ".stdout"); }
  std::string err() const { return read_file(dir_ + "/" + tag_ + ".stderr"); }

 private:
  std::string dir_, tag_, summary_path_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

// Every packet of a capture (bytes as captured), in order.
inline std::vector<std::string> read_pcap_packets(const std::string& path, int* dlt = nullptr) {
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline(path.c_str(), err);
  if (!p) throw std::runtime_error(std::string("cannot open ") + path + ": " + err);
  if (dlt) *dlt = pcap_datalink(p);
  std::vector<std::string> out;
  pcap_pkthdr* h;
  const u_char* d;
  while (pcap_next_ex(p, &h, &d) == 1) out.emplace_back(reinterpret_cast<const char*>(d), h->caplen);
  pcap_close(p);
  return out;
}

// Writes Ethernet frames as a pcap (microsecond timestamps).
class PcapWriter {
 public:
  explicit PcapWriter(const std::string& path) {
    dead_ = pcap_open_dead(DLT_EN10MB, 65535);
    dump_ = pcap_dump_open(dead_, path.c_str());
    if (!dump_) throw std::runtime_error("cannot write " + path);
  }
  ~PcapWriter() { close(); }
  void add(const std::vector<uint8_t>& frame, uint64_t ts_us) {
    pcap_pkthdr h{};
    h.ts.tv_sec = static_cast<time_t>(ts_us / 1000000);
    h.ts.tv_usec = static_cast<suseconds_t>(ts_us % 1000000);
    h.caplen = h.len = static_cast<bpf_u_int32>(frame.size());
    pcap_dump(reinterpret_cast<u_char*>(dump_), &h, frame.data());
  }
  void close() {
    if (dump_) pcap_dump_close(dump_);
    if (dead_) pcap_close(dead_);
    dump_ = nullptr;
    dead_ = nullptr;
  }

 private:
  pcap_t* dead_ = nullptr;
  pcap_dumper_t* dump_ = nullptr;
};

inline uint16_t ip_checksum(const uint8_t* h, std::size_t len) {
  uint32_t s = 0;
  for (std::size_t i = 0; i + 1 < len; i += 2) s += static_cast<uint32_t>((h[i] << 8) | h[i + 1]);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

// Ethernet + IPv4 + UDP frame of `ip_len` IP bytes (>= 28), valid IPv4 header checksum.
inline std::vector<uint8_t> udp4_frame(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint16_t ip_len,
                                       uint8_t tos = 0) {
  std::vector<uint8_t> f(14 + ip_len, 0);
  const uint8_t mac_d[6] = {0x02, 0, 0, 0, 0, 2}, mac_s[6] = {0x02, 0, 0, 0, 0, 1};
  std::copy(mac_d, mac_d + 6, f.begin());
  std::copy(mac_s, mac_s + 6, f.begin() + 6);
  f[12] = 0x08;
  f[13] = 0x00;
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x45;
  ip[1] = tos;
  ip[2] = static_cast<uint8_t>(ip_len >> 8);
  ip[3] = static_cast<uint8_t>(ip_len);
  ip[8] = 64;
  ip[9] = 17;
  for (int i = 0; i < 4; ++i) {
    ip[12 + i] = static_cast<uint8_t>(src >> (24 - 8 * i));
    ip[16 + i] = static_cast<uint8_t>(dst >> (24 - 8 * i));
  }
  const uint16_t c = ip_checksum(ip, 20);
  ip[10] = static_cast<uint8_t>(c >> 8);
  ip[11] = static_cast<uint8_t>(c);
  uint8_t* udp = ip + 20;
  udp[0] = static_cast<uint8_t>(sport >> 8);
  udp[1] = static_cast<uint8_t>(sport);
  udp[2] = static_cast<uint8_t>(dport >> 8);
  udp[3] = static_cast<uint8_t>(dport);
  const uint16_t ulen = static_cast<uint16_t>(ip_len - 20);
  udp[4] = static_cast<uint8_t>(ulen >> 8);
  udp[5] = static_cast<uint8_t>(ulen);
  return f;
}

// A capture of `flows` UDP flows (10.0.0.0+f:1000+f -> 11.0.0.1:443) sending `packets` packets
// each, round-robin, 2 us apart, sizes varying by flow and round.
inline void write_round_robin_capture(const std::string& path, uint32_t flows, uint32_t packets) {
  PcapWriter w(path);
  uint64_t t = 1'700'000'000'000'000ULL;
  for (uint32_t k = 0; k < packets; ++k)
    for (uint32_t f = 0; f < flows; ++f)
      w.add(udp4_frame(0x0a000000 + f, 0x0b000001, static_cast<uint16_t>(1000 + f % 50000), 443,
                       static_cast<uint16_t>(60 + (f * 7 + k * 13) % 1400)), t += 2);
}

// Ethernet + IPv6 + UDP frame; src/dst differ in the last address byte.
inline std::vector<uint8_t> udp6_frame(uint8_t src_last, uint8_t dst_last, uint16_t sport, uint16_t dport,
                                       uint16_t payload_len, uint8_t traffic_class = 0) {
  std::vector<uint8_t> f(14 + 40 + payload_len, 0);
  f[0] = 0x02;
  f[5] = 2;
  f[6] = 0x02;
  f[11] = 1;
  f[12] = 0x86;
  f[13] = 0xdd;
  uint8_t* ip = f.data() + 14;
  ip[0] = static_cast<uint8_t>(0x60 | (traffic_class >> 4));
  ip[1] = static_cast<uint8_t>((traffic_class & 0x0f) << 4);
  ip[4] = static_cast<uint8_t>(payload_len >> 8);
  ip[5] = static_cast<uint8_t>(payload_len);
  ip[6] = 17;
  ip[7] = 64;
  ip[8] = 0x20;
  ip[9] = 0x01;
  ip[10] = 0x0d;
  ip[11] = 0xb8;
  ip[23] = src_last;
  ip[24] = 0x20;
  ip[25] = 0x01;
  ip[26] = 0x0d;
  ip[27] = 0xb8;
  ip[39] = dst_last;
  uint8_t* udp = ip + 40;
  udp[0] = static_cast<uint8_t>(sport >> 8);
  udp[1] = static_cast<uint8_t>(sport);
  udp[2] = static_cast<uint8_t>(dport >> 8);
  udp[3] = static_cast<uint8_t>(dport);
  udp[4] = static_cast<uint8_t>(payload_len >> 8);
  udp[5] = static_cast<uint8_t>(payload_len);
  return f;
}

inline bool is_socket(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// Waits until `path` is a socket (or the daemon exits); false on timeout or exit.
inline bool wait_for_socket(Daemon& d, const std::string& path, int timeout_s = 90) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (is_socket(path)) return true;
    if (!d.running()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// The lines flowpicd wrote under its own name (its log lines, not DPDK's).
inline std::vector<std::string> flowpicd_lines(const std::string& err) {
  std::vector<std::string> v;
  std::stringstream ss(err);
  for (std::string l; std::getline(ss, l);)
    if (l.rfind("flowpicd: ", 0) == 0) v.push_back(l);
  return v;
}

}  // namespace flowpic::test
