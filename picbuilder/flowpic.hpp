// FlowPic: the 2D histogram of one window's {packet size, arrival time} pairs.
#pragma once

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

  std::string validate() const;         // empty when usable, else what is wrong
  bool same_pictures(const PictureConfig& o) const noexcept;  // would produce identical inputs
};
void to_json(nlohmann::json& j, const PictureConfig& c);
void from_json(const nlohmann::json& j, PictureConfig& c);  // throws on missing/invalid fields
const char* time_axis_name(TimeAxis a) noexcept;

// Histogram layout: out[y * R + x], y = size bin (0 = smallest sizes), x = time bin (0 = earliest).
// Writes all R*R floats. No allocation; safe to call from any thread.
void build_flowpic(const PictureConfig& cfg, const WindowInfo& info, const PacketRecord* recs,
                   uint32_t n, float* out) noexcept;

// Raw (unclipped, unnormalised) counts, for rendering and tests.
void build_histogram(const PictureConfig& cfg, const WindowInfo& info, const PacketRecord* recs,
                     uint32_t n, uint32_t* counts) noexcept;

}  // namespace flowpic
