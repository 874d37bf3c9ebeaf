// Model file reading/writing and parameter shapes. Format: docs/model-format.md.
#include "infer/model.hpp"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

namespace flowpic {
namespace {

constexpr char kMagic[8] = {'F', 'L', 'O', 'W', 'P', 'I', 'C', 'M'};
constexpr size_t kPreamble = 16;  // magic + version + header length
constexpr size_t kAlign = 64;

uint32_t get_u32(const unsigned char* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
void put_u32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t crc_of(const char* p, size_t n) {
  uLong c = crc32(0L, Z_NULL, 0);
  while (n > 0) {  // zlib takes uInt lengths
    uInt chunk = n > (1u << 30) ? (1u << 30) : static_cast<uInt>(n);
    c = crc32(c, reinterpret_cast<const Bytef*>(p), chunk);
    p += chunk;
    n -= chunk;
  }
  return static_cast<uint32_t>(c);
}
size_t align_up(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

std::string hex8(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

int64_t element_count(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d <= 0 || d > (int64_t(1) << 31)) return -1;
    n *= d;
    if (n > (int64_t(1) << 33)) return -1;
  }
  return n;
}

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(d[i]);
  }
  return s + "]";
}

Tensor shape(std::string name, std::vector<int64_t> dims) {
  Tensor t;
  t.name = std::move(name);
  t.dims = std::move(dims);
  return t;
}

// Output size of a convolution or pooling along one axis.
int64_t out_dim(int64_t in, int64_t k, int64_t s, int64_t pad_total) {
  if (in + pad_total < k) return 0;
  return (in + pad_total - k) / s + 1;
}

}  // namespace

const char* arch_name(Arch a) noexcept {
  switch (a) {
    case Arch::kLeNet: return "lenet";
    case Arch::kFlowPic: return "flowpic";
  }
  return "?";
}

bool arch_from_name(const std::string& s, Arch& out) noexcept {
  if (s == "lenet") { out = Arch::kLeNet; return true; }
  if (s == "flowpic") { out = Arch::kFlowPic; return true; }
  return false;
}

ArchGeometry arch_geometry(Arch arch, int resolution) {
  ArchGeometry g;
  const int64_t R = resolution;
  if (R <= 0) throw ModelError("resolution " + std::to_string(R) + " must be positive");
  if (arch == Arch::kLeNet) {
    g.conv1 = {6, 5, 1, 0, 0};
    g.conv2 = {16, 5, 1, 0, 0};
    g.fc_hidden = {120, 84};
    g.dropout_conv = 0.25f;
    g.dropout_fc = 0.5f;
  } else {
    // "same" padding as in Keras: out = ceil(R / stride), the odd pixel of padding goes right/bottom.
    g.conv1 = {10, 10, 5, 0, 0};
    const int64_t out = (R + 4) / 5;
    const int64_t total = std::max<int64_t>((out - 1) * 5 + 10 - R, 0);
    g.conv1.pad_l = total / 2;
    g.conv1.pad_r = total - total / 2;
    g.conv2 = {20, 10, 5, 0, 0};
    g.fc_hidden = {64};
    g.dropout_conv = 0.25f;
    g.dropout_fc = 0.5f;
  }
  g.input = R;
  g.c1 = out_dim(R, g.conv1.kernel, g.conv1.stride, g.conv1.pad_l + g.conv1.pad_r);
  g.p1 = g.c1 / 2;
  g.c2 = out_dim(g.p1, g.conv2.kernel, g.conv2.stride, 0);
  g.p2 = g.c2 / 2;
  if (g.p2 < 1)
    throw ModelError(std::string("resolution ") + std::to_string(R) + " is too small for arch " +
                     arch_name(arch) + " (" + (arch == Arch::kLeNet ? "needs R >= 16" : "needs R >= 146") + ")");
  g.flat = g.conv2.channels * g.p2 * g.p2;
  return g;
}

std::vector<Tensor> parameter_shapes(Arch arch, int resolution, int classes, int channels) {
  if (channels < 1 || channels > 2) throw ModelError("input channels must be 1 or 2, got " + std::to_string(channels));
  if (classes < 2) throw ModelError("a model needs at least 2 classes, got " + std::to_string(classes));
  const ArchGeometry g = arch_geometry(arch, resolution);
  std::vector<Tensor> t;
  t.push_back(shape("conv1.weight", {g.conv1.channels, channels, g.conv1.kernel, g.conv1.kernel}));
  t.push_back(shape("conv1.bias", {g.conv1.channels}));
  t.push_back(shape("conv2.weight", {g.conv2.channels, g.conv1.channels, g.conv2.kernel, g.conv2.kernel}));
  t.push_back(shape("conv2.bias", {g.conv2.channels}));
  int64_t in = g.flat;
  int idx = 1;
  for (int64_t h : g.fc_hidden) {
    t.push_back(shape("fc" + std::to_string(idx) + ".weight", {h, in}));
    t.push_back(shape("fc" + std::to_string(idx) + ".bias", {h}));
    in = h;
    ++idx;
  }
  t.push_back(shape("fc" + std::to_string(idx) + ".weight", {classes, in}));
  t.push_back(shape("fc" + std::to_string(idx) + ".bias", {classes}));
  return t;
}

std::shared_ptr<Model> Model::create(const ModelInfo& info, uint64_t seed) {
  auto m = std::make_shared<Model>();
  m->info_ = info;
  m->tensors_ = parameter_shapes(info.arch, static_cast<int>(info.picture.resolution),
                                 static_cast<int>(info.classes.size()), static_cast<int>(info.picture.channels));
  // He-uniform: U(-sqrt(6/fan_in), +sqrt(6/fan_in)) for weights, zero biases. Uniforms are made
  // from raw 64-bit draws (not std::uniform_real_distribution) so every platform gets the same weights.
  std::mt19937_64 rng(seed);
  for (Tensor& t : m->tensors_) {
    const int64_t n = element_count(t.dims);
    t.data.assign(static_cast<size_t>(n), 0.f);
    if (t.dims.size() < 2) continue;
    const int64_t fan_in = n / t.dims[0];
    const double bound = std::sqrt(6.0 / static_cast<double>(fan_in));
    for (float& v : t.data) {
      const double u = static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);  // [0,1)
      v = static_cast<float>((2.0 * u - 1.0) * bound);
    }
  }
  m->id_ = m->info_.name + "-unsaved";
  return m;
}

std::string Model::to_bytes() const {
  nlohmann::json tensors = nlohmann::json::array();
  for (const Tensor& t : tensors_) {
    if (element_count(t.dims) != static_cast<int64_t>(t.data.size()))
      throw ModelError("model " + info_.name + ": tensor " + t.name + " has " + std::to_string(t.data.size()) +
                       " values for dims " + dims_str(t.dims));
  }
  nlohmann::json pic;
  to_json(pic, info_.picture);
  // Offsets are absolute and depend on the header length, which depends on the offsets'
  // digits: iterate until the data start is stable (two rounds in practice).
  size_t data_start = align_up(kPreamble + 256);
  std::string header;
  for (int round = 0; round < 16; ++round) {
    tensors = nlohmann::json::array();
    size_t off = data_start;
    for (const Tensor& t : tensors_) {
      tensors.push_back({{"name", t.name}, {"dims", t.dims}, {"offset", off}, {"count", t.data.size()}});
      off = align_up(off + t.data.size() * sizeof(float));
    }
    nlohmann::json h = {{"arch", arch_name(info_.arch)},
                        {"name", info_.name},
                        {"picture", pic},
                        {"classes", info_.classes},
                        {"temperature", info_.temperature},
                        {"training", info_.training},
                        {"tensors", tensors}};
    header = h.dump(1);
    const size_t need = align_up(kPreamble + header.size());
    if (need == data_start) break;
    data_start = need;
  }
  std::string out;
  out.append(kMagic, 8);
  put_u32(out, kFormatVersion);
  put_u32(out, static_cast<uint32_t>(header.size()));
  out += header;
  for (const Tensor& t : tensors_) {
    out.resize(align_up(out.size()), '\0');
    const size_t at = out.size();
    out.resize(at + t.data.size() * sizeof(float));
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(out.data() + at, t.data.data(), t.data.size() * sizeof(float));
    } else {
      for (size_t i = 0; i < t.data.size(); ++i) {
        const uint32_t b = std::bit_cast<uint32_t>(t.data[i]);
        for (int k = 0; k < 4; ++k) out[at + 4 * i + k] = static_cast<char>((b >> (8 * k)) & 0xff);
      }
    }
  }
  const uint32_t crc = crc_of(out.data(), out.size());
  put_u32(out, crc);
  checksum_ = crc;
  id_ = info_.name + "-" + hex8(crc);
  return out;
}

void Model::save(const std::string& path) const {
  const std::string bytes = to_bytes();
  from_bytes(bytes, path);  // never write a file load() would refuse
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw ModelError("model " + path + ": cannot write " + tmp + ": " + std::strerror(errno));
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    f.flush();
    if (!f) {
      std::remove(tmp.c_str());
      throw ModelError("model " + path + ": write failed: " + std::strerror(errno));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    std::remove(tmp.c_str());
    throw ModelError("model " + path + ": cannot rename " + tmp + ": " + err);
  }
}

std::shared_ptr<const Model> Model::load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw ModelError("model " + path + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw ModelError("model " + path + ": read error: " + std::strerror(errno));
  return from_bytes(ss.str(), path);
}

std::shared_ptr<const Model> Model::from_bytes(const std::string& bytes, const std::string& what) {
  const std::string pre = "model " + what + ": ";
  auto fail = [&](const std::string& msg) { throw ModelError(pre + msg); };
  const auto* u = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t size = bytes.size();

  // Magic first (on what there is), so a random short file is "not a model", a cut model "truncated".
  if (std::memcmp(bytes.data(), kMagic, std::min<size_t>(size, 8)) != 0 || size == 0)
    fail("not a flowpic model (bad magic)");
  if (size < kPreamble + 4)
    fail("truncated at byte " + std::to_string(size) + " (a model file is at least " +
         std::to_string(kPreamble + 4) + " bytes)");
  const uint32_t version = get_u32(u + 8);
  if (version != kFormatVersion)
    fail("format version " + std::to_string(version) + ", this build reads " + std::to_string(kFormatVersion));
  const uint64_t hlen = get_u32(u + 12);
  if (kPreamble + hlen + 4 > size)
    fail("truncated: header of " + std::to_string(hlen) + " bytes runs past the end of the file (" +
         std::to_string(size) + " bytes)");
  const std::string header_text = bytes.substr(kPreamble, hlen);

  // Where the header says the data ends, to tell a cut file from a corrupt one.
  nlohmann::json h = nlohmann::json::parse(header_text, nullptr, /*allow_exceptions=*/false);
  if (!h.is_discarded() && h.is_object() && h.contains("tensors") && h["tensors"].is_array()) {
    uint64_t end = kPreamble + hlen;
    for (const auto& t : h["tensors"]) {
      if (t.is_object() && t.contains("offset") && t.contains("count") && t["offset"].is_number_unsigned() &&
          t["count"].is_number_unsigned()) {
        const uint64_t o = t["offset"].get<uint64_t>(), c = t["count"].get<uint64_t>();
        if (o < (uint64_t(1) << 40) && c < (uint64_t(1) << 38)) end = std::max<uint64_t>(end, o + 4 * c);
      }
    }
    if (end + 4 > size)
      fail("truncated: file has " + std::to_string(size) + " bytes, its header describes " +
           std::to_string(end + 4));
  }
  const uint32_t stored = get_u32(u + size - 4);
  const uint32_t crc = crc_of(bytes.data(), size - 4);
  if (stored != crc)
    fail("checksum mismatch: file corrupt (stored " + hex8(stored) + ", computed " + hex8(crc) + ")");
  if (h.is_discarded() || !h.is_object()) fail("header is not a valid JSON object");

  auto m = std::make_shared<Model>();
  ModelInfo& info = m->info_;
  try {
    const std::string arch = h.at("arch").get<std::string>();
    if (!arch_from_name(arch, info.arch)) fail("unknown arch \"" + arch + "\" (known: lenet, flowpic)");
    info.name = h.at("name").get<std::string>();
    info.classes = h.at("classes").get<std::vector<std::string>>();
    if (h.contains("training")) info.training = h["training"];
    if (h.contains("temperature")) {
      info.temperature = h.at("temperature").get<double>();
      if (!(info.temperature >= 0.01 && info.temperature <= 100.0))
        fail("temperature " + std::to_string(info.temperature) + " is outside [0.01, 100]");
    }
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("header: ") + e.what());
  }
  try {
    from_json(h.at("picture"), info.picture);
  } catch (const ModelError&) {
    throw;
  } catch (const std::exception& e) {
    fail(std::string("picture config: ") + e.what());
  }
  if (const std::string why = info.picture.validate(); !why.empty()) fail("picture config invalid: " + why);
  if (info.classes.size() < 2) fail("needs at least 2 classes, has " + std::to_string(info.classes.size()));
  std::set<std::string> seen;
  for (const std::string& c : info.classes) {
    if (c.empty()) fail("empty class name");
    if (!seen.insert(c).second) fail("duplicate class name \"" + c + "\"");
  }

  std::vector<Tensor> expect;
  try {
    expect = parameter_shapes(info.arch, static_cast<int>(info.picture.resolution),
                              static_cast<int>(info.classes.size()), static_cast<int>(info.picture.channels));
  } catch (const ModelError& e) {
    fail(e.what());
  }
  const nlohmann::json& tl = h.contains("tensors") ? h["tensors"] : nlohmann::json();
  if (!tl.is_array()) fail("header has no tensors list");
  if (tl.size() != expect.size())
    fail("arch " + std::string(arch_name(info.arch)) + " needs " + std::to_string(expect.size()) +
         " tensors, file has " + std::to_string(tl.size()));
  const size_t data_start = kPreamble + hlen;
  size_t prev_end = data_start;
  for (size_t i = 0; i < expect.size(); ++i) {
    Tensor t;
    uint64_t off = 0, count = 0;
    try {
      t.name = tl[i].at("name").get<std::string>();
      t.dims = tl[i].at("dims").get<std::vector<int64_t>>();
      off = tl[i].at("offset").get<uint64_t>();
      count = tl[i].at("count").get<uint64_t>();
    } catch (const nlohmann::json::exception& e) {
      fail("tensor " + std::to_string(i) + ": " + e.what());
    }
    if (t.name != expect[i].name || t.dims != expect[i].dims)
      fail("shape mismatch: tensor " + std::to_string(i) + " is " + t.name + " " + dims_str(t.dims) + ", arch " +
           arch_name(info.arch) + " at R=" + std::to_string(info.picture.resolution) + " with " +
           std::to_string(info.classes.size()) + " classes needs " + expect[i].name + " " +
           dims_str(expect[i].dims));
    if (static_cast<int64_t>(count) != element_count(t.dims))
      fail("tensor " + t.name + ": count " + std::to_string(count) + " does not match dims " + dims_str(t.dims));
    if (off % kAlign != 0 || off < prev_end || off + 4 * count > size - 4)
      fail("tensor " + t.name + ": bad offset " + std::to_string(off));
    prev_end = off + 4 * count;
    t.data.resize(count);
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(t.data.data(), bytes.data() + off, count * sizeof(float));
    } else {
      for (size_t k = 0; k < count; ++k) t.data[k] = std::bit_cast<float>(get_u32(u + off + 4 * k));
    }
    for (size_t k = 0; k < count; ++k)
      if (!std::isfinite(t.data[k])) fail("tensor " + t.name + " holds a NaN or Inf at index " + std::to_string(k));
    m->tensors_.push_back(std::move(t));
  }
  m->checksum_ = crc;
  m->id_ = info.name + "-" + hex8(crc);
  return m;
}

}  // namespace flowpic
