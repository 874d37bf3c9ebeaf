// flowpicd configuration: one YAML file (see docs/configuration.md), validated completely
// before anything starts. Every problem is reported as one line that says what to change.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "export/exporter.hpp"
#include "flowtable/flow_table.hpp"

namespace flowpic {

// One line, fit for an operator: "config X: ports[0].rx_desc: expected a number, got 'abc'".
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct PortConfig {
  std::string name;          // operator's name ("wan", "p0"); used in logs and the summary
  std::string device;        // PCI address ("0000:3b:00.0") or vdev spec ("net_pcap0,rx_pcap=x.pcap")
  std::string peer;          // name of the port that transmits what this one receives (may be itself)
  uint32_t rx_queues = 1;    // = polling lcores on this port (one queue each)
  uint32_t rx_desc = 1024;
  uint32_t tx_desc = 1024;
  bool is_pci() const;       // device is a PCI address (else a vdev spec)
  std::string dpdk_name() const;  // name DPDK gives the device ("0000:3b:00.0", "net_pcap0")
};

enum class ClockMode : uint8_t { kAuto, kTrace, kTsc };
const char* clock_mode_name(ClockMode m) noexcept;

struct Action {
  enum class Kind : uint8_t { kForward = 0, kDrop = 1, kDscp = 2 };
  Kind kind = Kind::kForward;
  uint8_t dscp = 0;          // 0..63, for kDscp
  std::string to_string() const;
};

enum class RingFullPolicy : uint8_t {
  kDrop,  // live wire: the lcore never waits; the window is dropped and counted
  kWait,  // replays only: the lcore waits for the builders (lossless, slower than the file)
};

struct Config {
  std::string source;                       // file the config came from ("<embedded replay.yaml>")
  // Run directory (issue 16): instance: (default the config file's stem), run_dir: (default
  // $FLOWPICD_RUN_DIR/INSTANCE or /run/flowpicd/INSTANCE, always absolute once parsed).
  // Relative control.socket, outputs.verdicts and memif socket= are rewritten into it.
  std::string instance;
  std::string run_dir;
  // Service user (user:, group:, or flowpicd --user): empty = keep running as the starting user.
  std::string user, group;
  std::vector<std::string> eal;             // extra EAL arguments (no core options: see cores)
  std::vector<PortConfig> ports;
  std::optional<uint32_t> mempool_size;     // nullopt = auto
  uint32_t mempool_cache = 256;
  std::vector<unsigned> poll_cores, build_cores, infer_cores;  // CPU numbers
  uint32_t table_capacity = 1u << 16;       // flows per polling lcore
  double idle_timeout_s = 30.0;
  uint32_t max_records = 1024;
  std::optional<WindowPolicy> window;       // must equal the model's when given
  std::vector<std::string> window_keys;     // the keys given under window: (only those are compared)
  ClockMode clock = ClockMode::kAuto;
  std::string model_path;
  uint32_t batch = 64;
  uint32_t max_wait_ms = 10;
  uint32_t infer_threads = 1;               // OpenMP team size of each inference worker
  float unknown_below = 0.f;                // confidence below it prints "unknown" (and uses its action)
  std::string verdicts = "stdout";          // stdout | none | FILE
  double stats_interval_s = 10.0;           // 0 = no periodic stats line
  std::map<std::string, Action> actions;    // by class name (or "unknown")
  std::string control_socket;               // empty = no control socket (flowpicctl)
  // `model load` refuses files larger than this before reading them. The paper's 1500x1500
  // network is a 1.04 MiB file, the shipped lenet models 0.25 MiB.
  uint32_t model_max_mb = 16;
  std::vector<uint32_t> control_allowed_uids, control_allowed_gids;  // besides root and flowpicd's own uid
  bool prometheus_enabled = false;          // Prometheus text endpoint
  std::string prometheus_address = "127.0.0.1";
  uint16_t prometheus_port = 9470;
  bool exit_at_end = false;
  uint32_t idle_ms = 500;
  uint32_t window_ring = 4096;              // per polling lcore, windows waiting for builders
  RingFullPolicy ring_full = RingFullPolicy::kDrop;
  std::optional<ExportConfig> ipfix;        // exporters.ipfix: flow records to an IPFIX collector

  const PortConfig* port(const std::string& name) const;
};

// Loads and validates (structure, types, ranges, cross references that need no DPDK and
// no model). `overrides` are "dotted.key=value" (ports.0.device=..., inference.batch=32),
// applied to the YAML before validation. Resolves the run directory (reads $FLOWPICD_RUN_DIR)
// and rewrites relative run-time paths into it (resolve_run_paths). Throws ConfigError.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides = {});

// Sets c.run_dir (YAML run_dir:, else $FLOWPICD_RUN_DIR/INSTANCE, else /run/flowpicd/INSTANCE)
// and rewrites relative control.socket, outputs.verdicts and net_memif socket= arguments into it
// (a memif socket rewritten so also gets socket-abstract=no: DPDK 22.11's memif PMD makes
// abstract sockets by default, which would live in no directory). `run_dir_yaml` is the value
// of run_dir: (empty when absent). Called by parse_config; exposed for tests.
void resolve_run_paths(Config& c, const std::string& run_dir_yaml);

// The configs/replay.yaml shipped in the binary (used when no -c is given).
const char* embedded_replay_config() noexcept;

}  // namespace flowpic
