#include "dataplane/app.hpp"

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <pwd.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <ctime>
#include <thread>

#include "common/run_dir.hpp"
#include "ctl/control_server.hpp"
#include "ctl/prometheus.hpp"
#include "ctl/telemetry.hpp"
#include "dataplane/eal_cleanup.hpp"
#include "dataplane/eal_diagnose.hpp"
#include "dataplane/packet_socket_stats.hpp"
#include "dataplane/pipeline.hpp"
#include "dataplane/rss.hpp"
#include "dataplane/placement.hpp"
#include "dataplane/privileges.hpp"
#include "dataplane/worker.hpp"
#include "packet/pcap_reader.hpp"
#include "infer/network.hpp"
#include "flowtable/packet_step.hpp"

namespace fs = std::filesystem;

namespace flowpic {

namespace {

std::atomic<int> g_signal{0};        // SIGINT / SIGTERM / SIGQUIT: stop
std::atomic<uint32_t> g_hup{0};      // SIGHUP: reopen the outputs (log rotation)
std::atomic<uint32_t> g_usr1{0};     // SIGUSR1: print a stats line now
void on_signal(int sig) { g_signal.store(sig); }
void on_hup(int) { g_hup.fetch_add(1); }
void on_usr1(int) { g_usr1.fetch_add(1); }

// Writes `data` to a new file next to `path` (O_EXCL, never through a symlink) and renames it
// over `path`: a reader never sees half a file, and a symlink planted at `path` is replaced, its
// target untouched (issue 16: the summary was opened with std::ofstream, as root).
bool replace_file(const std::string& path, const std::string& data, std::string* err) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    *err = tmp + ": " + std::strerror(errno);
    return false;
  }
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t w = ::write(fd, data.data() + off, data.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      *err = tmp + ": " + std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return false;
    }
    off += static_cast<size_t>(w);
  }
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    *err = path + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

struct PortRuntime {
  const PortConfig* cfg = nullptr;
  uint32_t index = 0;
  uint16_t id = 0;
  int socket = 0;
  std::string driver;
  uint16_t rx_queues = 0, tx_queues = 0;
  uint16_t rx_desc = 0, tx_desc = 0;
  uint16_t next_txq = 0;
  bool rss = false;
  bool rss_symmetric = false;        // the symmetric key is programmed (rss.hpp)
  uint8_t rss_key[kMaxRssKeyBytes] = {};
  bool started = false;
};

uint64_t wall_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

bool eal_has(const std::vector<std::string>& eal, const std::string& opt) {
  for (const auto& a : eal)
    if (a == opt || a.rfind(opt + "=", 0) == 0) return true;
  return false;
}

uint64_t free_hugepages() {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& d : fs::directory_iterator("/sys/kernel/mm/hugepages", ec)) {
    std::ifstream f(d.path() / "free_hugepages");
    uint64_t n = 0;
    if (f >> n) total += n;
  }
  return total;
}

// key=value pairs of a vdev spec ("net_pcap0,rx_pcap=a.pcap,tx_pcap=b.pcap").
std::vector<std::pair<std::string, std::string>> vdev_args(const std::string& spec) {
  std::vector<std::pair<std::string, std::string>> out;
  std::stringstream ss(spec);
  std::string part;
  std::getline(ss, part, ',');  // device name
  while (std::getline(ss, part, ',')) {
    const auto eq = part.find('=');
    if (eq != std::string::npos) out.emplace_back(part.substr(0, eq), part.substr(eq + 1));
  }
  return out;
}

const std::vector<std::string> kEveryWindowKey = {"kind", "length_s", "packets", "min_packets", "max_windows", "flows", "min_ip_len"};

bool same_window(const WindowPolicy& a, const WindowPolicy& m, const std::vector<std::string>& keys) {
  for (const auto& k : keys) {
    if (k == "kind" && a.kind != m.kind) return false;
    if (k == "length_s" && a.length_ns != m.length_ns) return false;
    if (k == "packets" && a.packets != m.packets) return false;
    if (k == "min_packets" && a.min_packets != m.min_packets) return false;
    if (k == "max_windows" && a.max_windows != m.max_windows) return false;
    if (k == "flows" && a.bidirectional != m.bidirectional) return false;
    if (k == "min_ip_len" && a.min_ip_len != m.min_ip_len) return false;
  }
  return true;
}

std::string window_text(const WindowPolicy& w) {
  std::ostringstream o;
  if (w.kind == WindowPolicy::Kind::kTime)
    o << "time windows of " << static_cast<double>(w.length_ns) / 1e9 << " s";
  else
    o << "count windows of " << w.packets << " packets";
  o << ", min_packets " << w.min_packets << ", max_windows " << w.max_windows
    << (w.bidirectional ? ", both directions per flow" : ", one direction per flow");
  if (w.min_ip_len) o << ", packets under " << w.min_ip_len << " bytes left out";
  return o.str();
}

std::string numa_text(int n) { return n < 0 ? "?" : std::to_string(n); }

std::string iso_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

struct App::Impl {
  Config cfg;
  AppOptions opt;
  std::unique_ptr<Topology> topo;
  std::shared_ptr<const Model> model;
  std::unique_ptr<VerdictOutput> out;
  uint32_t hups_seen = 0, usr1_seen = 0;
  ClassTable classes;
  std::unique_ptr<Pipeline> pipeline;
  std::vector<PortRuntime> ports;
  // rx_pcap replays, read through once at start (issue 17): how many records the capture holds
  // and whether reading stopped on a corrupt or truncated record, by port name.
  struct CaptureScan {
    std::string file;
    uint64_t packets = 0;
    std::string error;  // empty: read to its end
  };
  std::map<std::string, CaptureScan> captures;
  std::vector<std::unique_ptr<LcoreState>> lcores;
  std::map<int, rte_mempool*> mbuf_pools;  // by NUMA socket
  std::atomic<bool> stop{false};
  bool eal_up = false;
  bool lcores_running = false;
  int ts_offset = -1;
  uint64_t ts_flag = 0;
  uint64_t start_tsc = 0;
  std::chrono::steady_clock::time_point started;
  std::string stop_reason;
  // Served models (control plane): current and the one before it, for rollback.
  struct Served {
    std::shared_ptr<const Model> model;
    std::string path, loaded_at;
    uint32_t tag = 0;
  };
  mutable std::mutex model_mu;
  Served current, previous;
  std::map<uint32_t, std::string> tag_ids;
  std::unique_ptr<ControlServer> ctl;
  std::unique_ptr<PrometheusServer> prom;
  // Run directory and service user (issue 16).
  std::optional<ServiceUser> service;
  int lock_fd = -1;             // RUN_DIR/flowpicd.lock, held until exit
  size_t threads_checked = 0;   // threads verified in /proc/self/task after the switch
  std::unique_ptr<IpfixExporter> exporter;  // exporters.ipfix (null: none)

  // The exporter learns every class name (ids of the class table) and the model's id of a tag.
  void publish_export(uint32_t tag, const std::string& model_id) {
    if (!exporter) return;
    std::vector<std::string> names;
    for (int c = 0; c < classes.size(); ++c) names.push_back(classes.name(static_cast<int16_t>(c)));
    exporter->publish(tag, model_id, names);
  }

  // Device counters per port (issue 14), read by the main loop every 20 ms and by summaries.
  // `held`: the highest rte_eth_stats the device reported; memif reports 0 while no peer is
  // connected (its counters come back with the next peer), so a lower reading is not taken.
  // af_packet: the kernel's ring drops (PACKET_STATISTICS), which the PMD does not report.
  struct DeviceCounters {
    rte_eth_stats held{};
    bool hidden = false;          // the latest reading was lower than `held`
    std::vector<int> packet_fds;  // net_af_packet: the PMD's sockets
    uint64_t kernel_packets = 0, kernel_drops = 0;
  };
  mutable std::mutex dev_mu;
  mutable std::vector<DeviceCounters> dev;
  void sample_devices() const;

  FlowTableConfig table_config() const {
    FlowTableConfig t;
    t.capacity = cfg.table_capacity;
    t.idle_timeout_ns = seconds_to_ns(cfg.idle_timeout_s);
    t.window = model->info().picture.window;
    t.max_records = cfg.max_records;
    return t;
  }
  std::vector<unsigned> floating_cpus() const {
    std::vector<unsigned> out;
    for (unsigned c : topo->online_cpus())
      if (std::find(cfg.poll_cores.begin(), cfg.poll_cores.end(), c) == cfg.poll_cores.end()) out.push_back(c);
    return out.empty() ? topo->online_cpus() : out;
  }
  std::vector<unsigned> build_cpus() const { return cfg.build_cores.empty() ? floating_cpus() : cfg.build_cores; }
  std::vector<std::vector<unsigned>> infer_groups() const {
    std::vector<std::vector<unsigned>> g;
    if (cfg.infer_cores.empty()) {
      g.push_back(floating_cpus());
      return g;
    }
    const std::size_t per = std::max<std::size_t>(1, cfg.infer_threads);
    const std::size_t workers = std::max<std::size_t>(1, cfg.infer_cores.size() / per);
    for (std::size_t w = 0; w < workers; ++w) {
      const std::size_t lo = w * per;
      const std::size_t hi = w + 1 == workers ? cfg.infer_cores.size() : std::min(lo + per, cfg.infer_cores.size());
      g.emplace_back(cfg.infer_cores.begin() + static_cast<long>(lo), cfg.infer_cores.begin() + static_cast<long>(hi));
    }
    return g;
  }

  void preflight();
  void check_endpoints() const;
  void prepare_run_dir_and_lock();
  // After EAL, ports, lcores, outputs and sockets: every thread to the service user, verified.
  void drop_privileges();
  nlohmann::ordered_json process_json() const;
  void init_eal();
  void setup_ports();
  void setup_lcores();
  void print_placement() const;
  void stats_line(double dt, std::vector<uint64_t>& prev_rx) const;
  nlohmann::ordered_json summary() const;
  void print_summary(const nlohmann::ordered_json& s) const;
  void shutdown_ports();
  // Control plane (docs/control.md): handlers run on the control thread, read what the
  // lcores publish (relaxed counters, table readers) and never take a lock an lcore waits on.
  void start_control();
  void stop_control();
  nlohmann::ordered_json status_json() const;
  nlohmann::ordered_json stats_json() const;
  nlohmann::json flow_json(const FlowView& v, uint32_t lcore) const;
  nlohmann::json model_json(const Served& s) const;
  // `model load`: read, validate and build off the control thread (prepare), then publish
  // (the returned commit step), unless the request was abandoned meanwhile.
  ControlServer::Commit model_load(const std::string& path, const std::atomic<bool>& cancelled);
  nlohmann::json model_rollback();
  // Puts one flow question to every polling lcore and waits for all answers (the lcores
  // answer between bursts; see FlowQuery). Throws CommandError when an lcore does not answer.
  template <class Fill>
  void ask_lcores(Fill&& fill);
};

template <class Fill>
void App::Impl::ask_lcores(Fill&& fill) {
  constexpr auto kWait = std::chrono::seconds(5);
  for (const auto& lc : lcores) {
    FlowQuery& q = lc->query;
    // A question abandoned after a timeout may still be in progress: wait for it first.
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (q.answered.load(std::memory_order_acquire) != q.asked.load(std::memory_order_relaxed)) {
      if (std::chrono::steady_clock::now() > deadline)
        throw CommandError(ctl_code::kFailed, "polling lcore " + std::to_string(lc->lcore_id) + " is not answering");
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    fill(q);
    q.asked.store(q.asked.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  for (const auto& lc : lcores) {
    FlowQuery& q = lc->query;
    while (q.answered.load(std::memory_order_acquire) != q.asked.load(std::memory_order_relaxed)) {
      if (std::chrono::steady_clock::now() > deadline)
        throw CommandError(ctl_code::kFailed, "polling lcore " + std::to_string(lc->lcore_id) +
                                                  " did not answer within 5 s (stopping or stalled)");
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
}

App::App(Config cfg, AppOptions opt) : impl_(std::make_unique<Impl>()) {
  impl_->cfg = std::move(cfg);
  impl_->opt = std::move(opt);
}

App::~App() {
  impl_->stop_control();
  if (impl_->lcores_running) {
    impl_->stop.store(true);
    rte_eal_mp_wait_lcore();
  }
  impl_->pipeline.reset();
  impl_->shutdown_ports();
  if (impl_->eal_up) eal_cleanup_and_remove_runtime_dir();
  if (impl_->lock_fd >= 0) ::close(impl_->lock_fd);
}

void App::preflight() { impl_->preflight(); }

void App::Impl::preflight() {
  // Model first: the window policy, picture config and class names come from it.
  try {
    model = Model::load(cfg.model_path);
  } catch (const std::exception& e) {
    throw StartError(std::string(e.what()) + " (set model: to a valid model file)");
  }
  const auto& info = model->info();
  if (const std::string why = info.picture.validate(); !why.empty())
    throw StartError("model " + cfg.model_path + ": picture config unusable: " + why);
  if (info.classes.empty()) throw StartError("model " + cfg.model_path + ": has no classes");
  if (cfg.window && !same_window(*cfg.window, info.picture.window, cfg.window_keys))
    throw StartError("config " + cfg.source + ": window: differs from the model's (" + window_text(info.picture.window) +
                     "); remove window: or use a model trained with those windows");
  for (const auto& [cls, action] : cfg.actions) {
    const bool known = std::find(info.classes.begin(), info.classes.end(), cls) != info.classes.end() ||
                       (cls == "unknown" && cfg.unknown_below > 0);
    if (!known) {
      std::string list;
      for (const auto& c : info.classes) list += (list.empty() ? "" : ", ") + c;
      throw StartError("config " + cfg.source + ": actions." + cls + ": model " + model->id() +
                       " has no class '" + cls + "' (classes: " + list +
                       (cfg.unknown_below > 0 ? ", unknown" : "") + ")");
    }
  }
  // The class table is shared by every model of the run: +1 for "unknown".
  if (info.classes.size() + 1 > static_cast<size_t>(ClassTable::kMaxClasses))
    throw StartError("model " + cfg.model_path + ": " + std::to_string(info.classes.size()) +
                     " classes, flowpicd holds at most " + std::to_string(ClassTable::kMaxClasses - 1) +
                     " per run; use a model with fewer classes");
  if (const std::string why = table_config().validate(); !why.empty())
    throw StartError("config " + cfg.source + ": flow_table: " + why);
  check_endpoints();
  try {  // builds the oneDNN primitives once: an incompatible model fails here, not later
    Network probe(model, static_cast<int>(cfg.batch), static_cast<int>(cfg.infer_threads));
    if (const std::string why = probe.probe_outputs(); !why.empty()) throw std::runtime_error(why);
  } catch (const std::exception& e) {
    throw StartError("model " + cfg.model_path + ": cannot run it: " + e.what());
  }

  try {
    topo = std::make_unique<Topology>();
  } catch (const std::exception& e) {
    throw StartError(e.what());
  }
  auto check_cpus = [&](const std::vector<unsigned>& cpus, const char* role) {
    for (unsigned c : cpus)
      if (!topo->has_cpu(c))
        throw StartError("config " + cfg.source + ": cores." + role + ": CPU " + std::to_string(c) +
                         " does not exist or is not allowed here (CPUs available: " +
                         cpu_list_string(topo->online_cpus()) + ")");
  };
  check_cpus(cfg.poll_cores, "poll");
  check_cpus(cfg.build_cores, "build");
  check_cpus(cfg.infer_cores, "infer");

  if (!eal_has(cfg.eal, "--no-huge") && !eal_has(cfg.eal, "--in-memory") && free_hugepages() == 0)
    throw StartError("no free hugepages: reserve some (echo 1024 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages) "
                     "or add --no-huge and -m 512 to eal:");
  if (free_hugepages() == 0 && eal_has(cfg.eal, "--in-memory") && !eal_has(cfg.eal, "--no-huge"))
    throw StartError("no free hugepages for --in-memory: reserve some, or use --no-huge -m 512 in eal:");
  const bool no_pci = eal_has(cfg.eal, "--no-pci");
  for (const auto& p : cfg.ports) {
    if (p.is_pci() && no_pci)
      throw StartError("config " + cfg.source + ": port " + p.name + " is a PCI device but eal: has --no-pci; remove it");
    for (const auto& [k, v] : vdev_args(p.device)) {
      if (k == "rx_pcap" && !fs::is_regular_file(v))
        throw StartError("config " + cfg.source + ": port " + p.name + ": rx_pcap file '" + v + "' not found");
      if (k == "rx_pcap") {
        // net_pcap hands every record to the port as an Ethernet frame: a capture of another link
        // type would give no verdict, every packet counted not_ip (issue 17). Refuse it here.
        int dlt = -1;
        CaptureScan scan;
        scan.file = v;
        try {
          PcapReader r(v);
          dlt = r.dlt();
          RawPacket pkt{};
          while (r.next(pkt)) {
          }
          scan.packets = r.packets_read();
          scan.error = r.error();
        } catch (const std::exception& e) {
          throw StartError("config " + cfg.source + ": port " + p.name + ": rx_pcap: " + e.what());
        }
        if (!scan.error.empty())
          spdlog::warn("port {}: rx_pcap '{}' is corrupt or truncated after {} packets ({}): the replay reads what "
                       "libpcap reads past that point, `flowpic classify` stops there; repair the capture "
                       "(e.g. editcap or pcapfix) for matching verdicts",
                       p.name, v, scan.packets, scan.error);
        captures[p.name] = std::move(scan);
        if (dlt != 1)
          throw StartError("config " + cfg.source + ": port " + p.name + ": rx_pcap '" + v + "' has link type " +
                           std::to_string(dlt) + " (" + link_type_name(link_type_from_dlt(dlt)) +
                           "), but a net_pcap port replays Ethernet frames only: convert it (e.g. tcprewrite "
                           "--dlt=enet) or read it with `flowpic classify`");
      }
      if (k == "tx_pcap") {
        const fs::path parent = fs::absolute(v).parent_path();
        if (!fs::is_directory(parent))
          throw StartError("config " + cfg.source + ": port " + p.name + ": tx_pcap directory '" + parent.string() +
                           "' does not exist");
      }
    }
  }
  // Files flowpicd creates (as root) never go into a directory anyone may write to without the
  // sticky bit: there another user could replace them between our checks and our writes.
  auto shared_dir = [](const std::string& file) -> std::string {
    std::error_code ec;
    const fs::path dir = fs::absolute(file, ec).parent_path();
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0 && (st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) return dir.string();
    return "";
  };
  if (cfg.verdicts != "stdout" && cfg.verdicts != "none")
    if (const auto d = shared_dir(cfg.verdicts); !d.empty())
      throw StartError("config " + cfg.source + ": outputs.verdicts: " + d +
                       " is world-writable without the sticky bit; write verdicts to a private directory");
  if (!cfg.control_socket.empty())
    if (const auto d = shared_dir(cfg.control_socket); !d.empty())
      throw StartError("config " + cfg.source + ": control.socket: " + d +
                       " is world-writable without the sticky bit; put the socket in a private directory "
                       "(a relative name: it goes in the run directory)");
  if (!opt.summary_json.empty())
    if (const auto d = shared_dir(opt.summary_json); !d.empty())
      throw StartError("--summary-json: " + d + " is world-writable without the sticky bit; use a private directory");
  if (!cfg.user.empty()) {
    try {
      service = lookup_service_user(cfg.user, cfg.group, "config " + cfg.source + ": ");
    } catch (const std::exception& e) {
      throw StartError(e.what());
    }
    // The summary is written at the end, after the switch: its directory must let the user write.
    if (!opt.summary_json.empty()) {
      std::error_code ec;
      const fs::path dir = fs::absolute(opt.summary_json, ec).parent_path();
      struct stat st {};
      if (dir != fs::path(cfg.run_dir) && ::stat(dir.c_str(), &st) == 0) {
        const bool writable = (st.st_uid == service->uid && (st.st_mode & S_IWUSR)) ||
                              (st.st_gid == service->gid && (st.st_mode & S_IWGRP)) || (st.st_mode & S_IWOTH);
        if (!writable)
          throw StartError("--summary-json: " + dir.string() + " is not writable by user " + service->user +
                           ", who writes the summary at the end; use a directory it may write, e.g. the run directory " +
                           cfg.run_dir);
      }
    }
  }
  if (opt.check_only) return;  // --check creates nothing: no run directory, no output file
  prepare_run_dir_and_lock();
  try {
    out = std::make_unique<VerdictOutput>(cfg.verdicts);
  } catch (const std::exception& e) {
    throw StartError(e.what());
  }
}

void App::Impl::prepare_run_dir_and_lock() {
  if (service && ::geteuid() != 0 && ::geteuid() != service->uid)
    throw StartError("config " + cfg.source + ": user: switching to '" + service->user +
                     "' needs root; start flowpicd as root, or remove user:/--user");
  try {
    prepare_run_dir(cfg.run_dir, service ? service->uid : ::geteuid(),
                    service ? std::optional<gid_t>(service->gid) : std::nullopt);
    lock_fd = lock_instance(cfg.run_dir, cfg.instance);
  } catch (const std::exception& e) {
    throw StartError(std::string(e.what()));
  }
  spdlog::info("instance {}: run directory {}", cfg.instance, cfg.run_dir);
  if (service && !eal_has(cfg.eal, "--in-memory"))
    spdlog::warn("user: {}: DPDK's runtime directory (/var/run/dpdk/PREFIX) is made as root and stays behind at "
                 "stop, the user cannot remove it; with hugepages add --in-memory to eal: to have none, else remove "
                 "it after stop", service->user);
}

void App::Impl::drop_privileges() {
  if (!service) return;
  try {
    if (::geteuid() != service->uid || ::getegid() != service->gid) {
      chown_run_dir_entries(cfg.run_dir, *service);
      switch_user(*service);
    }
    const auto threads = thread_creds();
    if (const std::string why = creds_problem(threads, service->uid, service->gid); !why.empty())
      throw std::runtime_error("not every thread switched: " + why);
    threads_checked = threads.size();
  } catch (const std::exception& e) {
    throw StartError("config " + cfg.source + ": user: " + service->user + ": " + e.what() +
                     "; refusing to run with mixed privileges");
  }
  spdlog::info("running as user {} (uid {}), group {} (gid {}): {} threads checked, no capabilities", service->user,
               service->uid, service->group, service->gid, threads_checked);
}

nlohmann::ordered_json App::Impl::process_json() const {
  nlohmann::ordered_json p;
  const uid_t uid = ::geteuid();
  const gid_t gid = ::getegid();
  p["uid"] = uid;
  p["gid"] = gid;
  std::string user = std::to_string(uid), group = std::to_string(gid);
  char buf[16384];
  passwd pw{}, *pres = nullptr;
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &pres) == 0 && pres) user = pres->pw_name;
  ::group g{}, *gres = nullptr;
  if (getgrgid_r(gid, &g, buf, sizeof buf, &gres) == 0 && gres) group = gres->gr_name;
  p["user"] = user;
  p["group"] = group;
  p["switched"] = service.has_value();
  p["threads_checked"] = threads_checked;
  p["instance"] = cfg.instance;
  p["run_dir"] = cfg.run_dir;
  return p;
}

// What the control socket and the Prometheus endpoint need, checked before DPDK starts so that
// `--check` catches it (issue 17): each error names the YAML path and the fix.
void App::Impl::check_endpoints() const {
  if (!cfg.control_socket.empty())
    if (const std::string why = ControlServer::socket_path_problem(cfg.control_socket); !why.empty())
      throw StartError("config " + cfg.source + ": control.socket: " + why);
  if (cfg.prometheus_enabled && !listen_address_problem(cfg.prometheus_address).empty())
    throw StartError("config " + cfg.source + ": control.prometheus.address: '" + cfg.prometheus_address +
                     "' is not a numeric IPv4/IPv6 address; use e.g. 127.0.0.1, ::1 or 0.0.0.0");
}

void App::Impl::init_eal() {
  std::vector<std::string> args{"flowpicd"};
  for (const auto& a : cfg.eal) args.push_back(a);
  // Lcore 0 (main: control, stats) floats on the build/infer CPUs; lcore i+1 polls on poll[i].
  std::vector<unsigned> main_cpus = cfg.build_cores;
  main_cpus.insert(main_cpus.end(), cfg.infer_cores.begin(), cfg.infer_cores.end());
  if (main_cpus.empty()) main_cpus = floating_cpus();
  std::sort(main_cpus.begin(), main_cpus.end());
  std::string lc = "0@(";
  for (std::size_t i = 0; i < main_cpus.size(); ++i) lc += (i ? "," : "") + std::to_string(main_cpus[i]);
  lc += ")";
  for (std::size_t i = 0; i < cfg.poll_cores.size(); ++i)
    lc += "," + std::to_string(i + 1) + "@" + std::to_string(cfg.poll_cores[i]);
  args.push_back("--lcores=" + lc);
  args.push_back("--main-lcore=0");
  for (const auto& p : cfg.ports) {
    if (p.is_pci()) {
      args.push_back("-a");
      args.push_back(p.dpdk_name());
    } else {
      args.push_back("--vdev=" + p.device);
    }
  }
  std::string line;
  for (const auto& a : args) line += a + " ";
  spdlog::info("EAL arguments: {}", line);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  rte_openlog_stream(stderr);  // EAL logs to stdout by default; stdout carries the verdicts
  if (rte_eal_init(static_cast<int>(args.size()), argv.data()) < 0)
    throw StartError("DPDK EAL init failed: " + eal_init_failure(cfg.eal, rte_errno, cfg.source));
  eal_up = true;
}

void App::Impl::setup_ports() {
  if (cfg.clock != ClockMode::kTsc) {
    if (rte_mbuf_dyn_rx_timestamp_register(&ts_offset, &ts_flag) != 0) {
      if (cfg.clock == ClockMode::kTrace)
        throw StartError(std::string("clock: trace: cannot register the mbuf timestamp field: ") + rte_strerror(rte_errno));
      ts_offset = -1;
    }
  }
  ports.resize(cfg.ports.size());
  for (std::size_t i = 0; i < cfg.ports.size(); ++i) {
    PortRuntime& pr = ports[i];
    pr.cfg = &cfg.ports[i];
    pr.index = static_cast<uint32_t>(i);
    const std::string name = pr.cfg->dpdk_name();
    uint16_t id = 0;
    bool found = rte_eth_dev_get_port_by_name(name.c_str(), &id) == 0;
    if (!found) {  // PCI devices may register under another name (representors, bifurcated drivers)
      uint16_t pid;
      RTE_ETH_FOREACH_DEV(pid) {
        rte_eth_dev_info di{};
        if (rte_eth_dev_info_get(pid, &di) == 0 && di.device && name == rte_dev_name(di.device)) {
          id = pid;
          found = true;
          break;
        }
      }
    }
    if (!found)
      throw StartError("port " + pr.cfg->name + ": DPDK has no device '" + name + "' (" +
                       std::to_string(rte_eth_dev_count_avail()) + " port(s) available; " +
                       (pr.cfg->is_pci() ? "is it bound to vfio-pci? see dpdk-devbind.py --status)"
                                         : "check the vdev spec in ports[].device)"));
    pr.id = id;
    pr.socket = rte_eth_dev_socket_id(id);
    if (pr.socket < 0) pr.socket = static_cast<int>(rte_socket_id());
    pr.rx_queues = static_cast<uint16_t>(pr.cfg->rx_queues);
  }
  // One tx queue on the peer per polling lcore of this port.
  for (auto& pr : ports) {
    for (auto& peer : ports)
      if (peer.cfg->name == pr.cfg->peer) peer.tx_queues = static_cast<uint16_t>(peer.tx_queues + pr.rx_queues);
  }
  // Mbuf pools: per NUMA socket, sized for every descriptor, burst and cache that can hold mbufs.
  std::map<int, uint64_t> need;
  // Bursts held by an lcore: kBurstsInFlight in its receive pipeline (worker.cpp) plus one at TX.
  const uint64_t per_lcore = (kBurstsInFlight + 1ull) * kBurst + cfg.mempool_cache * 3ull / 2ull;
  for (auto& pr : ports) {
    rte_eth_dev_info di{};
    if (rte_eth_dev_info_get(pr.id, &di) != 0)
      throw StartError("port " + pr.cfg->name + ": cannot read device info");
    pr.driver = di.driver_name ? di.driver_name : "?";
    if (pr.rx_queues > di.max_rx_queues)
      throw StartError("port " + pr.cfg->name + " (" + pr.driver + "): rx_queues " + std::to_string(pr.rx_queues) +
                       " but the device supports " + std::to_string(di.max_rx_queues) +
                       (pr.driver == "net_pcap" ? " (net_pcap: one rx queue per rx_pcap= file)" : "") +
                       "; lower rx_queues");
    if (pr.tx_queues > di.max_tx_queues)
      throw StartError("port " + pr.cfg->name + " (" + pr.driver + "): needs " + std::to_string(pr.tx_queues) +
                       " tx queues (one per polling lcore that forwards to it) but the device supports " +
                       std::to_string(di.max_tx_queues) +
                       (pr.driver == "net_pcap" ? " (net_pcap: one tx queue per tx_pcap=/tx_iface= argument)" : ""));
    pr.rx_desc = static_cast<uint16_t>(std::min<uint32_t>(pr.cfg->rx_desc, 65535));
    pr.tx_desc = static_cast<uint16_t>(std::min<uint32_t>(pr.cfg->tx_desc, 65535));
    if (rte_eth_dev_adjust_nb_rx_tx_desc(pr.id, &pr.rx_desc, &pr.tx_desc) != 0)
      throw StartError("port " + pr.cfg->name + ": cannot fit rx_desc/tx_desc to the device's limits");
    need[pr.socket] += static_cast<uint64_t>(pr.rx_queues) * pr.rx_desc + static_cast<uint64_t>(pr.tx_queues) * pr.tx_desc +
                       pr.rx_queues * per_lcore;
  }
  for (auto& [socket, n] : need) {
    n += cfg.mempool_cache * 3ull / 2ull + 256;  // main lcore cache and slack
    uint64_t size = n;
    if (cfg.mempool_size) {
      if (*cfg.mempool_size < n)
        throw StartError("mempool.size " + std::to_string(*cfg.mempool_size) + " is too small: the ports need at least " +
                         std::to_string(n) + " mbufs (descriptors + bursts + caches); set mempool.size: auto or >= " +
                         std::to_string(n));
      size = *cfg.mempool_size;
    } else {
      uint64_t p2 = 1;
      while (p2 - 1 < n) p2 <<= 1;
      size = p2 - 1;  // 2^k - 1 is the optimum for the ring behind the mempool
    }
    const std::string pname = "fp_mbuf_s" + std::to_string(socket);
    rte_mempool* mp = rte_pktmbuf_pool_create(pname.c_str(), static_cast<unsigned>(size), cfg.mempool_cache, 0,
                                              RTE_MBUF_DEFAULT_BUF_SIZE, socket);
    if (!mp)
      throw StartError("cannot create the mbuf pool of " + std::to_string(size) + " mbufs on NUMA socket " +
                       std::to_string(socket) + ": " + rte_strerror(rte_errno) +
                       " (give EAL more memory: -m, or reserve more hugepages; or lower rx_desc/tx_desc)");
    mbuf_pools[socket] = mp;
    spdlog::info("mbuf pool on socket {}: {} mbufs of {} bytes", socket, size, RTE_MBUF_DEFAULT_BUF_SIZE);
  }
  for (auto& pr : ports) {
    rte_eth_dev_info di{};
    rte_eth_dev_info_get(pr.id, &di);
    rte_eth_conf conf{};
    if (pr.rx_queues > 1 && di.flow_type_rss_offloads != 0) {
      conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
      conf.rx_adv_conf.rss_conf.rss_hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & di.flow_type_rss_offloads;
      pr.rss = conf.rx_adv_conf.rss_conf.rss_hf != 0;
      // Symmetric key (dataplane/rss.hpp): both directions of a connection reach the same queue.
      if (pr.rss && di.hash_key_size > 0 && di.hash_key_size <= kMaxRssKeyBytes) {
        symmetric_rss_key(pr.rss_key, di.hash_key_size);
        conf.rx_adv_conf.rss_conf.rss_key = pr.rss_key;
        conf.rx_adv_conf.rss_conf.rss_key_len = di.hash_key_size;
        pr.rss_symmetric = true;
      }
    }
    if (pr.rx_queues > 1 && !pr.rss)
      spdlog::warn("port {} ({}): no RSS; each rx queue gets what the device puts in it{}", pr.cfg->name, pr.driver,
                   pr.driver == "net_pcap" ? " (net_pcap: one file per queue)" : "");
    // All mbufs come from one pool with refcount 1: fast free is safe where advertised.
    if (di.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE) conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
    int rc = rte_eth_dev_configure(pr.id, pr.rx_queues, pr.tx_queues, &conf);
    if (rc != 0)
      throw StartError("port " + pr.cfg->name + ": configure (" + std::to_string(pr.rx_queues) + " rx, " +
                       std::to_string(pr.tx_queues) + " tx queues) failed: " + rte_strerror(-rc));
    rte_mempool* mp = mbuf_pools.at(pr.socket);
    for (uint16_t q = 0; q < pr.rx_queues; ++q) {
      rte_eth_rxconf rxc = di.default_rxconf;
      rxc.offloads = conf.rxmode.offloads;
      rc = rte_eth_rx_queue_setup(pr.id, q, pr.rx_desc, static_cast<unsigned>(pr.socket), &rxc, mp);
      if (rc != 0)
        throw StartError("port " + pr.cfg->name + ": rx queue " + std::to_string(q) + " setup failed: " + rte_strerror(-rc));
    }
    for (uint16_t q = 0; q < pr.tx_queues; ++q) {
      rte_eth_txconf txc = di.default_txconf;
      txc.offloads = conf.txmode.offloads;
      rc = rte_eth_tx_queue_setup(pr.id, q, pr.tx_desc, static_cast<unsigned>(pr.socket), &txc);
      if (rc != 0)
        throw StartError("port " + pr.cfg->name + ": tx queue " + std::to_string(q) + " setup failed: " + rte_strerror(-rc));
    }
  }
  for (auto& pr : ports) {
    const int rc = rte_eth_dev_start(pr.id);
    if (rc != 0) throw StartError("port " + pr.cfg->name + ": start failed: " + rte_strerror(-rc));
    pr.started = true;
    rte_eth_promiscuous_enable(pr.id);  // a bump in the wire sees every frame; vdevs may refuse, harmless
  }
  dev.resize(ports.size());
  for (auto& pr : ports) {
    rte_eth_dev_info di{};
    if (pr.driver == "net_af_packet" && rte_eth_dev_info_get(pr.id, &di) == 0 && di.if_index > 0) {
      dev[pr.index].packet_fds = packet_sockets_of(static_cast<int>(di.if_index));
      if (dev[pr.index].packet_fds.empty())
        spdlog::warn("port {}: no AF_PACKET socket of interface {} found: its kernel drops cannot be counted",
                     pr.cfg->name, di.if_index);
    }
  }
}

void App::Impl::sample_devices() const {
  std::lock_guard lk(dev_mu);
  for (const auto& pr : ports) {
    if (!pr.started || pr.index >= dev.size()) continue;
    DeviceCounters& d = dev[pr.index];
    rte_eth_stats st{};
    if (rte_eth_stats_get(pr.id, &st) == 0) {
      const auto total = [](const rte_eth_stats& x) {
        return x.ipackets + x.opackets + x.imissed + x.ierrors + x.oerrors + x.rx_nombuf;
      };
      d.hidden = total(st) < total(d.held);
      if (!d.hidden) d.held = st;
    }
    if (!d.packet_fds.empty()) {
      const PacketSocketCounts c = read_packet_socket_counts(d.packet_fds);
      d.kernel_packets += c.packets;
      d.kernel_drops += c.drops;
    }
  }
}

void App::Impl::setup_lcores() {
  PipelineOptions po;
  po.lcores = static_cast<uint32_t>(cfg.poll_cores.size());
  po.ring_size = cfg.window_ring;
  po.max_records = cfg.max_records;
  po.batch = cfg.batch;
  po.max_wait_ms = cfg.max_wait_ms;
  po.infer_threads = cfg.infer_threads;
  po.unknown_below = cfg.unknown_below;
  po.table_capacity = cfg.table_capacity;
  po.build_cpus = build_cpus();
  po.infer_cpus = infer_groups();
  // Lcore -> (port, queue): ports in config order, their queues in order, poll CPUs in order.
  std::vector<std::pair<uint32_t, uint16_t>> assign;
  for (auto& pr : ports)
    for (uint16_t q = 0; q < pr.rx_queues; ++q) assign.emplace_back(pr.index, q);
  for (auto& a : assign) po.lcore_sockets.push_back(ports[a.first].socket);
  try {
    pipeline = std::make_unique<Pipeline>(po, classes, *topo, *out);
    current.model = model;
    current.path = fs::absolute(cfg.model_path).string();
    current.loaded_at = iso_now();
    current.tag = pipeline->publish_model(model);
    tag_ids[current.tag] = model->id();
  } catch (const std::exception& e) {
    throw StartError(e.what());
  }
  // Class actions (the model's classes are interned by publish_model).
  for (const auto& [cls, action] : cfg.actions) classes.set_action(classes.intern(cls), action);
  if (cfg.ipfix) {
    try {
      exporter = std::make_unique<IpfixExporter>(*cfg.ipfix, static_cast<uint32_t>(assign.size()));
    } catch (const std::exception& e) {
      throw StartError(std::string("exporters.ipfix.collector: ") + e.what());
    }
    publish_export(current.tag, model->id());
  }

  const uint64_t hz = rte_get_tsc_hz();
  start_tsc = rte_rdtsc();
  const uint64_t epoch = wall_ns();
  for (std::size_t i = 0; i < assign.size(); ++i) {
    auto lc = std::make_unique<LcoreState>();
    PortRuntime& rxp = ports[assign[i].first];
    PortRuntime* txp = nullptr;
    for (auto& p : ports)
      if (p.cfg->name == rxp.cfg->peer) txp = &p;
    lc->index = static_cast<uint32_t>(i);
    lc->lcore_id = static_cast<unsigned>(i + 1);
    lc->cpu = cfg.poll_cores[i];
    lc->rx_port = rxp.id;
    lc->rx_queue = assign[i].second;
    lc->port_index = rxp.index;
    lc->tx_port = txp->id;
    lc->tx_queue = txp->next_txq++;
    lc->win_ring = pipeline->window_ring(static_cast<uint32_t>(i));
    lc->win_pool = pipeline->window_pool(static_cast<uint32_t>(i));
    lc->verdict_ring = pipeline->verdict_ring(static_cast<uint32_t>(i));
    lc->classes = &classes;
    lc->stop = &stop;
    lc->max_records = cfg.max_records;
    lc->ring_full = cfg.ring_full;
    lc->clock_mode = cfg.clock;
    lc->ts_offset = ts_offset;
    lc->ts_flag = ts_flag;
    lc->tsc.init(hz, start_tsc, epoch);
    lc->expire_budget = kSweepBudget;
    try {
      lc->table = std::make_unique<FlowTable>(table_config(), &window_sink, lc.get(), static_cast<uint8_t>(i));
    } catch (const std::bad_alloc&) {
      throw StartError("flow_table.capacity " + std::to_string(cfg.table_capacity) +
                       ": not enough memory for the flow table of polling lcore " + std::to_string(i) + "; lower it");
    } catch (const std::exception& e) {
      throw StartError(std::string("flow_table: ") + e.what());
    }
    if (exporter) {
      lc->exporter = exporter.get();
      lc->ingress = rxp.id;
      try {
        lc->table->set_flow_end_sink(&flow_end_sink, lc.get(), seconds_to_ns(cfg.ipfix->active_timeout_s));
      } catch (const std::bad_alloc&) {
        throw StartError("flow_table.capacity " + std::to_string(cfg.table_capacity) +
                         ": not enough memory for the flow export state (32 B per flow); lower it");
      }
    }
    lc->sweep = SweepPacer(cfg.table_capacity, sweep_period(seconds_to_ns(cfg.idle_timeout_s)), lc->tsc.to_ns(start_tsc));
    if (rte_lcore_is_enabled(lc->lcore_id) == 0)
      throw StartError("EAL did not enable lcore " + std::to_string(lc->lcore_id) + " for CPU " + std::to_string(lc->cpu));
    lcores.push_back(std::move(lc));
  }
}

void App::Impl::print_placement() const {
  spdlog::info("placement (hwloc: {})", topo->describe());
  if (model && model->info().picture.window.bidirectional) {
    // Both directions of a connection must reach one lcore (one flow table).
    int rx_ports = 0;
    for (const auto& pr : ports) {
      rx_ports += pr.rx_queues > 0;
      if (pr.rx_queues > 1 && !pr.rss_symmetric)
        spdlog::warn("port {}: the model pairs both directions of a connection, but this port's {} rx queues have {}: "
                     "a connection's two directions may land on different lcores and be classified as two one-way "
                     "flows; give the port one rx queue", pr.cfg->name, pr.rx_queues,
                     pr.rss ? "RSS without the symmetric key (the device takes no key)" : "no RSS");
    }
    if (rx_ports > 1)
      spdlog::warn("the model pairs both directions of a connection, and {} ports receive: each port is polled by its "
                   "own lcores, so a connection whose directions arrive on different ports (inline between two "
                   "ports) is seen as two one-way flows; use a one-direction model (window.flows: uni) there", rx_ports);
  }
  for (const auto& pr : ports)
    spdlog::info("  port {} = DPDK port {} '{}' driver {} NUMA {}: {} rx queue(s) x {} desc, {} tx queue(s) x {} desc, "
                 "peer {}, RSS {}",
                 pr.cfg->name, pr.id, pr.cfg->dpdk_name(), pr.driver, numa_text(pr.socket), pr.rx_queues, pr.rx_desc,
                 pr.tx_queues, pr.tx_desc, pr.cfg->peer, pr.rss ? (pr.rss_symmetric ? "on (symmetric key)" : "on") : "off");
  for (const auto& lc : lcores) {
    const PortRuntime& rxp = ports[lc->port_index];
    const int node = topo->numa_node(lc->cpu);
    spdlog::info("  poll  CPU {} (NUMA {}) lcore {}: port {} rx queue {} -> port {} tx queue {}", lc->cpu,
                 numa_text(node), lc->lcore_id, rxp.cfg->name, lc->rx_queue, rxp.cfg->peer, lc->tx_queue);
    if (node >= 0 && rte_eth_dev_socket_id(rxp.id) >= 0 && node != rte_eth_dev_socket_id(rxp.id))
      spdlog::warn("  CPU {} is on NUMA node {} but port {} is on node {}: expect lower throughput", lc->cpu, node,
                   rxp.cfg->name, rte_eth_dev_socket_id(rxp.id));
  }
  auto nodes = [&](const std::vector<unsigned>& cpus) {
    std::set<int> n;
    for (unsigned c : cpus) n.insert(topo->numa_node(c));
    std::string s;
    for (int x : n) s += (s.empty() ? "" : ",") + numa_text(x);
    return s;
  };
  const auto b = build_cpus();
  spdlog::info("  build CPUs {} (NUMA {}){}: TBB, batches of {}, max wait {} ms", cpu_list_string(b), nodes(b),
               cfg.build_cores.empty() ? " floating" : "", cfg.batch, cfg.max_wait_ms);
  const auto g = infer_groups();
  for (std::size_t w = 0; w < g.size(); ++w)
    spdlog::info("  infer worker {}: CPUs {} (NUMA {}){}, {} OpenMP thread(s), model {}", w, cpu_list_string(g[w]),
                 nodes(g[w]), cfg.infer_cores.empty() ? " floating" : "", cfg.infer_threads, model->id());
  spdlog::info("  clock {}, flow table {} flows per lcore, {}, verdicts to {}", clock_mode_name(cfg.clock),
               cfg.table_capacity, window_text(model->info().picture.window), cfg.verdicts);
}

void App::start() {
  auto& d = *impl_;
  if (!d.model) d.preflight();
  // From here every stop signal is a clean stop: a SIGTERM while EAL and the ports start is
  // acted on by run() at once, with the summary, and the sockets and DPDK runtime files removed.
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGQUIT, on_signal);
  d.init_eal();
  d.setup_ports();
  d.setup_lcores();
  d.print_placement();
  std::signal(SIGHUP, on_hup);
  std::signal(SIGUSR1, on_usr1);
  std::signal(SIGPIPE, SIG_IGN);  // a closed verdict pipe is an output error (counted), not an exit
  d.pipeline->start();
  if (d.exporter) {
    d.exporter->start();
    spdlog::info("ipfix: flow records to {} (observation domain {})", d.exporter->collector(),
                 d.cfg.ipfix->observation_domain);
  }
  for (auto& lc : d.lcores) {
    const int rc = rte_eal_remote_launch(&lcore_main, lc.get(), lc->lcore_id);
    if (rc != 0) {
      d.stop.store(true);
      throw StartError("cannot launch polling lcore " + std::to_string(lc->lcore_id) + ": " + rte_strerror(-rc));
    }
  }
  d.lcores_running = true;
  d.started = std::chrono::steady_clock::now();
  d.start_control();
  d.drop_privileges();
}

void App::Impl::stats_line(double dt, std::vector<uint64_t>& prev_rx) const {
  uint64_t rx = 0, tx = 0, drop = 0, full = 0, flows = 0, closed = 0, sent = 0, wdrop = 0;
  for (const auto& lc : lcores) {
    rx += lc->c.rx.get();
    tx += lc->c.tx.get();
    drop += lc->c.dropped_action.get();
    full += lc->c.tx_full.get();
    wdrop += lc->c.windows_ring_full.get() + lc->c.windows_pool_empty.get();
    sent += lc->c.windows_sent.get();
    flows += lc->table->size();
    closed += lc->table->counters().windows_closed;
  }
  const uint64_t prev = prev_rx.empty() ? 0 : prev_rx[0];
  prev_rx.assign(1, rx);
  const auto& pc = pipeline->counters();
  spdlog::info("stats: rx {} ({:.0f} pps) tx {} dropped-action {} tx-full {} | flows {} | windows closed {} sent {} "
               "dropped {} | verdicts {} batches {}",
               rx, dt > 0 ? static_cast<double>(rx - prev) / dt : 0.0, tx, drop, full, flows, closed, sent, wdrop,
               pc.verdicts.get(), pc.batches.get());
}

int App::run() {
  auto& d = *impl_;
  using clock = std::chrono::steady_clock;
  auto last_stats = clock::now();
  std::vector<uint64_t> prev_rx;
  const uint64_t hz = rte_get_tsc_hz();
  const uint64_t idle_tsc = hz / 1000 * d.cfg.idle_ms;
  while (true) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (const int sig = g_signal.load()) {
      d.stop_reason = std::string("signal ") + (sig == SIGINT    ? "SIGINT"
                                                : sig == SIGTERM ? "SIGTERM"
                                                : sig == SIGQUIT ? "SIGQUIT"
                                                                 : std::to_string(sig));
      break;
    }
    if (stop_requested_.load()) {
      d.stop_reason = "requested";
      break;
    }
    if (const uint32_t h = g_hup.load(); h != d.hups_seen) {
      d.hups_seen = h;
      std::string err;
      if (d.out->reopen(&err)) spdlog::info("SIGHUP: verdict output {} reopened", d.out->where());
      else spdlog::error("SIGHUP: {}", err);
    }
    if (const uint32_t u = g_usr1.load(); u != d.usr1_seen) {
      d.usr1_seen = u;
      d.stats_line(std::chrono::duration<double>(clock::now() - last_stats).count(), prev_rx);
      last_stats = clock::now();
    }
    d.sample_devices();  // before a peer leaves (memif) and before the kernel counters wrap
    if (d.cfg.exit_at_end) {
      const uint64_t now = rte_rdtsc();
      bool all_idle = true;
      for (const auto& lc : d.lcores) {
        const uint64_t last = std::max(lc->c.last_rx_tsc.load(std::memory_order_relaxed), d.start_tsc);
        // last may be newer than now (the lcore received after now was read): not idle. Without
        // this check the unsigned difference wrapped and ended replays early under load.
        if (last >= now || now - last < idle_tsc) all_idle = false;
      }
      if (all_idle) {
        d.stop_reason = "end of replay (every port idle for " + std::to_string(d.cfg.idle_ms) + " ms)";
        break;
      }
    }
    if (d.cfg.stats_interval_s > 0) {
      const double dt = std::chrono::duration<double>(clock::now() - last_stats).count();
      if (dt >= d.cfg.stats_interval_s) {
        d.stats_line(dt, prev_rx);
        last_stats = clock::now();
      }
    }
  }
  spdlog::info("stopping: {}", d.stop_reason);
  d.stop_control();
  // Lcores flush their tables (waiting on the builders if needed), then the pipeline drains.
  d.stop.store(true);
  rte_eal_mp_wait_lcore();
  d.lcores_running = false;
  d.pipeline->finish();
  if (d.exporter) {
    // Verdicts of the last windows reached the lcores' rings after they stopped: they belong to
    // ended flows whose records wait for them in the exporter.
    for (auto& lc : d.lcores) drain_late_verdicts(*lc);
    d.exporter->finish();
  }
  d.out->flush();
  const auto s = d.summary();
  d.print_summary(s);
  if (!d.opt.summary_json.empty()) {
    std::string err;
    if (!replace_file(d.opt.summary_json, s.dump(2) + "\n", &err)) {
      spdlog::error("cannot write the summary to {}: {}", d.opt.summary_json, err);
      return 1;
    }
  }
  d.shutdown_ports();
  return 0;
}

void App::Impl::shutdown_ports() {
  for (auto& pr : ports) {
    if (!pr.started) continue;
    rte_eth_dev_stop(pr.id);
    rte_eth_dev_close(pr.id);  // net_pcap flushes and closes its tx_pcap here
    pr.started = false;
  }
}

nlohmann::ordered_json App::summary() const { return impl_->summary(); }

nlohmann::ordered_json App::Impl::summary() const {
  using J = nlohmann::ordered_json;
  J s;
  s["version"] = FLOWPIC_VERSION;
  {
    std::lock_guard lk(model_mu);  // the model serving now (after swaps), not the one at start
    s["model"] = current.model ? current.model->id() : model->id();
  }
  s["clock"] = clock_mode_name(cfg.clock);
  s["process"] = process_json();
  s["stop_reason"] = stop_reason;
  s["runtime_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  // Per port (rx side): what its lcores received and what became of it.
  J jports = J::array();
  sample_devices();
  for (const auto& pr : ports) {
    uint64_t rx = 0, fwd = 0, act = 0, full = 0, rx_bytes = 0, fwd_bytes = 0;
    for (const auto& lc : lcores)
      if (lc->port_index == pr.index) {
        rx += lc->c.rx.get();
        fwd += lc->c.tx.get();
        rx_bytes += lc->c.rx_bytes.get();
        fwd_bytes += lc->c.tx_bytes.get();
        act += lc->c.dropped_action.get();
        full += lc->c.tx_full.get();
      }
    J p;
    p["name"] = pr.cfg->name;
    p["device"] = pr.cfg->dpdk_name();
    p["driver"] = pr.driver;
    p["peer"] = pr.cfg->peer;
    p["rx"] = rx;
    p["forwarded"] = fwd;
    p["rx_bytes"] = rx_bytes;
    p["forwarded_bytes"] = fwd_bytes;
    p["dropped"] = {{"action", act}, {"tx_full", full}};
    if (const auto c = captures.find(pr.cfg->name); c != captures.end())
      p["capture"] = {{"file", c->second.file},
                      {"packets", c->second.packets},
                      {"error", c->second.error.empty() ? J(nullptr) : J(c->second.error)}};
    if (pr.index < dev.size()) {
      std::lock_guard lk(dev_mu);
      const DeviceCounters& d = dev[pr.index];
      const rte_eth_stats& st = d.held;
      p["device_stats"] = {{"ipackets", st.ipackets}, {"opackets", st.opackets}, {"imissed", st.imissed},
                           {"ierrors", st.ierrors},   {"oerrors", st.oerrors},   {"rx_nombuf", st.rx_nombuf},
                           {"held", d.hidden}};
      if (!d.packet_fds.empty())
        p["device_stats"]["kernel"] = {{"packets", d.kernel_packets}, {"dropped", d.kernel_drops}};
    }
    jports.push_back(std::move(p));
  }
  s["ports"] = std::move(jports);

  J jl = J::array();
  FlowTableCounters tot{};
  uint64_t sent = 0, ring_full = 0, pool_empty = 0, applied = 0, stale = 0;
  for (const auto& lc : lcores) {
    const auto& t = lc->table->counters();
    J l;
    l["lcore"] = lc->lcore_id;
    l["cpu"] = lc->cpu;
    l["port"] = ports[lc->port_index].cfg->name;
    l["rx_queue"] = lc->rx_queue;
    l["tx_queue"] = lc->tx_queue;
    l["clock"] = lcore_clock_name(lc->clock_used.load());
    l["rx"] = lc->c.rx.get();
    l["tx"] = lc->c.tx.get();
    l["rx_bytes"] = lc->c.rx_bytes.get();
    l["tx_bytes"] = lc->c.tx_bytes.get();
    l["dropped"] = {{"action", lc->c.dropped_action.get()}, {"tx_full", lc->c.tx_full.get()}};
    l["dscp_marked"] = lc->c.dscp_marked.get();
    l["no_timestamp"] = lc->c.no_timestamp.get();
    J parse = J::object();
    for (std::size_t r = 0; r < kParseResultCount; ++r)
      parse[parse_result_name(static_cast<ParseResult>(r))] = lc->c.parse[r].get();
    l["parse"] = std::move(parse);
    l["flows"] = {{"created", t.flows_created},        {"expired", t.flows_expired},
                  {"rejected_full", t.flows_rejected_full}, {"untracked_packets", lc->c.untracked.get()},
                  {"active_at_stop", lc->table->size()}, {"capacity", lc->table->capacity()},
                  {"memory_bytes", lc->table->memory_bytes()}, {"long_probes", t.long_probes}};
    l["windows"] = {{"closed", t.windows_closed},
                    {"emitted", t.windows_emitted},
                    {"too_small", t.windows_too_small},
                    {"over_limit", t.windows_over_limit},
                    {"decimated", t.windows_decimated},
                    {"dropped", {{"ring_full", lc->c.windows_ring_full.get()}, {"pool_empty", lc->c.windows_pool_empty.get()}}}};
    l["verdicts"] = {{"applied", lc->c.verdicts_applied.get()}, {"stale", lc->c.verdicts_stale.get()}};
    // How long the lcore waited for room in its window ring (on_full: wait, and the stop's flush).
    l["backpressure_s"] = static_cast<double>(lc->c.backpressure_tsc.get()) / static_cast<double>(rte_get_tsc_hz());
    jl.push_back(std::move(l));
    tot.flows_created += t.flows_created;
    tot.flows_expired += t.flows_expired;
    tot.flows_rejected_full += t.flows_rejected_full;
    tot.windows_closed += t.windows_closed;
    tot.windows_emitted += t.windows_emitted;
    tot.windows_too_small += t.windows_too_small;
    tot.windows_over_limit += t.windows_over_limit;
    sent += lc->c.windows_sent.get();
    ring_full += lc->c.windows_ring_full.get();
    pool_empty += lc->c.windows_pool_empty.get();
    applied += lc->c.verdicts_applied.get();
    stale += lc->c.verdicts_stale.get();
  }
  s["lcores"] = std::move(jl);
  s["flows"] = {{"created", tot.flows_created}, {"expired", tot.flows_expired}, {"rejected_full", tot.flows_rejected_full}};
  const auto& pc = pipeline->counters();
  s["windows"] = {{"closed", tot.windows_closed},
                  {"emitted", tot.windows_emitted},
                  {"too_small", tot.windows_too_small},
                  {"over_limit", tot.windows_over_limit},
                  {"dropped", {{"ring_full", ring_full}, {"pool_empty", pool_empty}, {"inference_failed", pc.windows_failed.get()}}},
                  {"classified", pc.verdicts.get()}};
  J by_class = J::object();
  for (int c = 0; c < classes.size(); ++c)
    by_class[classes.name(static_cast<int16_t>(c))] = pc.by_class[c].get();
  s["verdicts"] = {{"total", pc.verdicts.get()},
                   {"by_class", std::move(by_class)},
                   {"applied", applied},
                   {"stale", stale},
                   {"ring_full", pc.verdict_ring_full.get()}};
  const VerdictOutput::Stats os = out->stats();
  s["outputs"] = {{"verdicts", {{"where", out->where()},
                                {"lines", os.lines},
                                {"dropped", os.dropped},
                                {"write_errors", os.write_errors},
                                {"last_error", os.last_error}}}};
  if (exporter) {
    uint64_t recs = 0, dropped = 0, late_dropped = 0, updates = 0;
    for (const auto& lc : lcores) {
      recs += lc->c.flow_records.get();
      dropped += lc->c.flow_records_dropped.get();
      late_dropped += lc->c.late_verdicts_dropped.get();
      updates += lc->table->counters().flow_updates;
    }
    const ExportStats es = exporter->stats();
    s["export"] = {{"ipfix", {{"collector", exporter->collector()},
                              {"observation_domain", cfg.ipfix->observation_domain},
                              {"records", recs},
                              {"updates", updates},
                              {"dropped_ring_full", dropped},
                              {"late_verdicts_dropped", late_dropped},
                              {"sent", es.flow_records},
                              {"options_records", es.options_records},
                              {"messages", es.messages},
                              {"bytes", es.bytes},
                              {"template_sends", es.template_sends},
                              {"send_errors", es.send_errors},
                              {"lost_send", es.records_lost_send},
                              {"dropped_buffer_full", es.records_dropped_buffer},
                              {"reconnects", es.reconnects},
                              {"verdict_timeouts", es.verdict_timeouts}}}};
  }
  const LatencyHistogram h = pipeline->latency();
  s["inference"] = {{"workers", pipeline->inference_workers()},
                    {"batches", pc.batches.get()},
                    {"pictures", pc.pictures.get()},
                    {"failed_batches", pc.batch_failed.get()},
                    {"latency_us", {{"count", h.count()},
                                    {"p50", static_cast<double>(h.percentile(50)) / 1e3},
                                    {"p99", static_cast<double>(h.percentile(99)) / 1e3},
                                    {"max", static_cast<double>(h.max()) / 1e3}}}};
  return s;
}

void App::Impl::print_summary(const nlohmann::ordered_json& s) const {
  auto line = [](const std::string& t) { std::fprintf(stderr, "%s\n", t.c_str()); };
  line("==== flowpicd summary (" + s["stop_reason"].get<std::string>() + ", model " + s["model"].get<std::string>() + ") ====");
  for (const auto& p : s["ports"]) {
    line("port " + p["name"].get<std::string>() + " (" + p["driver"].get<std::string>() + "): rx " +
         std::to_string(p["rx"].get<uint64_t>()) + "  forwarded to " + p["peer"].get<std::string>() + " " +
         std::to_string(p["forwarded"].get<uint64_t>()) + "  dropped: action " +
         std::to_string(p["dropped"]["action"].get<uint64_t>()) + ", tx_full " +
         std::to_string(p["dropped"]["tx_full"].get<uint64_t>()));
    if (p.contains("device_stats") && p["device_stats"].contains("kernel"))
      line("  kernel (af_packet ring): " + std::to_string(p["device_stats"]["kernel"]["packets"].get<uint64_t>()) +
           " frames, " + std::to_string(p["device_stats"]["kernel"]["dropped"].get<uint64_t>()) +
           " dropped before flowpicd received them (ring full)");
    if (p.contains("capture") && !p["capture"]["error"].is_null())
      line("  WARNING: capture " + p["capture"]["file"].get<std::string>() + " is corrupt or truncated after " +
           std::to_string(p["capture"]["packets"].get<uint64_t>()) + " packets (" +
           p["capture"]["error"].get<std::string>() + ")");
  }
  for (const auto& l : s["lcores"]) {
    std::string parse;
    for (const auto& [k, v] : l["parse"].items())
      if (v.get<uint64_t>() > 0) parse += " " + k + "=" + std::to_string(v.get<uint64_t>());
    line("lcore " + std::to_string(l["lcore"].get<unsigned>()) + " (CPU " + std::to_string(l["cpu"].get<unsigned>()) +
         ", " + l["port"].get<std::string>() + " q" + std::to_string(l["rx_queue"].get<unsigned>()) + ", clock " +
         l["clock"].get<std::string>() + "): rx " + std::to_string(l["rx"].get<uint64_t>()) + " tx " +
         std::to_string(l["tx"].get<uint64_t>()) + " dscp-marked " + std::to_string(l["dscp_marked"].get<uint64_t>()) +
         " | parse:" + (parse.empty() ? " -" : parse));
    const auto& f = l["flows"];
    const auto& w = l["windows"];
    line("    flows created " + std::to_string(f["created"].get<uint64_t>()) + " expired " +
         std::to_string(f["expired"].get<uint64_t>()) + " rejected (table full) " +
         std::to_string(f["rejected_full"].get<uint64_t>()) + " | windows closed " +
         std::to_string(w["closed"].get<uint64_t>()) + " emitted " + std::to_string(w["emitted"].get<uint64_t>()) +
         " too-small " + std::to_string(w["too_small"].get<uint64_t>()) + " dropped ring-full " +
         std::to_string(w["dropped"]["ring_full"].get<uint64_t>()) + " pool-empty " +
         std::to_string(w["dropped"]["pool_empty"].get<uint64_t>()));
    if (const double bp = l["backpressure_s"].get<double>(); bp >= 0.001) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "    waited %.3f s for room in the window ring (back-pressure)", bp);
      line(buf);
    }
  }
  std::string cls;
  for (const auto& [k, v] : s["verdicts"]["by_class"].items()) cls += " " + k + "=" + std::to_string(v.get<uint64_t>());
  line("verdicts " + std::to_string(s["verdicts"]["total"].get<uint64_t>()) + ":" + cls);
  if (const auto& o = s["outputs"]["verdicts"]; o["dropped"].get<uint64_t>() > 0)
    line("verdict output " + o["where"].get<std::string>() + ": " + std::to_string(o["lines"].get<uint64_t>()) +
         " lines written, " + std::to_string(o["dropped"].get<uint64_t>()) + " dropped (" +
         std::to_string(o["write_errors"].get<uint64_t>()) + " failed writes: " + o["last_error"].get<std::string>() + ")");
  if (s.contains("export")) {
    const auto& e = s["export"]["ipfix"];
    auto u = [&e](const char* k) { return std::to_string(e[k].get<uint64_t>()); };
    line("ipfix " + e["collector"].get<std::string>() + ": flow records " + u("records") + " (updates " + u("updates") +
         ") sent " + u("sent") + " in " + u("messages") + " messages | dropped: ring-full " + u("dropped_ring_full") +
         " send-failed " + u("lost_send") + " buffer-full " + u("dropped_buffer_full") + " | send errors " +
         u("send_errors") + " reconnects " + u("reconnects") + " verdict-timeouts " + u("verdict_timeouts"));
  }
  const auto& inf = s["inference"];
  char buf[256];
  std::snprintf(buf, sizeof buf, "inference: %llu batches, %llu pictures, window close -> verdict p50 %.1f us, p99 %.1f us",
                static_cast<unsigned long long>(inf["batches"].get<uint64_t>()),
                static_cast<unsigned long long>(inf["pictures"].get<uint64_t>()),
                inf["latency_us"]["p50"].get<double>(), inf["latency_us"]["p99"].get<double>());
  line(buf);
}

}  // namespace flowpic

// ------------------------------------------------------------------ control plane

namespace flowpic {

void App::Impl::start_control() {
  if (cfg.control_socket.empty() && !cfg.prometheus_enabled) return;
  if (!cfg.control_socket.empty()) {
    ControlServerConfig cc;
    cc.socket_path = cfg.control_socket;
    cc.allowed_uids = cfg.control_allowed_uids;
    cc.allowed_gids = cfg.control_allowed_gids;
    ctl = std::make_unique<ControlServer>(cc);
    ctl->handle("status", [this](const nlohmann::json&) { return nlohmann::json(status_json()); },
                "version, uptime, ports, lcores, placement, model, clock");
    ctl->handle("stats", [this](const nlohmann::json&) { return nlohmann::json(stats_json()); },
                "counters per port, lcore and stage, verdicts per class");
    ctl->handle("flows.top", [this](const nlohmann::json& a) {
      const int64_t n = a.value("n", int64_t{10});
      const std::string by = a.value("by", std::string("packets"));
      if (by != "packets" && by != "bytes") throw CommandError(ctl_code::kBadRequest, "by: packets or bytes");
      if (n < 0) throw CommandError(ctl_code::kBadRequest, "n: a number >= 0");
      const uint32_t want = static_cast<uint32_t>(std::min<int64_t>(n, FlowQuery::kMaxTop));
      ask_lcores([&](FlowQuery& q) {
        q.kind = FlowQuery::Kind::kTop;
        q.by_bytes = by == "bytes";
        q.n = want;
      });
      std::vector<std::pair<FlowView, uint32_t>> all;
      for (const auto& lc : lcores)
        for (uint32_t i = 0; i < lc->query.count; ++i) all.emplace_back(lc->query.views[i], lc->lcore_id);
      auto key = [&](const FlowView& v) { return by == "bytes" ? v.bytes : v.packets; };
      std::sort(all.begin(), all.end(), [&](const auto& x, const auto& y) { return key(x.first) > key(y.first); });
      nlohmann::json flows = nlohmann::json::array();
      for (std::size_t i = 0; i < std::min<std::size_t>(want, all.size()); ++i)
        flows.push_back(flow_json(all[i].first, all[i].second));
      return nlohmann::json{{"flows", flows}};
    }, "flows with the most packets or bytes");
    ctl->handle("flows.get", [this](const nlohmann::json& a) {
      FlowKey key{};
      std::string err;
      if (!parse_flow_key(a.at("flow").get<std::string>(), key, &err)) throw CommandError(ctl_code::kBadRequest, err);
      ask_lcores([&](FlowQuery& q) {
        q.kind = FlowQuery::Kind::kGet;
        q.key = key;
      });
      for (const auto& lc : lcores)
        if (lc->query.found) return nlohmann::json{{"flow", flow_json(lc->query.views[0], lc->lcore_id)}};
      throw CommandError("not_found", "no such flow in any flow table");
    }, "one flow by its 5-tuple");
    ctl->handle("model.show", [this](const nlohmann::json&) {
      std::lock_guard lk(model_mu);
      return nlohmann::json{{"current", model_json(current)},
                            {"previous", previous.model ? model_json(previous) : nlohmann::json(nullptr)}};
    }, "the serving model and the previous one");
    ctl->handle_async("model.load",
                      [this](const nlohmann::json& a, const std::atomic<bool>& cancelled) {
                        return model_load(a.at("path").get<std::string>(), cancelled);
                      },
                      "validate, build and publish a model file (off the control thread)");
    ctl->handle("model.rollback", [this](const nlohmann::json&) { return model_rollback(); },
                "serve the previous model again");
    ctl->handle("outputs.rotate", [this](const nlohmann::json&) {
      std::string err;
      if (!out->reopen(&err)) throw CommandError(ctl_code::kFailed, err);
      nlohmann::json files = nlohmann::json::array();
      if (out->where() != "stdout" && out->where() != "none") files.push_back(out->where());
      return nlohmann::json{{"reopened", files}};
    }, "reopen the verdict file (logrotate)");
    ctl->handle("log.level", log_level_handler, "set the log level");
    try {
      ctl->start();
    } catch (const std::exception& e) {
      throw StartError(std::string("control.socket: ") + e.what());
    }
    std::string err;
    if (!register_control_telemetry(*ctl, &err)) spdlog::warn("DPDK telemetry commands not registered: {}", err);
    // flowpicctl -i finds RUN_BASE/INSTANCE/control.sock; any other place needs -s.
    if (cfg.control_socket == run_base() + "/" + cfg.instance + "/" + kControlSocketName)
      spdlog::info("control socket {} (flowpicctl -i {} status)", cfg.control_socket, cfg.instance);
    else
      spdlog::info("control socket {} (flowpicctl -s {} status)", cfg.control_socket, cfg.control_socket);
  }
  if (cfg.prometheus_enabled) {
    PrometheusConfig pc;
    pc.enabled = true;
    pc.address = cfg.prometheus_address;
    pc.port = cfg.prometheus_port;
    prom = std::make_unique<PrometheusServer>(pc, [this] { return metrics_from_snapshots(stats_json(), status_json()); });
    try {
      prom->start();
    } catch (const std::exception& e) {
      throw StartError(std::string("control.prometheus: ") + e.what());
    }
    spdlog::info("Prometheus metrics on http://{}:{}/metrics", cfg.prometheus_address, prom->port());
  }
}

void App::Impl::stop_control() {
  if (ctl || prom) clear_telemetry_sources();
  if (prom) prom->stop();
  if (ctl) ctl->stop();
  prom.reset();
  ctl.reset();
}

nlohmann::json App::Impl::model_json(const Served& s) const {
  const auto& info = s.model->info();
  nlohmann::json pic;
  to_json(pic, info.picture);
  return {{"id", s.model->id()}, {"path", s.path},        {"arch", arch_name(info.arch)}, {"classes", info.classes},
          {"loaded_at", s.loaded_at}, {"tag", s.tag}, {"picture", pic}};
}

nlohmann::json App::Impl::flow_json(const FlowView& v, uint32_t lcore) const {
  nlohmann::json j;
  j["flow"] = to_string(v.key);
  j["class"] = v.verdict >= 0 ? nlohmann::json(classes.name(v.verdict)) : nlohmann::json(nullptr);
  j["confidence"] = v.verdict >= 0 ? nlohmann::json(v.confidence) : nlohmann::json(nullptr);
  j["packets"] = v.packets;
  j["bytes"] = v.bytes;
  j["window_index"] = v.window_index;
  j["window_packets"] = v.window_packets;
  j["lcore"] = lcore;
  std::lock_guard lk(model_mu);
  const auto it = tag_ids.find(v.model_tag);
  j["model"] = v.verdict >= 0 && it != tag_ids.end() ? nlohmann::json(it->second) : nlohmann::json(nullptr);
  return j;
}

ControlServer::Commit App::Impl::model_load(const std::string& path, const std::atomic<bool>& cancelled) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec) || access(path.c_str(), R_OK) != 0)
    throw CommandError("model_unreadable", "model " + path + ": missing or not readable");
  const uintmax_t size = fs::file_size(path, ec);
  const uintmax_t limit = uintmax_t{cfg.model_max_mb} << 20;
  if (ec || size > limit)
    throw CommandError("model_too_large", "model " + path + ": " + std::to_string(size >> 20) + " MiB, larger than " +
                                              std::to_string(cfg.model_max_mb) +
                                              " MiB (control.model_max_mb); raise the limit if the file is right");
  auto abandoned = [&] {
    if (cancelled) throw CommandError(ctl_code::kCancelled, "model load of " + path + " abandoned");
  };
  std::shared_ptr<const Model> m;
  try {
    m = Model::load(path);
  } catch (const std::exception& e) {
    throw CommandError("model_invalid", e.what());
  }
  abandoned();
  WindowPolicy running;
  {
    std::lock_guard lk(model_mu);
    running = current.model->info().picture.window;
  }
  const WindowPolicy& a = m->info().picture.window;
  if (!same_window(a, running, kEveryWindowKey))
    throw CommandError("model_incompatible", "model " + m->id() + ": its windows (" + window_text(a) +
                                                 ") differ from the running flow tables' (" + window_text(running) + ")");
  try {  // builds the oneDNN primitives here, off the fast path, before anything is published
    Network probe(m, static_cast<int>(cfg.batch), static_cast<int>(cfg.infer_threads));
    abandoned();
    if (const std::string why = probe.probe_outputs(); !why.empty()) throw std::runtime_error(why);
  } catch (const CommandError&) {
    throw;
  } catch (const std::exception& e) {
    throw CommandError("model_invalid", "model " + m->id() + ": cannot run it: " + e.what());
  }
  abandoned();
  return [this, m, abs = fs::absolute(path).string()] {
    Served next;
    next.model = m;
    next.path = abs;
    next.loaded_at = iso_now();
    try {
      next.tag = pipeline->publish_model(m);
    } catch (const std::exception& e) {
      throw CommandError("model_invalid", e.what());
    }
    for (const auto& [cls, action] : cfg.actions) classes.set_action(classes.intern(cls), action);
    std::lock_guard lk(model_mu);
    tag_ids[next.tag] = m->id();
    publish_export(next.tag, m->id());
    const std::string old = current.model->id();
    previous = std::move(current);
    current = std::move(next);
    spdlog::info("model {} now serving (previous {})", current.model->id(), old);
    return nlohmann::json{{"id", current.model->id()}, {"previous", old}, {"applied_from", "next window"}};
  };
}

nlohmann::json App::Impl::model_rollback() {
  std::unique_lock lk(model_mu);
  if (!previous.model) throw CommandError("no_previous", "no previous model to roll back to");
  Served back = previous;
  lk.unlock();
  const uint32_t tag = pipeline->publish_model(back.model);
  lk.lock();
  tag_ids[tag] = back.model->id();
  publish_export(tag, back.model->id());
  back.tag = tag;
  const std::string retired = current.model->id();
  previous = std::move(current);
  current = std::move(back);
  spdlog::info("model rolled back to {} (was {})", current.model->id(), retired);
  return {{"id", current.model->id()}, {"previous", retired}};
}

nlohmann::ordered_json App::Impl::status_json() const {
  using J = nlohmann::ordered_json;
  J s;
  s["version"] = FLOWPIC_VERSION;
  s["uptime_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::string clk = clock_mode_name(cfg.clock);
  if (cfg.clock == ClockMode::kAuto && !lcores.empty()) {
    clk = lcore_clock_name(lcores[0]->clock_used.load());
  }
  s["clock"] = clk;
  J jp = J::array();
  for (const auto& pr : ports) {
    rte_eth_link link{};
    const bool up = pr.started && rte_eth_link_get_nowait(pr.id, &link) == 0 && link.link_status;
    jp.push_back({{"name", pr.cfg->name}, {"port_id", pr.id}, {"driver", pr.driver}, {"peer", pr.cfg->peer},
                  {"rx_queues", pr.rx_queues}, {"tx_queues", pr.tx_queues}, {"numa", pr.socket},
                  {"link", up ? "up" : "down"}});
  }
  s["ports"] = jp;
  J jl = J::array();
  for (const auto& lc : lcores)
    jl.push_back({{"lcore", lc->lcore_id}, {"cpu", lc->cpu}, {"role", "poll"}, {"port", ports[lc->port_index].cfg->name},
                  {"queue", lc->rx_queue}, {"numa", topo->numa_node(lc->cpu)}});
  s["lcores"] = jl;
  std::vector<unsigned> inf;
  for (const auto& g : infer_groups()) inf.insert(inf.end(), g.begin(), g.end());
  s["placement"] = {{"pollers", cfg.poll_cores}, {"builders", build_cpus()}, {"inference", inf}};
  {
    std::lock_guard lk(model_mu);
    s["model"] = model_json(current);
  }
  return s;
}

nlohmann::ordered_json App::Impl::stats_json() const {
  using J = nlohmann::ordered_json;
  const J sum = summary();
  J s;
  s["uptime_s"] = sum["runtime_s"];
  J jp = J::array();
  for (const auto& p : sum["ports"]) {
    J d = {{"action", p["dropped"]["action"]}, {"tx_full", p["dropped"]["tx_full"]}};
    J q = {{"name", p["name"]}, {"rx", {{"packets", p["rx"]}, {"bytes", p["rx_bytes"]}}},
         {"tx", {{"packets", p["forwarded"]}, {"bytes", p["forwarded_bytes"]}}}, {"dropped", d}};
    if (p.contains("device_stats")) {  // never received by flowpicd: not part of rx = tx + dropped
      q["device"] = {{"nic_missed", p["device_stats"]["imissed"]}, {"no_mbuf", p["device_stats"]["rx_nombuf"]}};
      if (p["device_stats"].contains("kernel")) q["device"]["kernel_dropped"] = p["device_stats"]["kernel"]["dropped"];
    }
    jp.push_back(std::move(q));
  }
  s["ports"] = jp;
  J jl = J::array();
  for (std::size_t i = 0; i < lcores.size(); ++i) {
    const auto& l = sum["lcores"][i];
    const auto& lc = *lcores[i];
    uint64_t unparsed = 0;
    for (std::size_t r = 0; r < kParseResultCount; ++r) {
      const auto pr = static_cast<ParseResult>(r);
      if (pr != ParseResult::kOk && pr != ParseResult::kOkFragment && pr != ParseResult::kNotIp)
        unparsed += lc.c.parse[r].get();
    }
    jl.push_back({{"lcore", l["lcore"]},
                  {"port", l["port"]},
                  {"queue", l["rx_queue"]},
                  {"rx", {{"packets", l["rx"]}, {"bytes", l["rx_bytes"]}}},
                  {"tx", {{"packets", l["tx"]}, {"bytes", l["tx_bytes"]}}},
                  {"dropped", l["dropped"]},
                  {"non_ip", lc.c.parse[static_cast<std::size_t>(ParseResult::kNotIp)].get()},
                  {"unparsed", unparsed},
                  {"parse", l["parse"]},
                  {"flows", {{"active", lc.table->size()},
                             {"capacity", lc.table->capacity()},
                             {"created", l["flows"]["created"]},
                             {"expired", l["flows"]["expired"]},
                             {"table_full", l["flows"]["rejected_full"]},
                             {"long_probes", l["flows"]["long_probes"]}}},
                  {"windows", l["windows"]}});
  }
  s["lcores"] = jl;
  s["stages"] = {{"windows", {{"closed", sum["windows"]["closed"]},
                              {"too_small", sum["windows"]["too_small"]},
                              {"built", sum["inference"]["pictures"]},
                              {"dropped", sum["windows"]["dropped"]}}},
                 {"inference", {{"batches", sum["inference"]["batches"]},
                                {"pictures", sum["inference"]["pictures"]},
                                {"latency_us", {{"p50", sum["inference"]["latency_us"]["p50"]},
                                                {"p99", sum["inference"]["latency_us"]["p99"]}}}}}};
  s["classes"] = sum["verdicts"]["by_class"];
  // IPFIX export (Prometheus: flowpic_ipfix_*_total, flowpic_ipfix_dropped_total{reason}).
  if (sum.contains("export")) {
    const auto& e = sum["export"]["ipfix"];
    s["stages"]["ipfix"] = {{"records", e["records"]},
                            {"updates", e["updates"]},
                            {"sent", e["sent"]},
                            {"messages", e["messages"]},
                            {"bytes", e["bytes"]},
                            {"template_sends", e["template_sends"]},
                            {"send_errors", e["send_errors"]},
                            {"reconnects", e["reconnects"]},
                            {"verdict_timeouts", e["verdict_timeouts"]},
                            {"dropped", {{"ring_full", e["dropped_ring_full"]},
                                         {"send_failed", e["lost_send"]},
                                         {"buffer_full", e["dropped_buffer_full"]}}}};
  }
  // Verdict lines written, dropped (write errors: full disk, closed pipe) and failed writes.
  if (sum.contains("outputs") && sum["outputs"].contains("verdicts")) {
    const auto& o = sum["outputs"]["verdicts"];
    s["outputs"] = {{"verdicts", {{"lines", o["lines"]}, {"dropped", o["dropped"]}, {"write_errors", o["write_errors"]}}}};
  }
  return s;
}

}  // namespace flowpic
