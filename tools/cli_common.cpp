#include <charconv>

#include "tools/cli.hpp"

namespace flowpic::cli {

namespace {
std::string g_command_line;
bool g_progress = true;

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") ==
                        std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}
}  // namespace

const std::string& command_line() { return g_command_line; }
void set_command_line(int argc, char** argv) {
  g_command_line.clear();
  for (int i = 0; i < argc; ++i) {
    if (i) g_command_line += ' ';
    g_command_line += shell_quote(argv[i]);
  }
}
bool progress_enabled() { return g_progress; }
void set_progress_enabled(bool on) { g_progress = on; }

void SelectionArgs::add_to(CLI::App* sub) {
  sub->add_option("--source", sources, "use only windows of these sources (corpus datasets; repeatable or comma-separated)")->delimiter(',');
  sub->add_option("--exclude-source", exclude_sources, "leave these sources out (leave-one-source-out)")->delimiter(',');
  sub->add_option("--capture", captures, "use only these captures (dataset source names, e.g. ode-flow/val; repeatable)")->delimiter(',');
  sub->add_option("--exclude-capture", exclude_captures, "leave these captures out (repeatable)")->delimiter(',');
  sub->add_option("--fold", fold, "by-capture split K/N: captures are hashed into N folds, fold K is the test side");
  sub->add_option("--side", side, "with --fold: train (every fold but K), test (fold K) or all")
      ->capture_default_str()
      ->check(CLI::IsMember({"all", "train", "test"}));
  sub->add_option("--cap", cap, "at most this many windows per (source, class), a seeded random subset (0 = all)")->capture_default_str();
  sub->add_option("--cap-seed", cap_seed, "seed of the --cap subset")->capture_default_str();
}

WindowSelection SelectionArgs::make() const {
  WindowSelection s;
  s.sources = sources;
  s.exclude_sources = exclude_sources;
  s.captures = captures;
  s.exclude_captures = exclude_captures;
  s.cap = cap;
  s.seed = cap_seed;
  if (!fold.empty()) {
    std::string err;
    if (!parse_fold(fold, s.fold, s.folds, &err)) throw UsageError("--fold '" + fold + "': " + err);
    if (side == "all") throw UsageError("--fold needs --side train or --side test");
  } else if (side != "all") {
    throw UsageError("--side " + side + " needs --fold K/N");
  }
  s.side = side == "train" ? WindowSelection::Side::kTrain : side == "test" ? WindowSelection::Side::kTest : WindowSelection::Side::kAll;
  return s;
}

void PictureArgs::add_to(CLI::App* sub) {
  sub->add_option("--resolution", resolution, "picture side R (R x R bins)")->capture_default_str()->check(CLI::Range(4, 1500));
  sub->add_option("--time-axis", time_axis, "x axis: span (scaled to the window), fixed (0..horizon), log (log-time); auto = span for time windows, log for count windows")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "span", "fixed", "log"}));
  sub->add_option("--horizon", horizon_s, "seconds covered by the fixed/log time axis")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--tau", tau_s, "log time axis time constant, seconds")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--norm", norm, "pixel normalisation: clip (min(count,clip)/clip) or log")
      ->capture_default_str()
      ->check(CLI::IsMember({"clip", "log"}));
  sub->add_option("--clip", clip, "pixel counts are clipped here")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--channels", channels, "picture channels: 1 (every packet in one picture) or 2 (initiator's "
                                          "packets, then the responder's; needs bidirectional windows); auto = 2 "
                                          "for bidirectional windows")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "1", "2"}));
}

PictureConfig PictureArgs::make(const WindowPolicy& window) const {
  PictureConfig c;
  c.window = window;
  c.resolution = resolution;
  std::string axis = time_axis;
  if (axis == "auto") axis = window.kind == WindowPolicy::Kind::kTime ? "span" : "log";
  if (!time_axis_from_name(axis, c.time_axis)) throw UsageError("--time-axis: unknown axis '" + axis + "'");
  c.horizon_s = horizon_s;
  c.log_tau_s = tau_s;
  c.clip = clip;
  c.norm = norm == "log" ? Normalisation::kLog : Normalisation::kClipScale;
  c.channels = channels == "auto" ? (window.bidirectional ? 2u : 1u) : static_cast<uint32_t>(std::stoul(channels));
  if (c.channels == 2 && !window.bidirectional)
    throw UsageError("--channels 2 needs windows of both directions: make the dataset with --flows bi");
  const std::string err = c.validate();
  if (!err.empty()) throw UsageError("picture options: " + err);
  return c;
}

TimeNs parse_duration(const std::string& text, const std::string& option) {
  double v = 0;
  const char* b = text.data();
  const char* e = text.data() + text.size();
  auto [p, ec] = std::from_chars(b, e, v);
  const std::string unit(p, e);
  double mult = 1e9;
  if (unit.empty() || unit == "s") mult = 1e9;
  else if (unit == "ms") mult = 1e6;
  else if (unit == "us") mult = 1e3;
  else if (unit == "m") mult = 60e9;
  else ec = std::errc::invalid_argument;
  if (ec != std::errc() || !(v > 0) || v * mult > 1e18)
    throw UsageError(option + ": bad duration '" + text + "' (e.g. 30, 30s, 500ms, 2m)");
  return static_cast<TimeNs>(v * mult + 0.5);
}

}  // namespace flowpic::cli
