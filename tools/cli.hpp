// Shared pieces of the `flowpic` subcommands (not a library API).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <stdexcept>
#include <string>

#include "flowtable/flow_table.hpp"
#include "picbuilder/flowpic.hpp"
#include "tools/selection.hpp"

namespace flowpic::cli {

// A usage mistake the parser could not see (conflicting options, bad value format): exit 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using Action = std::function<int()>;

// Each adds its subcommand to `app`; when that subcommand is chosen, *action is set.
void add_dataset(CLI::App& app, Action* action);
void add_train(CLI::App& app, Action* action);
void add_eval(CLI::App& app, Action* action);
void add_classify(CLI::App& app, Action* action);
void add_render(CLI::App& app, Action* action);
void add_info(CLI::App& app, Action* action);

// The exact command line, shell-quoted where needed (stored in models and datasets).
const std::string& command_line();
void set_command_line(int argc, char** argv);
bool progress_enabled();
void set_progress_enabled(bool on);

// Picture options shared by train and render.
struct PictureArgs {
  uint32_t resolution = 32;
  std::string time_axis = "auto";  // auto: span for time windows, log for count windows
  double horizon_s = 1.0;
  double tau_s = 0.001;
  std::string norm = "clip";
  float clip = 255.f;
  std::string channels = "auto";   // auto: 2 (one per direction) for bidirectional windows, else 1
  void add_to(CLI::App* sub);
  PictureConfig make(const WindowPolicy& window) const;  // throws UsageError
};

// Window selection shared by train and eval (tools/selection.hpp): sources, by-capture folds, caps.
struct SelectionArgs {
  std::vector<std::string> sources, exclude_sources, captures, exclude_captures;
  std::string fold, side = "all";
  uint32_t cap = 0;
  uint64_t cap_seed = 1;
  void add_to(CLI::App* sub);
  WindowSelection make() const;  // throws UsageError
};

// Duration option text "30", "30s", "500ms", "2m" -> ns. Throws UsageError.
TimeNs parse_duration(const std::string& text, const std::string& option);

}  // namespace flowpic::cli
