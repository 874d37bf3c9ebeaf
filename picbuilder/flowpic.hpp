// FlowPic: the 2D histogram of one window's {packet size, arrival time} pairs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "common/window.hpp"
#include "flowtable/flow_table.hpp"

namespace flowpic {

enum class TimeAxis : uint8_t {
  kSpan,   // x scaled to the window's span (time windows: the window length; count windows: first..last packet)
  kFixed,  // x = t / horizon, packets past the horizon land in the last column
  kLog,    // x = log1p(t / tau) / log1p(horizon / tau)
};
enum class Normalisation : uint8_t {
  kClipScale,  // min(count, clip) / clip  -> [0, 1]
  kLog,        // log1p(min(count, clip)) / log1p(clip)
};

// Everything that turns a window into the CNN's input. Stored in every model file, so a
// model is only ever fed pictures made the way its training pictures were.
struct PictureConfig {
  WindowPolicy window;                  // how windows are cut (flowtable)
  uint32_t resolution = 32;             // R: the picture is R x R
  uint32_t max_size = 1500;             // y axis covers [0, max_size]; larger sizes go in the top row
  TimeAxis time_axis = TimeAxis::kLog;
  double horizon_s = 1.0;               // kFixed / kLog: time covered by the x axis (count windows)
  double log_tau_s = 0.001;             // kLog: time constant
  float clip = 255.f;                   // pixel counts clipped here (mini-FlowPic / tcbench)
  Normalisation norm = Normalisation::kClipScale;
  uint32_t channels = 1;                // 1: one picture of every record; 2: two pictures, the
                                        // initiator's packets then the responder's (needs
                                        // bidirectional windows)

  std::string validate() const;         // empty when usable, else what is wrong
  bool same_pictures(const PictureConfig& o) const noexcept;  // would produce identical inputs
};
// JSON form (model files, configs): every field is required, enums are strings:
//   {"window": {"kind": "time"|"count", "length_s": 15.0, "packets": 20, "min_packets": 10,
//               "max_windows": 0, "flows": "uni"|"bi"},
//    "resolution": 32, "max_size": 1500, "time_axis": "span"|"fixed"|"log", "horizon_s": 1.0,
//    "log_tau_s": 0.001, "clip": 255.0, "norm": "clip_scale"|"log", "channels": 1|2}
// "flows" (default "uni") and "channels" (default 1) may be absent: files written before
// bidirectional windows existed. from_json throws std::invalid_argument ("picture config: ...") on a missing, mistyped or
// out-of-range field, and when the parsed config fails validate().
void to_json(nlohmann::json& j, const PictureConfig& c);
void from_json(const nlohmann::json& j, PictureConfig& c);  // throws on missing/invalid fields
const char* time_axis_name(TimeAxis a) noexcept;              // "span", "fixed", "log"
const char* normalisation_name(Normalisation n) noexcept;     // "clip_scale", "log"
bool time_axis_from_name(const std::string& s, TimeAxis& out) noexcept;
bool normalisation_from_name(const std::string& s, Normalisation& out) noexcept;

// Floats in one picture (channels * R * R).
inline std::size_t picture_floats(const PictureConfig& c) noexcept {
  return static_cast<std::size_t>(c.channels) * c.resolution * c.resolution;
}

// Histogram layout: out[ch * R * R + y * R + x], y = size bin (0 = smallest sizes), x = time
// bin (0 = earliest), ch = 0 with one channel, else the record's direction (0 = initiator ->
// responder, 1 = back). Writes all channels * R * R floats. No allocation; safe to call from
// any thread.
//
// Binning (integer-exact where the inputs are integers):
// - y = floor(size * R / (max_size + 1)), clamped to R-1: sizes above max_size (jumbo frames,
//   TSO/GRO super-packets in captures) are kept, in the top row, rather than dropped.
// - t = time since the window start: for time windows the record's t_us plus the window's
//   first packet offset within its block (first_ns - start_ns, ignored when outside
//   [0, length)); for count windows t_us itself (the window starts at its first packet).
// - x by cfg.time_axis, always clamped to [0, R-1]:
//   kSpan  time windows: floor(t * R / length); count windows: floor(t * R / span) with
//          span = the largest t_us of the records (the last packet), t == span -> R-1,
//          span 0 -> column 0;
//   kFixed floor(t * R / horizon);
//   kLog   floor(log1p(t / tau) / log1p(horizon / tau) * R).
// - each record adds its weight (packets it stands for after decimation); weight 0 counts
//   as 1 (a record always stands for at least the packet that made it).
// - build_flowpic then clips at cfg.clip and normalises (kClipScale: c / clip,
//   kLog: log1p(c) / log1p(clip)); zero stays zero.
void build_flowpic(const PictureConfig& cfg, const WindowInfo& info, const PacketRecord* recs,
                   uint32_t n, float* out) noexcept;

// Raw (unclipped, unnormalised) counts, for rendering and tests. Writes all picture_floats counts;
// saturates at UINT32_MAX.
void build_histogram(const PictureConfig& cfg, const WindowInfo& info, const PacketRecord* recs,
                     uint32_t n, uint32_t* counts) noexcept;

}  // namespace flowpic
