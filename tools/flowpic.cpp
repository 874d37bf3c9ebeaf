// flowpic: the offline command (dataset, train, eval, classify, render, info).
// Exit codes: 0 success, 1 runtime error (unreadable/corrupt file, ...), 2 usage error,
// 3 classify read a capture only in part (truncated, corrupt, unsupported link type; its
// verdicts are printed; --tolerate-corrupt makes that 0).
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>

#include "tools/cli.hpp"

#ifndef FLOWPIC_VERSION
#define FLOWPIC_VERSION "unknown"
#endif

using namespace flowpic;

int main(int argc, char** argv) {
  cli::set_command_line(argc, argv);
  auto logger = spdlog::stderr_color_mt("flowpic");
  logger->set_pattern("%^%l%$: %v");
  spdlog::set_default_logger(logger);

  CLI::App app{"flowpic: classify encrypted traffic by pictures of its flows (offline tools).\n"
               "Builds labelled window datasets from captures or ODE-Flow arrays, trains and evaluates\n"
               "FlowPic CNNs, classifies captures exactly as the flowpicd appliance does, renders FlowPics.",
               "flowpic"};
  app.set_version_flag("--version", FLOWPIC_VERSION);
  app.require_subcommand(1);
  bool quiet = false, verbose = false, no_progress = false;
  app.add_flag("-q,--quiet", quiet, "only warnings and errors on stderr");
  app.add_flag("-v,--verbose", verbose, "debug logs");
  app.add_flag("--no-progress", no_progress, "no progress bar or progress lines");
  app.fallthrough();

  cli::Action action;
  cli::add_dataset(app, &action);
  cli::add_train(app, &action);
  cli::add_eval(app, &action);
  cli::add_classify(app, &action);
  cli::add_render(app, &action);
  cli::add_info(app, &action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "flowpic: usage error: %s (try --help)\n", e.what());
    return 2;
  }
  spdlog::set_level(quiet ? spdlog::level::warn : verbose ? spdlog::level::debug : spdlog::level::info);
  cli::set_progress_enabled(!no_progress && !quiet);
  if (!action) {
    std::fprintf(stderr, "flowpic: usage error: no command given (try --help)\n");
    return 2;
  }
  try {
    return action();
  } catch (const cli::UsageError& e) {
    std::fprintf(stderr, "flowpic: usage error: %s (try --help)\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flowpic: error: %s\n", e.what());
    return 1;
  }
}
