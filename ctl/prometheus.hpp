// Prometheus text exposition (format 0.0.4): a small metrics model, its renderer, and a
// minimal HTTP server that answers GET /metrics on its own thread (off by default).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace flowpic {

struct MetricSample {
  std::map<std::string, std::string> labels;  // no per-flow labels: keep cardinality bounded
  double value = 0;
};

struct Metric {
  enum class Type { kCounter, kGauge };
  std::string name;  // counters end in _total (the renderer appends it when missing); base units
  std::string help;
  Type type = Type::kGauge;
  std::vector<MetricSample> samples;
};

// Renders families in the order given; families sharing a name are merged (one HELP/TYPE).
// Invalid characters in metric and label names become '_' so a scrape never breaks.
std::string render_prometheus(const std::vector<Metric>& metrics);

// flowpic_model_info{model="...",classes="a,b,c"} 1
Metric model_info_metric(const std::string& model_id, const std::vector<std::string>& classes);

// The metrics of the documented snapshots (docs/control.md): `stats` is the reply of the
// "stats" command, `status` the reply of "status" (either may be null). Fields that are missing
// are simply not exported, so the dataplane can grow its snapshots without touching this.
std::vector<Metric> metrics_from_snapshots(const nlohmann::json& stats, const nlohmann::json& status);

// Empty when `address` is a listen address PrometheusServer can bind (numeric IPv4 or IPv6),
// else why not (getaddrinfo's reason): `flowpicd --check` asks before anything starts.
std::string listen_address_problem(const std::string& address);

struct PrometheusConfig {
  bool enabled = false;
  std::string address = "127.0.0.1";  // numeric IPv4 or IPv6; "0.0.0.0" / "::" for all
  uint16_t port = 9470;               // 0: an ephemeral port (tests), see PrometheusServer::port()
  int request_timeout_ms = 2000;      // a scraper must send its request within this
  size_t max_request_bytes = 8192;
  int max_clients = 32;
};

class PrometheusServer {
 public:
  // Called on the server thread for every scrape; must be thread-safe with the dataplane.
  using Collector = std::function<std::vector<Metric>()>;

  PrometheusServer(PrometheusConfig cfg, Collector collector);
  ~PrometheusServer();
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  // Binds and starts the thread (no-op when cfg.enabled is false). Throws std::runtime_error
  // with a one-line reason (address in use, bad address, ...).
  void start();
  void stop();
  bool running() const noexcept { return running_.load(); }
  uint16_t port() const noexcept { return bound_port_; }  // the port actually bound
  uint64_t scrapes() const noexcept { return scrapes_.load(); }

 private:
  void run();
  std::string respond(const std::string& request);

  PrometheusConfig cfg_;
  Collector collector_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  uint16_t bound_port_ = 0;
  std::atomic<bool> running_{false};
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> scrapes_{0};
  std::thread thread_;
};

}  // namespace flowpic
