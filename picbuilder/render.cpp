#include "picbuilder/render.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include <cairo.h>

namespace flowpic {

namespace {

constexpr int kMaxImageSide = 32767;  // cairo image surfaces are limited to this
constexpr const char* kFont = "DejaVu Sans";

struct Rgb {
  double r, g, b;
};

// Viridis sampled at 9 evenly spaced points; linear interpolation between them.
constexpr uint8_t kViridis[9][3] = {{68, 1, 84},    {71, 45, 123},  {59, 82, 139},
                                    {44, 114, 142}, {33, 145, 140}, {40, 174, 128},
                                    {94, 201, 98},  {173, 220, 48}, {253, 231, 37}};
// White to dark blue, for confusion matrices (dark text stays readable on the light half).
constexpr uint8_t kBlues[5][3] = {{255, 255, 255}, {198, 219, 239}, {107, 174, 214}, {33, 113, 181}, {8, 48, 107}};

template <std::size_t N>
void ramp(const uint8_t (&stops)[N][3], float v, uint8_t rgb[3]) noexcept {
  if (!(v > 0.f)) v = 0.f;  // also maps NaN to the bottom of the ramp
  if (v > 1.f) v = 1.f;
  const float pos = v * static_cast<float>(N - 1);
  const std::size_t i = std::min<std::size_t>(static_cast<std::size_t>(pos), N - 2);
  const float f = pos - static_cast<float>(i);
  for (int c = 0; c < 3; ++c)
    rgb[c] = static_cast<uint8_t>(std::lround(stops[i][c] + f * (stops[i + 1][c] - stops[i][c])));
}

Rgb to_rgb(const uint8_t c[3]) { return {c[0] / 255.0, c[1] / 255.0, c[2] / 255.0}; }

using SurfacePtr = std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)>;
using ContextPtr = std::unique_ptr<cairo_t, decltype(&cairo_destroy)>;

// A w x h RGB surface painted white, and a context drawing on it.
struct Canvas {
  SurfacePtr surface;
  ContextPtr ctx;
  cairo_t* cr() const { return ctx.get(); }
};
Canvas white_canvas(double w, double h) {
  SurfacePtr s(cairo_image_surface_create(CAIRO_FORMAT_RGB24, static_cast<int>(w), static_cast<int>(h)), cairo_surface_destroy);
  ContextPtr c(cairo_create(s.get()), cairo_destroy);
  cairo_set_source_rgb(c.get(), 1, 1, 1);
  cairo_paint(c.get());
  return Canvas{std::move(s), std::move(c)};
}

bool fail(std::string* err, const std::string& msg) {
  if (err) *err = msg;
  return false;
}

bool save_png(cairo_surface_t* s, const std::string& path, std::string* err) {
  cairo_surface_flush(s);
  if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS)
    return fail(err, "drawing failed: " + std::string(cairo_status_to_string(cairo_surface_status(s))));
  const cairo_status_t st = cairo_surface_write_to_png(s, path.c_str());
  if (st != CAIRO_STATUS_SUCCESS)
    return fail(err, "cannot write PNG '" + path + "': " + cairo_status_to_string(st));
  return true;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

double text_width(cairo_t* cr, const std::string& s) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  return e.x_advance;
}

// Draws s with its anchor at (x, y): align 0 = left, 0.5 = centre, 1 = right; y is the
// vertical middle of the text.
void text_at(cairo_t* cr, const std::string& s, double x, double y, double align, double angle = 0.0) {
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  cairo_save(cr);
  cairo_translate(cr, x, y);
  cairo_rotate(cr, angle);
  cairo_move_to(cr, -align * text_width(cr, s), (fe.ascent - fe.descent) / 2.0);
  cairo_show_text(cr, s.c_str());
  cairo_restore(cr);
}

void set_font(cairo_t* cr, double size, bool bold = false) {
  cairo_select_font_face(cr, kFont, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

// A step of 1, 2, 2.5 or 5 times a power of ten giving at most max_ticks intervals over span.
double nice_step(double span, int max_ticks) {
  const double raw = span / max_ticks;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw * (1 - 1e-9)) return m * mag;
  return 10 * mag;
}

std::string seconds_label(double t) {
  if (t == 0) return "0";
  if (t < 1e-3) return fmt("%gµs", t * 1e6);
  if (t < 1) return fmt("%gms", t * 1e3);
  return fmt("%gs", t);
}

struct Tick {
  double pos;  // 0..1 along the axis
  std::string label;
};

// Ticks of the time axis and its caption, from the picture config when known.
std::vector<Tick> time_ticks(const PictureConfig* cfg, std::string& caption) {
  std::vector<Tick> ticks;
  auto linear = [&](double end, bool seconds) {
    const double step = nice_step(end, 4);
    for (double t = 0; t <= end * (1 + 1e-9); t += step)
      ticks.push_back({t / end, seconds ? seconds_label(t) : fmt("%g", t)});
  };
  if (cfg == nullptr) {
    caption = "time";
    linear(1.0, false);
    return ticks;
  }
  const bool time_window = cfg->window.kind == WindowPolicy::Kind::kTime;
  switch (cfg->time_axis) {
    case TimeAxis::kSpan:
      if (time_window) {
        caption = "time in window";
        linear(static_cast<double>(cfg->window.length_ns) / 1e9, true);
      } else {
        caption = "time (fraction of first..last packet)";
        linear(1.0, false);
      }
      break;
    case TimeAxis::kFixed:
      caption = "time since window start";
      linear(cfg->horizon_s, true);
      break;
    case TimeAxis::kLog: {
      caption = "time since window start (log scale)";
      const double tau = cfg->log_tau_s, h = cfg->horizon_s;
      const double denom = std::log1p(h / tau);
      ticks.push_back({0.0, "0"});
      double last_pos = 0;
      for (int k = static_cast<int>(std::floor(std::log10(tau))) - 1; k <= static_cast<int>(std::ceil(std::log10(h))); ++k) {
        const double t = std::pow(10.0, k);
        if (t > h * (1 + 1e-9)) break;
        const double pos = std::log1p(t / tau) / denom;
        if (pos - last_pos < 0.12) continue;
        ticks.push_back({pos, seconds_label(t)});
        last_pos = pos;
      }
      break;
    }
  }
  return ticks;
}

// Geometry of one picture panel (title, axes, picture, colour bar).
struct PanelLayout {
  double fs;        // font size
  int side;         // picture side on screen (px)
  int pool;         // bins per display pixel (1 = none; >1 = max-pooled, for large R)
  int img;          // side of the colour image before nearest-neighbour scaling
  double left, top, right, bottom;
  double width() const { return left + side + right; }
  double height() const { return top + side + bottom; }
};

PanelLayout layout_for(uint32_t R, int target, uint32_t scale, double fs) {
  PanelLayout l{};
  l.fs = fs;
  if (scale > 0) {
    l.pool = 1;
    l.img = static_cast<int>(R);
    l.side = static_cast<int>(R * scale);
  } else if (static_cast<int>(R) <= target) {
    l.pool = 1;
    l.img = static_cast<int>(R);
    l.side = static_cast<int>(R) * std::max(1, target / static_cast<int>(R));
  } else {
    l.pool = (static_cast<int>(R) + target - 1) / target;
    l.img = (static_cast<int>(R) + l.pool - 1) / l.pool;
    l.side = l.img;
  }
  l.left = fs * 5.2;
  l.top = fs * 2.4;
  l.right = 14 + 12 + fs * 4.0;
  l.bottom = fs * 3.6;
  return l;
}

void draw_panel(cairo_t* cr, double ox, double oy, const PanelLayout& l, const float* pic, uint32_t R,
                const std::string& title, const PictureConfig* cfg) {
  // Whole-pixel origin so nearest-neighbour blocks are crisp and exactly scale x scale.
  const double px = std::round(ox + l.left), py = std::round(oy + l.top), side = l.side;

  // Colour image, y flipped so small sizes are at the bottom; large R is max-pooled.
  float vmax = 0.f;
  for (std::size_t i = 0; i < static_cast<std::size_t>(R) * R; ++i)
    if (std::isfinite(pic[i])) vmax = std::max(vmax, pic[i]);
  SurfacePtr img(cairo_image_surface_create(CAIRO_FORMAT_RGB24, l.img, l.img), cairo_surface_destroy);
  cairo_surface_flush(img.get());
  unsigned char* data = cairo_image_surface_get_data(img.get());
  const int stride = cairo_image_surface_get_stride(img.get());
  for (int sy = 0; sy < l.img; ++sy) {
    auto* row = reinterpret_cast<uint32_t*>(data + static_cast<std::size_t>(sy) * stride);
    const uint32_t y0 = static_cast<uint32_t>((l.img - 1 - sy) * l.pool);
    for (int sx = 0; sx < l.img; ++sx) {
      const uint32_t x0 = static_cast<uint32_t>(sx * l.pool);
      float v = 0.f;
      for (uint32_t y = y0; y < std::min<uint32_t>(R, y0 + l.pool); ++y)
        for (uint32_t x = x0; x < std::min<uint32_t>(R, x0 + l.pool); ++x)
          if (std::isfinite(pic[y * R + x])) v = std::max(v, pic[y * R + x]);
      uint8_t c[3] = {255, 255, 255};
      if (v > 0.f && vmax > 0.f) flowpic_colormap(v / vmax, c);
      row[sx] = (uint32_t{c[0]} << 16) | (uint32_t{c[1]} << 8) | c[2];
    }
  }
  cairo_surface_mark_dirty(img.get());

  cairo_save(cr);
  cairo_translate(cr, px, py);
  cairo_scale(cr, side / l.img, side / l.img);
  cairo_set_source_surface(cr, img.get(), 0, 0);
  cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
  cairo_paint(cr);
  cairo_restore(cr);

  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  cairo_set_line_width(cr, 1.0);
  cairo_rectangle(cr, px - 0.5, py - 0.5, side + 1, side + 1);
  cairo_stroke(cr);

  // Title.
  set_font(cr, l.fs * 1.1, true);
  cairo_set_source_rgb(cr, 0, 0, 0);
  text_at(cr, title, px + side / 2, oy + l.top * 0.45, 0.5);

  // Size axis: bottom to top, 0..max_size.
  set_font(cr, l.fs * 0.85);
  const double max_size = cfg ? cfg->max_size : 1500.0;
  const double ystep = nice_step(max_size, 5);
  for (double s = 0; s <= max_size * (1 + 1e-9); s += ystep) {
    const double y = py + side - s / (max_size + 1) * side;
    cairo_move_to(cr, px - 5, y);
    cairo_line_to(cr, px, y);
    cairo_stroke(cr);
    text_at(cr, fmt("%g", s), px - 7, y, 1.0);
  }
  set_font(cr, l.fs * 0.95);
  text_at(cr, "packet size (B)", ox + l.fs * 0.8, py + side / 2, 0.5, -M_PI / 2);

  // Time axis.
  std::string caption;
  set_font(cr, l.fs * 0.85);
  for (const Tick& t : time_ticks(cfg, caption)) {
    const double x = px + t.pos * side;
    cairo_move_to(cr, x, py + side);
    cairo_line_to(cr, x, py + side + 5);
    cairo_stroke(cr);
    text_at(cr, t.label, x, py + side + 6 + l.fs * 0.6, 0.5);
  }
  set_font(cr, l.fs * 0.95);
  text_at(cr, caption, px + side / 2, py + side + l.fs * 2.6, 0.5);

  // Colour bar: white = 0, then the ramp from the smallest non-zero value to the maximum.
  const double bx = px + side + 14, bw = 12;
  for (int i = 0; i < l.side; ++i) {
    uint8_t c[3];
    flowpic_colormap(1.f - static_cast<float>(i) / std::max(1, l.side - 1), c);
    const Rgb rgb = to_rgb(c);
    cairo_set_source_rgb(cr, rgb.r, rgb.g, rgb.b);
    cairo_rectangle(cr, bx, py + i, bw, 1);
    cairo_fill(cr);
  }
  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  cairo_rectangle(cr, bx - 0.5, py - 0.5, bw + 1, side + 1);
  cairo_stroke(cr);
  set_font(cr, l.fs * 0.8);
  cairo_set_source_rgb(cr, 0, 0, 0);
  text_at(cr, vmax > 0 ? fmt("%.3g", vmax) : "0", bx + bw + 4, py + l.fs * 0.4, 0.0);
  text_at(cr, ">0", bx + bw + 4, py + side - l.fs * 0.4, 0.0);
}

bool check_picture_args(const std::string& path, const void* pic, uint32_t R, std::string* err) {
  if (path.empty()) return fail(err, "no output path given");
  if (pic == nullptr) return fail(err, "no picture given");
  if (R == 0 || R > 1500) return fail(err, "resolution must be in [1, 1500] (got " + std::to_string(R) + ")");
  return true;
}

}  // namespace

void flowpic_colormap(float v, uint8_t rgb[3]) noexcept { ramp(kViridis, v, rgb); }

bool write_flowpic_png(const std::string& path, const float* pic, uint32_t R, const std::string& title,
                       uint32_t scale, std::string* err, const PictureConfig* axes) {
  if (!check_picture_args(path, pic, R, err)) return false;
  if (static_cast<uint64_t>(R) * scale > 8192) return fail(err, "scale too large: the picture would exceed 8192 px");
  if (scale == 0) scale = std::max<uint32_t>(1, 512 / R);
  const PanelLayout l = layout_for(R, 512, scale, 14.0);
  const int w = static_cast<int>(std::ceil(l.width())) + 8, h = static_cast<int>(std::ceil(l.height())) + 4;
  const Canvas canvas = white_canvas(w, h);
  draw_panel(canvas.cr(), 4, 2, l, pic, R, title, axes);
  return save_png(canvas.surface.get(), path, err);
}

bool write_flowpic_grid_png(const std::string& path, const float* pictures, std::size_t n, uint32_t R,
                            const std::vector<std::string>& titles, uint32_t columns, std::string* err,
                            const PictureConfig* axes) {
  if (!check_picture_args(path, pictures, R, err)) return false;
  if (n == 0) return fail(err, "no pictures to draw");
  if (!titles.empty() && titles.size() != n)
    return fail(err, "got " + std::to_string(titles.size()) + " titles for " + std::to_string(n) + " pictures");
  const std::size_t cols = columns ? columns : static_cast<std::size_t>(std::ceil(std::sqrt(static_cast<double>(n))));
  const std::size_t rows = (n + cols - 1) / cols;
  const PanelLayout l = layout_for(R, 256, 0, 11.0);
  const double pw = l.width() + 10, ph = l.height() + 6;
  const double w = std::ceil(cols * pw) + 10, h = std::ceil(rows * ph) + 6;
  if (w > kMaxImageSide || h > kMaxImageSide)
    return fail(err, "grid of " + std::to_string(rows) + "x" + std::to_string(cols) + " panels is too large for one image");
  const Canvas canvas = white_canvas(w, h);
  cairo_t* const crp = canvas.cr();
  const std::size_t pixels = static_cast<std::size_t>(R) * R;
  for (std::size_t i = 0; i < n; ++i) {
    const std::string title = titles.empty() ? fmt("#%.0f", static_cast<double>(i)) : titles[i];
    draw_panel(crp, 5 + (i % cols) * pw, 3 + (i / cols) * ph, l, pictures + i * pixels, R, title, axes);
  }
  return save_png(canvas.surface.get(), path, err);
}

bool write_confusion_png(const std::string& path, const std::vector<std::vector<uint64_t>>& counts,
                         const std::vector<std::string>& classes, const std::string& title, std::string* err) {
  if (path.empty()) return fail(err, "no output path given");
  const std::size_t k = classes.size();
  if (k == 0) return fail(err, "no classes given");
  if (k > 200) return fail(err, "too many classes for one image (" + std::to_string(k) + ")");
  if (counts.size() != k) return fail(err, "confusion matrix has " + std::to_string(counts.size()) + " rows for " + std::to_string(k) + " classes");
  for (const auto& row : counts)
    if (row.size() != k) return fail(err, "confusion matrix row has " + std::to_string(row.size()) + " columns for " + std::to_string(k) + " classes");

  const double fs = 13;
  // Measure labels on a scratch surface.
  double name_w = 0, count_w = 0, total_w = 0;
  {
    SurfacePtr scratch(cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1), cairo_surface_destroy);
    ContextPtr m(cairo_create(scratch.get()), cairo_destroy);
    set_font(m.get(), fs);
    for (std::size_t i = 0; i < k; ++i) {
      name_w = std::max(name_w, text_width(m.get(), classes[i]));
      uint64_t total = 0;
      for (uint64_t c : counts[i]) {
        count_w = std::max(count_w, text_width(m.get(), std::to_string(c)));
        total += c;
      }
      total_w = std::max(total_w, text_width(m.get(), "n=" + std::to_string(total)));
    }
  }
  const double cell = std::max(64.0, count_w + 14);
  const double left = fs * 2.6 + name_w + 10, top = fs * 3.2;
  const double right = total_w + 20, bottom = name_w + 10 + fs * 2.6;
  const double w = std::ceil(left + k * cell + right), h = std::ceil(top + k * cell + bottom);
  if (w > kMaxImageSide || h > kMaxImageSide) return fail(err, "confusion matrix too large for one image");

  const Canvas canvas = white_canvas(w, h);
  cairo_t* cr = canvas.cr();

  cairo_set_source_rgb(cr, 0, 0, 0);
  set_font(cr, fs * 1.2, true);
  text_at(cr, title, left + k * cell / 2, top * 0.45, 0.5);

  for (std::size_t i = 0; i < k; ++i) {
    uint64_t total = 0;
    for (uint64_t c : counts[i]) total += c;
    for (std::size_t j = 0; j < k; ++j) {
      const double share = total ? static_cast<double>(counts[i][j]) / static_cast<double>(total) : 0.0;
      uint8_t c[3];
      ramp(kBlues, static_cast<float>(share), c);
      const Rgb rgb = to_rgb(c);
      const double x = left + j * cell, y = top + i * cell;
      cairo_set_source_rgb(cr, rgb.r, rgb.g, rgb.b);
      cairo_rectangle(cr, x, y, cell, cell);
      cairo_fill(cr);
      const double ink = share > 0.5 ? 1.0 : 0.0;
      cairo_set_source_rgb(cr, ink, ink, ink);
      set_font(cr, fs, i == j);
      text_at(cr, std::to_string(counts[i][j]), x + cell / 2, y + cell / 2 - fs * 0.6, 0.5);
      set_font(cr, fs * 0.85);
      text_at(cr, total ? fmt("%.1f%%", share * 100) : "-", x + cell / 2, y + cell / 2 + fs * 0.7, 0.5);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    set_font(cr, fs);
    text_at(cr, classes[i], left - 8, top + i * cell + cell / 2, 1.0);                       // row: true class
    text_at(cr, classes[i], left + i * cell + cell / 2, top + k * cell + 8, 1.0, -M_PI / 2);  // column: predicted
    set_font(cr, fs * 0.85);
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    text_at(cr, "n=" + std::to_string(total), left + k * cell + 8, top + i * cell + cell / 2, 0.0);
  }
  // Grid lines and frame.
  cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
  cairo_set_line_width(cr, 1.0);
  for (std::size_t i = 0; i <= k; ++i) {
    cairo_move_to(cr, left + i * cell, top);
    cairo_line_to(cr, left + i * cell, top + k * cell);
    cairo_move_to(cr, left, top + i * cell);
    cairo_line_to(cr, left + k * cell, top + i * cell);
  }
  cairo_stroke(cr);

  cairo_set_source_rgb(cr, 0, 0, 0);
  set_font(cr, fs * 1.05, true);
  text_at(cr, "true", fs * 1.0, top + k * cell / 2, 0.5, -M_PI / 2);
  text_at(cr, "predicted", left + k * cell / 2, h - fs * 1.1, 0.5);
  return save_png(canvas.surface.get(), path, err);
}

bool write_reliability_png(const std::string& path, const std::vector<ReliabilityBin>& bins, const std::string& title,
                           std::string* err) {
  if (path.empty()) return fail(err, "no output path given");
  if (bins.empty() || bins.size() > 1000) return fail(err, "need 1..1000 bins");
  const double fs = 13, plot = 360, left = 64, top = 44, right = 24, bottom = 56;
  const double w = left + plot + right, h = top + plot + bottom;
  const Canvas canvas = white_canvas(w, h);
  cairo_t* cr = canvas.cr();
  const double bw = plot / static_cast<double>(bins.size());
  uint64_t most = 1;
  for (const auto& b : bins) most = std::max(most, b.count);
  for (std::size_t i = 0; i < bins.size(); ++i) {
    const auto& b = bins[i];
    if (!b.count) continue;
    const double x = left + i * bw;
    // Bar: accuracy of the bin; its shade says how many windows it holds.
    uint8_t c[3];
    ramp(kBlues, static_cast<float>(0.35 + 0.65 * std::sqrt(static_cast<double>(b.count) / static_cast<double>(most))), c);
    const Rgb rgb = to_rgb(c);
    cairo_set_source_rgb(cr, rgb.r, rgb.g, rgb.b);
    cairo_rectangle(cr, x + 1, top + plot * (1 - b.accuracy), bw - 2, plot * b.accuracy);
    cairo_fill(cr);
    // Gap to the bin's mean confidence, in red.
    cairo_set_source_rgba(cr, 0.85, 0.1, 0.1, 0.8);
    cairo_set_line_width(cr, 2);
    cairo_move_to(cr, x + bw / 2, top + plot * (1 - b.accuracy));
    cairo_line_to(cr, x + bw / 2, top + plot * (1 - b.confidence));
    cairo_stroke(cr);
  }
  cairo_set_source_rgb(cr, 0.4, 0.4, 0.4);
  cairo_set_line_width(cr, 1);
  const double dash[] = {4, 4};
  cairo_set_dash(cr, dash, 2, 0);
  cairo_move_to(cr, left, top + plot);
  cairo_line_to(cr, left + plot, top);
  cairo_stroke(cr);
  cairo_set_dash(cr, nullptr, 0, 0);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_rectangle(cr, left, top, plot, plot);
  cairo_stroke(cr);
  set_font(cr, fs * 0.85);
  for (int t = 0; t <= 4; ++t) {
    const double v = t / 4.0;
    char buf[16];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    text_at(cr, buf, left + plot * v, top + plot + 12, 0.5);
    text_at(cr, buf, left - 6, top + plot * (1 - v), 1.0);
  }
  set_font(cr, fs * 1.1, true);
  text_at(cr, title, left + plot / 2, top * 0.45, 0.5);
  set_font(cr, fs);
  text_at(cr, "confidence (top probability)", left + plot / 2, h - fs * 1.2, 0.5);
  text_at(cr, "accuracy", fs * 1.0, top + plot / 2, 0.5, -M_PI / 2);
  return save_png(canvas.surface.get(), path, err);
}

}  // namespace flowpic
