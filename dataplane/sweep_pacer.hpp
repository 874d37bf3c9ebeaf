// How many flow table slots a polling lcore's live-time sweep looks at in one poll.
//
// The sweep (FlowTable::expire) expires idle flows and closes the time windows of flows that
// went quiet; covering the whole table once per `period` bounds how late either happens. Each
// slot it looks at is a cold cache line at 1M flows, taken from the same memory parallelism
// the packets need, so under full bursts the lcore sweeps only what the elapsed time owes,
// in runs of at least kMinRun consecutive slots. A poll that was not full has time to spare
// and sweeps a whole budget.
#pragma once

#include <algorithm>
#include <cstdint>

#include "common/clock.hpp"

namespace flowpic {

// The table is swept once per period: an eighth of the idle timeout, at most one second
// (a flow idle for T is expired by T + T/8, a quiet flow's time window closes within a second).
inline TimeNs sweep_period(TimeNs idle_timeout_ns) noexcept {
  return std::clamp<TimeNs>(idle_timeout_ns / 8, kNsPerMs, kNsPerSec);
}

class SweepPacer {
 public:
  static constexpr uint32_t kMinRun = 8;

  SweepPacer() = default;
  SweepPacer(uint32_t capacity, TimeNs period_ns, TimeNs now) noexcept
      : period_(std::max<TimeNs>(period_ns, 1)),
        rate_(((static_cast<uint64_t>(capacity) << 32) + period_ - 1) / period_),
        cap_(static_cast<uint64_t>(capacity) << 32),
        last_(now) {}

  // Slots to sweep in this poll at time `now` (0: none); `busy` = the poll had a full burst,
  // `max` = the most one poll may sweep.
  uint32_t budget(TimeNs now, bool busy, uint32_t max) noexcept {
    const TimeNs dt = now > last_ ? std::min(now - last_, period_) : 0;  // a whole period at most
    last_ = std::max(now, last_);
    owed_ = std::min(owed_ + dt * rate_, cap_);  // slots owed, 32.32 fixed point
    const uint64_t slots = owed_ >> 32;
    if (busy && slots < kMinRun) return 0;
    const uint32_t b = busy ? static_cast<uint32_t>(std::min<uint64_t>(slots, max)) : max;
    owed_ -= std::min(owed_, static_cast<uint64_t>(b) << 32);
    return b;
  }

 private:
  TimeNs period_ = kNsPerSec;
  uint64_t rate_ = 0;  // slots per ns, 32.32 fixed point
  uint64_t cap_ = 0;   // owed never exceeds one table
  uint64_t owed_ = 0;
  TimeNs last_ = 0;
};

}  // namespace flowpic
