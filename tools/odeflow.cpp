#include "tools/odeflow.hpp"

#include <cmath>
#include <filesystem>

namespace flowpic {

const std::vector<std::string>& odeflow_classes() {
  static const std::vector<std::string> kClasses = {"VoIP", "Video", "File_Transfer", "Chat", "Browsing"};
  return kClasses;
}

WindowDataset dataset_from_odeflow(const NpyArray& x, const NpyArray& y, const std::string& source) {
  if (x.shape.size() != 3 || x.shape[1] != 2 || x.shape[2] < 1)
    throw DatasetError(source + ": x must have shape (N, 2, packets)");
  if (y.shape.size() != 1 || y.shape[0] != x.shape[0])
    throw DatasetError(source + ": y must have shape (N,) with the same N as x");
  const int64_t n = x.shape[0], p = x.shape[2];
  WindowDataset ds;
  ds.classes = odeflow_classes();
  ds.sources = {source};
  ds.window.kind = WindowPolicy::Kind::kCount;
  ds.window.packets = static_cast<uint32_t>(p);
  ds.window.min_packets = static_cast<uint32_t>(p);
  ds.windows.reserve(static_cast<size_t>(n));
  ds.records.reserve(static_cast<size_t>(n * p));
  std::vector<PacketRecord> recs(static_cast<size_t>(p));
  for (int64_t i = 0; i < n; ++i) {
    auto fail = [&](const std::string& why) {
      return DatasetError(source + ": sample " + std::to_string(i) + ": " + why);
    };
    const double label = y.data[static_cast<size_t>(i)];
    if (!(label >= 0 && label <= 4) || label != std::floor(label)) throw fail("label is not one of 0..4");
    const double* sizes = x.data.data() + i * 2 * p;
    const double* times = sizes + p;
    const double t0 = times[0];
    WindowInfo info;
    info.key.family = 4;  // ODE-Flow keeps no addresses: every window has the empty IPv4 key
    info.reason = CloseReason::kCount;
    for (int64_t k = 0; k < p; ++k) {
      const double s = sizes[k], t = times[k];
      if (!std::isfinite(s) || s < 0 || s > 65535 || s != std::floor(s)) throw fail("bad packet size");
      if (!std::isfinite(t) || t < t0 || t - t0 > 4000.0) throw fail("times must be finite, not before the first packet, within 4000 s");
      if (k > 0 && t < times[k - 1]) throw fail("times go backwards");
      const auto t_us = static_cast<uint32_t>(std::llround((t - t0) * 1e6));
      recs[static_cast<size_t>(k)] = PacketRecord{t_us, static_cast<uint16_t>(s), 1};
      info.bytes += static_cast<uint64_t>(s);
    }
    info.packets = static_cast<uint32_t>(p);
    info.start_ns = info.first_ns = 0;
    info.end_ns = info.last_ns = static_cast<uint64_t>(recs.back().t_us) * kNsPerUs;
    info.index = 0;
    ds.add(info, recs.data(), static_cast<uint32_t>(p), static_cast<int32_t>(label), 0);
  }
  return ds;
}

WindowDataset load_odeflow(const std::string& dir, const std::string& split) {
  if (split != "train" && split != "val") throw DatasetError("split must be train or val, not '" + split + "'");
  const std::string base = dir + "/ode_const_20_multiclass_reg_";
  const std::string xf = base + "x_" + split + ".npy", yf = base + "y_" + split + ".npy";
  NpyArray x, y;
  try {
    x = read_npy(xf);
    y = read_npy(yf);
  } catch (const NpyError& e) {
    throw DatasetError(e.what());
  }
  WindowDataset ds = dataset_from_odeflow(x, y, std::filesystem::path(xf).filename().string());
  ds.origin = {{"kind", "ode-flow"},
               {"split", split},
               {"x", std::filesystem::path(xf).filename().string()},
               {"y", std::filesystem::path(yf).filename().string()},
               {"note", "ODE-Flow ISCX non-VPN, 20-packet windows, times shifted to each window's first packet"}};
  return ds;
}

}  // namespace flowpic
