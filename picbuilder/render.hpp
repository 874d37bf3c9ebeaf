// FlowPics and confusion matrices as PNG images (cairo), for people to look at:
// `flowpic render`, `flowpic eval`. Not used on the fast path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "picbuilder/flowpic.hpp"

namespace flowpic {

// Colour of a value in [0, 1] (clamped) on a viridis-like ramp (dark purple -> yellow).
// Zero-valued pixels of a FlowPic are drawn white instead, so lone packets stand out.
void flowpic_colormap(float v, uint8_t rgb[3]) noexcept;

// One FlowPic (R*R floats, FlowPic layout: out[y*R + x], y = size bin) as a PNG with a title,
// axes (x: time, y: packet size 0..max_size from bottom to top) and a colour bar. Colours
// are scaled to the picture's own maximum (printed on the colour bar).
// scale: screen pixels per bin (nearest-neighbour); 0 = automatic (about 512 px, at least 1).
// axes: the config the picture was built with, for axis ranges and tick labels (time
// window length, horizon, log ticks, max_size); nullptr = unlabelled time, sizes 0..1500.
// Returns false and sets *err (when not null) on bad arguments or when the file cannot be written.
bool write_flowpic_png(const std::string& path, const float* pic, uint32_t R, const std::string& title,
                       uint32_t scale = 0, std::string* err = nullptr, const PictureConfig* axes = nullptr);

// n pictures (contiguous, picture i at pictures + i*R*R) in a grid of `columns` columns
// (0 = about square), each with its title (titles.size() must be 0 or n) and its own colour
// scale; panels are about 256 px (large R is max-pooled down so sparse pixels stay visible).
// For "one flow's windows" and "the mean picture of each class".
bool write_flowpic_grid_png(const std::string& path, const float* pictures, std::size_t n, uint32_t R,
                            const std::vector<std::string>& titles, uint32_t columns = 0,
                            std::string* err = nullptr, const PictureConfig* axes = nullptr);

// Confusion matrix heat map: counts[true][predicted], coloured by row-normalised share
// (recall per true class), each cell showing its count and row percentage; axis labels
// "true" (rows) and "predicted" (columns), each row's total on the right.
bool write_confusion_png(const std::string& path, const std::vector<std::vector<uint64_t>>& counts,
                         const std::vector<std::string>& classes, const std::string& title,
                         std::string* err = nullptr);

// Reliability diagram: for each confidence bin, the accuracy of the windows in it (bars) against
// the diagonal of perfect calibration; bins[i] = {mean confidence, accuracy, windows} of bin i
// (equal-width bins over [0, 1]); empty bins are left blank.
struct ReliabilityBin {
  double confidence = 0, accuracy = 0;
  uint64_t count = 0;
};
bool write_reliability_png(const std::string& path, const std::vector<ReliabilityBin>& bins, const std::string& title,
                           std::string* err = nullptr);

}  // namespace flowpic
