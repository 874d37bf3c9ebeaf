// Time is injected: flow tables never read a clock themselves. Offline, time is the
// capture's timestamp; in the dataplane it is the mbuf timestamp (trace) or the TSC.
#pragma once

#include <cstdint>

namespace flowpic {

using TimeNs = uint64_t;  // nanoseconds since the Unix epoch (trace) or since start (tsc)

constexpr TimeNs kNsPerUs = 1000ULL;
constexpr TimeNs kNsPerMs = 1000ULL * 1000ULL;
constexpr TimeNs kNsPerSec = 1000ULL * 1000ULL * 1000ULL;

inline TimeNs seconds_to_ns(double s) noexcept { return static_cast<TimeNs>(s * 1e9 + 0.5); }

}  // namespace flowpic
