// flowpicd: the DPDK inline appliance. Reads a YAML config (default: the embedded
// configs/replay.yaml), classifies every flow by its FlowPic and forwards traffic inline.
#include <rte_version.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "dataplane/app.hpp"
#include "dataplane/config.hpp"

int main(int argc, char** argv) {
  using namespace flowpic;
  // Until flowpicd installs its handlers (after EAL init), SIGHUP/SIGUSR1 must not kill it and a
  // closed stdout must not either (SIGPIPE).
  std::signal(SIGHUP, SIG_IGN);
  std::signal(SIGUSR1, SIG_IGN);
  std::signal(SIGPIPE, SIG_IGN);
  // stdout carries verdicts; every log line goes to stderr.
  spdlog::set_default_logger(spdlog::stderr_color_mt("flowpicd"));
  spdlog::set_pattern("%^[%H:%M:%S.%e] %l:%$ %v");

  CLI::App cli{"flowpicd: classifies every flow by its FlowPic with a CNN and forwards traffic inline (DPDK).\n"
               "Without -c it runs the embedded configs/replay.yaml (a shipped capture, no NIC, no hugepages).\n"
               "Run-time files (control socket, memif sockets, relative outputs) go to the instance's private run\n"
               "directory: run_dir:, else $FLOWPICD_RUN_DIR/INSTANCE, else /run/flowpicd/INSTANCE (INSTANCE: instance:,\n"
               "default the config file's name without .yaml); one flowpicd per instance (RUN_DIR/flowpicd.lock)."};
  std::string config_path, summary_json, log_level = "info", user;
  std::vector<std::string> overrides;
  bool check = false, print_default = false;
  cli.add_option("-c,--config", config_path, "YAML config file (see docs/configuration.md)");
  cli.add_option("--set", overrides, "override a config key, e.g. --set inference.batch=32 --set ports.0.device=...")
      ->type_name("KEY=VALUE");
  cli.add_option("--summary-json", summary_json, "also write the final summary as JSON to FILE")->type_name("FILE");
  cli.add_option("--user", user,
                 "after start-up switch every thread to USER (and its primary group), keeping no capability; "
                 "overrides user:/group:, needs root")
      ->type_name("USER");
  cli.add_flag("--check", check,
               "validate the config, the model and user:/group:, then exit (starts no DPDK, creates no file)");
  cli.add_flag("--print-default-config", print_default, "print the embedded default config and exit");
  cli.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  cli.set_version_flag("-V,--version", std::string("flowpicd ") + FLOWPIC_VERSION + " (" + rte_version() + ")");
  CLI11_PARSE(cli, argc, argv);
  spdlog::set_level(spdlog::level::from_str(log_level));

  if (print_default) {
    std::fputs(embedded_replay_config(), stdout);
    return 0;
  }
  try {
    Config cfg = config_path.empty()
                     ? parse_config(embedded_replay_config(), "<embedded configs/replay.yaml>", overrides)
                     : load_config(config_path, overrides);
    if (!user.empty()) {
      cfg.user = user;
      cfg.group.clear();
    }
    AppOptions opt;
    opt.summary_json = summary_json;
    opt.check_only = check;
    App app(std::move(cfg), opt);
    app.preflight();
    if (check) {
      std::fprintf(stderr, "flowpicd: config and model OK\n");
      return 0;
    }
    app.start();
    return app.run();
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "flowpicd: %s\n", e.what());
  } catch (const StartError& e) {
    std::fprintf(stderr, "flowpicd: %s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flowpicd: %s\n", e.what());
  }
  return 1;
}
