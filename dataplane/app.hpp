// flowpicd as an object: start-up checks, EAL and ports, lcores, pipeline, run loop, summary.
// main.cpp only parses the command line; the control server (issue 4) wires in here.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataplane/config.hpp"
#include "infer/model.hpp"

namespace flowpic {

// A start-up failure: one line that says what to change. main prints it and exits 1.
struct StartError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct AppOptions {
  std::string summary_json;  // also write the summary here (JSON)
  bool check_only = false;   // validate config and model, start nothing
};

class App {
 public:
  App(Config cfg, AppOptions opt);
  ~App();

  // Checks that need neither EAL nor ports: model, cores, files, hugepages. Throws StartError.
  void preflight();
  // EAL, ports, lcores, pipeline; prints the placement. Throws StartError.
  void start();
  // Runs until a signal, request_stop(), or the end of a replay; then stops everything
  // and prints the summary. Returns the process exit code.
  int run();
  void request_stop() noexcept { stop_requested_.store(true); }

  nlohmann::ordered_json summary() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> stop_requested_{false};
};

}  // namespace flowpic
