// Progress reporting for long offline work: a redrawn bar on stderr when it is a terminal,
// otherwise a plain line every few seconds (logs, CI). Not for the fast path.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace flowpic {

class Progress {
 public:
  // total = 0: unknown total (shows a count and a rate only).
  Progress(std::string what, uint64_t total, const char* unit = "")
      : what_(std::move(what)), unit_(unit), total_(total), tty_(isatty(STDERR_FILENO) == 1),
        start_(Clock::now()), last_(start_) {}
  ~Progress() { finish(); }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  static void set_enabled(bool on) noexcept { enabled() = on; }

  // Cheap when called often: redraws at most every 100 ms (tty) or 5 s (plain).
  void update(uint64_t done, const std::string& note = {}) {
    done_ = done;
    if (!enabled() || finished_) return;
    const auto now = Clock::now();
    const auto period = tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(5000);
    if (now - last_ < period) return;
    last_ = now;
    draw(now, note, false);
  }
  void add(uint64_t n = 1, const std::string& note = {}) { update(done_ + n, note); }

  // Final line (always printed on a tty so the bar ends at 100%; plain mode prints it
  // only when the work took long enough to have shown progress).
  void finish(const std::string& note = {}) {
    if (finished_) return;
    finished_ = true;
    if (!enabled()) return;
    const auto now = Clock::now();
    if (tty_) {
      draw(now, note, true);
    } else if (now - start_ >= std::chrono::seconds(5)) {
      draw(now, note, true);
    }
  }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  using Clock = std::chrono::steady_clock;
  static bool& enabled() {
    static bool on = true;
    return on;
  }
  void draw(Clock::time_point now, const std::string& note, bool final) {
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? static_cast<double>(done_) / secs : 0.0;
    char line[256];
    if (total_ > 0) {
      const double frac = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
      const double eta = rate > 0 ? static_cast<double>(total_ - std::min(done_, total_)) / rate : 0.0;
      if (tty_) {
        constexpr int kWidth = 28;
        char bar[kWidth + 1];
        const int filled = static_cast<int>(frac * kWidth);
        for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '#' : '.';
        bar[kWidth] = '\0';
        std::snprintf(line, sizeof line, "\r%s [%s] %3.0f%% %llu/%llu%s %.0f/s %s %.0fs %s\033[K", what_.c_str(), bar,
                      frac * 100, static_cast<unsigned long long>(done_), static_cast<unsigned long long>(total_),
                      unit_, rate, final ? "in" : "eta", final ? secs : eta, note.c_str());
      } else {
        std::snprintf(line, sizeof line, "%s: %llu/%llu%s (%.0f%%) %.0f/s %.0fs %s\n", what_.c_str(),
                      static_cast<unsigned long long>(done_), static_cast<unsigned long long>(total_), unit_,
                      frac * 100, rate, secs, note.c_str());
      }
    } else {
      std::snprintf(line, sizeof line, tty_ ? "\r%s: %llu%s %.0f/s %.0fs %s\033[K" : "%s: %llu%s %.0f/s %.0fs %s\n",
                    what_.c_str(), static_cast<unsigned long long>(done_), unit_, rate, secs, note.c_str());
    }
    std::fputs(line, stderr);
    if (tty_ && final) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

  std::string what_;
  const char* unit_;
  uint64_t total_;
  uint64_t done_ = 0;
  bool tty_;
  bool finished_ = false;
  Clock::time_point start_, last_;
};

}  // namespace flowpic
