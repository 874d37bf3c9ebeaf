// oneDNN inference (Network) and training (Trainer) of the two FlowPic architectures.
#include "infer/network.hpp"
#include "infer/verdict.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <dnnl.hpp>

namespace flowpic {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

// 64-byte aligned float/byte buffer owned by a Network or Trainer.
struct AlignedBuf {
  void* p = nullptr;
  size_t bytes = 0;
  AlignedBuf() = default;
  explicit AlignedBuf(size_t n) { reset(n); }
  AlignedBuf(const AlignedBuf&) = delete;
  AlignedBuf& operator=(const AlignedBuf&) = delete;
  AlignedBuf(AlignedBuf&& o) noexcept : p(o.p), bytes(o.bytes) { o.p = nullptr; o.bytes = 0; }
  ~AlignedBuf() { std::free(p); }
  void reset(size_t n) {
    std::free(p);
    bytes = (std::max<size_t>(n, 64) + 63) / 64 * 64;
    p = std::aligned_alloc(64, bytes);
    if (!p) throw std::bad_alloc();
    std::memset(p, 0, bytes);
  }
  float* f() const { return static_cast<float*>(p); }
};

int resolve_threads(int threads) { return threads > 0 ? threads : std::max(1, omp_get_num_procs()); }

// Sets the OpenMP team size for this thread for the lifetime of the guard (constructors only:
// primitive creation reads it to plan its work split), restoring the caller's value after.
struct OmpThreadsGuard {
  int saved;
  explicit OmpThreadsGuard(int n) : saved(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~OmpThreadsGuard() { omp_set_num_threads(saved); }
};

memory::dims conv_strides(const ConvGeometry& c) { return {c.stride, c.stride}; }
memory::dims conv_pad_l(const ConvGeometry& c) { return {c.pad_l, c.pad_l}; }
memory::dims conv_pad_r(const ConvGeometry& c) { return {c.pad_r, c.pad_r}; }

dnnl::primitive_attr relu_attr(bool relu, bool user_scratchpad) {
  dnnl::primitive_attr a;
  if (relu) {
    dnnl::post_ops po;
    po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    a.set_post_ops(po);
  }
  if (user_scratchpad) a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return a;
}

// Model tensors viewed as oneDNN weight descriptors in their stored (plain) layout.
memory::desc stored_weights_md(const Tensor& t, const ArchGeometry& g, bool first_fc) {
  if (t.dims.size() == 1) return memory::desc(t.dims, dt::f32, tag::x);
  if (t.dims.size() == 4) return memory::desc(t.dims, dt::f32, tag::oihw);
  if (first_fc)  // fc1 consumes the 4D pooled map; [o, c*h*w] is oihw over (c, h, w)
    return memory::desc({t.dims[0], g.conv2.channels, g.p2, g.p2}, dt::f32, tag::oihw);
  return memory::desc(t.dims, dt::f32, tag::oi);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Network
//
// Batches: one pipeline of primitives per batch size in {1, 2, 4, ..., max_batch}; forward(n)
// runs the smallest one >= n on the first pipeline-batch rows of the input (rows past n are
// stale or zero pictures whose outputs are discarded: every layer is per-picture). So n = 1
// costs one picture, n = 33 of 64 costs 64, never more than 2x. All pipelines share one buffer
// per layer slot (sized for the largest), the reordered weights and one user scratchpad, so the
// memory is that of the max_batch pipeline plus small change.

struct Network::Impl {
  // An argument of a step before buffers exist: a layer slot, a weight, the input or scratchpad.
  enum class Ref : uint8_t { kInput, kSlot, kWeight, kScratch };
  struct Arg {
    int dnnl_arg;
    Ref ref;
    int index;          // slot or weight index
    memory::desc md;
  };
  struct Step {
    dnnl::primitive prim;
    std::vector<Arg> args;
    std::vector<memory> mems;              // keep-alive for the handles in c_args
    std::vector<dnnl_exec_arg_t> c_args;
  };
  struct Pipeline {
    int batch = 0;
    std::vector<Step> steps;
    int out_slot = -1;
    // Sparse first layer (lenet geometry): steps[0] is conv1+ReLU, whose output (slot
    // conv1_slot, channel blocks of conv1_block floats) the sparse scatter can write instead.
    bool sparse_ok = false;
    int conv1_slot = -1;
    int conv1_block = 0;
    // And when steps[1..2] are pool1 and a reorder of its output to plain nchw (what conv2 reads
    // here), the scatter also pools into that reorder's output and steps 0-2 are skipped.
    bool fused_pool = false;
    int pool1_plain_slot = -1;
  };

  std::shared_ptr<const Model> model;
  ArchGeometry geo;
  int max_batch = 1, threads = 1, classes = 0, R = 0, Ch = 1;
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  AlignedBuf input;
  std::vector<size_t> slot_bytes;
  std::vector<AlignedBuf> slots;
  std::vector<memory> weights;             // reordered once, owned here
  std::vector<std::pair<int, memory::desc>> weight_keys;  // (tensor index, layout)
  size_t scratch_bytes = 0;
  AlignedBuf scratch;
  std::vector<Pipeline> pipes;
  uint64_t errors = 0;
  // Sparse conv1: weights as [c][ky][kx][block] (output channels innermost, zero-padded to the
  // block), biases padded to the block; filled by prepare_sparse() when the arch allows it.
  bool sparse_arch = false;
  int sparse_block = 0;
  std::vector<float> w1, b1;
  uint64_t sparse_batches = 0, dense_batches = 0;

  // Conv1 from the points of each picture: every non-zero input pixel adds its value times the
  // kernel to the outputs it reaches, then ReLU. Same result as the dense convolution (to float
  // rounding), costs per picture a fill and a ReLU of the output plus 25 taps per lit pixel.
  void conv1_sparse(const float* in, float* out, int n) const noexcept {
    if (sparse_block == 8) conv1_sparse_block<8>(in, out, n);
    else conv1_sparse_block<16>(in, out, n);
  }
  template <int B>  // the output's channel block: the tap loop is one B-wide multiply-add
  void conv1_sparse_block(const float* in, float* out, int n) const noexcept {
    const int K = static_cast<int>(geo.conv1.kernel), H = static_cast<int>(geo.c1);
    const size_t in_floats = static_cast<size_t>(Ch) * R * R, out_floats = static_cast<size_t>(H) * H * B;
    const float* bias = b1.data();
    const float* wt = w1.data();
#pragma omp parallel for schedule(static) if (n >= 8)
    for (int i = 0; i < n; ++i) {
      const float* pic = in + static_cast<size_t>(i) * in_floats;
      float* o = out + static_cast<size_t>(i) * out_floats;
      for (size_t p = 0; p < out_floats; p += B)
        for (int c = 0; c < B; ++c) o[p + c] = bias[c];
      for (int c = 0; c < Ch; ++c)
        for (int iy = 0; iy < R; ++iy)
          for (int ix = 0; ix < R; ++ix) {
            const float v = pic[(static_cast<size_t>(c) * R + iy) * R + ix];
            if (v == 0.f) continue;
            const int ky0 = std::max(0, iy - H + 1), ky1 = std::min(K - 1, iy);
            const int kx0 = std::max(0, ix - H + 1), kx1 = std::min(K - 1, ix);
            for (int ky = ky0; ky <= ky1; ++ky)
              for (int kx = kx0; kx <= kx1; ++kx) {
                float* d = o + (static_cast<size_t>(iy - ky) * H + (ix - kx)) * B;
                const float* w = wt + ((static_cast<size_t>(c) * K + ky) * K + kx) * B;
                for (int b = 0; b < B; ++b) d[b] += v * w[b];
              }
          }
      for (size_t p = 0; p < out_floats; ++p) o[p] = o[p] > 0.f ? o[p] : 0.f;
    }
  }

  // Conv1 + ReLU + 2x2 max-pool, written as plain nchw [n][O][P][P]: conv1's output of one
  // picture stays in a stack buffer.
  template <int B>
  void conv1_pool_sparse(const float* in, float* out, int n) const noexcept {
    const int H = static_cast<int>(geo.c1), P = static_cast<int>(geo.p1), O = static_cast<int>(geo.conv1.channels);
    const size_t out_floats = static_cast<size_t>(O) * P * P;
#pragma omp parallel for schedule(static) if (n >= 8)
    for (int i = 0; i < n; ++i) {
      alignas(64) float tmp[kMaxSparseOut];
      conv1_sparse_block<B>(in + static_cast<size_t>(i) * Ch * R * R, tmp, 1);
      float* o = out + static_cast<size_t>(i) * out_floats;
      for (int py = 0; py < P; ++py)
        for (int px = 0; px < P; ++px) {
          const float* a = tmp + (static_cast<size_t>(2 * py) * H + 2 * px) * B;
          const float* b = a + B;
          const float* c = a + static_cast<size_t>(H) * B;
          const float* d = c + B;
          for (int ch = 0; ch < O; ++ch)
            o[(static_cast<size_t>(ch) * P + py) * P + px] = std::max(std::max(a[ch], b[ch]), std::max(c[ch], d[ch]));
        }
    }
  }
  static constexpr size_t kMaxSparseOut = 28 * 28 * 16;  // lenet at R = 32, blocks of 16

  // The scatter pays 25 taps per lit pixel where the dense kernel pays the whole picture: it
  // wins while pictures are sparse (20-packet windows light at most 20 pixels a plane). Counted
  // over the batch; above kDenseAbove lit pixels per picture the dense primitive runs.
  static constexpr size_t kDenseAbove = 128;
  bool sparse_wins(int n) const noexcept {
    const float* in = input.f();
    const size_t floats = static_cast<size_t>(n) * Ch * R * R;
    size_t lit = 0;
    for (size_t i = 0; i < floats; ++i) lit += in[i] != 0.f;
    return lit <= kDenseAbove * static_cast<size_t>(n);
  }

  // Whether conv1 can run sparse: stride 1, no padding, at most one block of output channels.
  void prepare_sparse() {
    const ConvGeometry& c = geo.conv1;
    sparse_arch = c.stride == 1 && c.pad_l == 0 && c.pad_r == 0 && c.channels <= 16 &&
                  static_cast<size_t>(geo.c1) * geo.c1 * 16 <= kMaxSparseOut;
  }
  void set_sparse_block(int block) {
    sparse_block = block;
    const ConvGeometry& c = geo.conv1;
    const Tensor& w = model->tensors()[0];  // [O][Ch][K][K]
    const Tensor& bias = model->tensors()[1];
    const int O = static_cast<int>(c.channels), K = static_cast<int>(c.kernel);
    w1.assign(static_cast<size_t>(Ch) * K * K * block, 0.f);
    b1.assign(static_cast<size_t>(block), 0.f);
    for (int o = 0; o < O; ++o) {
      b1[o] = bias.data[o];
      for (int ch = 0; ch < Ch; ++ch)
        for (int ky = 0; ky < K; ++ky)
          for (int kx = 0; kx < K; ++kx)
            w1[((static_cast<size_t>(ch) * K + ky) * K + kx) * block + o] =
                w.data[((static_cast<size_t>(o) * Ch + ch) * K + ky) * K + kx];
    }
  }

  int new_slot(const memory::desc& md) {
    slot_bytes.push_back(md.get_size());
    return static_cast<int>(slot_bytes.size()) - 1;
  }
  int slot_for(int index, const memory::desc& md) {  // reuse slot index across pipelines
    if (index < static_cast<int>(slot_bytes.size())) {
      slot_bytes[index] = std::max(slot_bytes[index], md.get_size());
      return index;
    }
    return new_slot(md);
  }

  // Weights of tensor ti in layout md: reordered from the stored layout once, shared by pipelines.
  int weight(int ti, const memory::desc& md, bool first_fc) {
    for (size_t i = 0; i < weight_keys.size(); ++i)
      if (weight_keys[i].first == ti && weight_keys[i].second == md) return static_cast<int>(i);
    const Tensor& t = model->tensors()[ti];
    memory::desc src_md = stored_weights_md(t, geo, first_fc);
    // Copy first: the network never aliases the model's storage.
    memory src(src_md, eng);
    std::memcpy(src.get_data_handle(), t.data.data(), t.data.size() * sizeof(float));
    memory dst(md, eng);
    if (src_md == md) {
      std::memcpy(dst.get_data_handle(), t.data.data(), t.data.size() * sizeof(float));
    } else {
      dnnl::reorder(src, dst).execute(strm, src, dst);
      strm.wait();
    }
    weights.push_back(dst);
    weight_keys.emplace_back(ti, md);
    return static_cast<int>(weights.size()) - 1;
  }

  void add_scratch(Step& s, const memory::desc& md) {
    scratch_bytes = std::max(scratch_bytes, md.get_size());
    s.args.push_back({DNNL_ARG_SCRATCHPAD, Ref::kScratch, 0, md});
  }

  // Builds the primitives of one batch size; slots numbered in layer order so that every
  // pipeline's k-th slot shares a buffer.
  Pipeline build(int b) {
    Pipeline p;
    p.batch = b;
    int next_slot = 0;
    Ref cur_ref = Ref::kInput;
    int cur_index = 0;
    memory::desc cur = memory::desc({b, Ch, R, R}, dt::f32, tag::nchw);
    // The picture is given as nchw (the library's direct jit kernel reads it as is); later
    // layers take whatever layout oneDNN prefers, with a reorder where two layers disagree.
    const tag in_tag = tag::nchw, act_tag = tag::any;
    const auto& T = model->tensors();
    int ti = 0;

    auto to_layout = [&](const memory::desc& want) {  // reorder current activations if needed
      if (want == cur) return;
      // One channel: nhwc and nchw are the same bytes, the picture is used where callers wrote it.
      if (cur_ref == Ref::kInput && Ch == 1 && want == memory::desc({b, 1, R, R}, dt::f32, tag::nhwc)) {
        cur = want;
        return;
      }
      Step s;
      s.prim = dnnl::reorder(dnnl::reorder::primitive_desc(eng, cur, eng, want));
      int slot = slot_for(next_slot++, want);
      s.args.push_back({DNNL_ARG_FROM, cur_ref, cur_index, cur});
      s.args.push_back({DNNL_ARG_TO, Ref::kSlot, slot, want});
      p.steps.push_back(std::move(s));
      cur = want;
      cur_ref = Ref::kSlot;
      cur_index = slot;
    };
    auto produce = [&](Step& s, const memory::desc& dst) {
      int slot = slot_for(next_slot++, dst);
      s.args.push_back({DNNL_ARG_DST, Ref::kSlot, slot, dst});
      cur = dst;
      cur_ref = Ref::kSlot;
      cur_index = slot;
    };

    auto conv = [&](const ConvGeometry& c, int64_t in_ch, int64_t in_hw, int64_t out_hw, bool first) {
      memory::desc src({b, in_ch, in_hw, in_hw}, dt::f32, first ? in_tag : act_tag);
      memory::desc w({c.channels, in_ch, c.kernel, c.kernel}, dt::f32, tag::any);
      memory::desc bias({c.channels}, dt::f32, tag::x);
      memory::desc dst({b, c.channels, out_hw, out_hw}, dt::f32, act_tag);
      dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                        src, w, bias, dst, conv_strides(c), conv_pad_l(c), conv_pad_r(c));
      dnnl::convolution_forward::primitive_desc pd(d, relu_attr(true, true), eng);
      to_layout(pd.src_desc());
      Step s;
      s.prim = dnnl::convolution_forward(pd);
      s.args.push_back({DNNL_ARG_SRC, cur_ref, cur_index, cur});
      s.args.push_back({DNNL_ARG_WEIGHTS, Ref::kWeight, weight(ti, pd.weights_desc(), false), {}});
      s.args.push_back({DNNL_ARG_BIAS, Ref::kWeight, weight(ti + 1, pd.bias_desc(), false), {}});
      add_scratch(s, pd.scratchpad_desc());
      produce(s, pd.dst_desc());
      p.steps.push_back(std::move(s));
      ti += 2;
    };
    auto pool = [&](int64_t ch, int64_t out_hw) {
      memory::desc dst({b, ch, out_hw, out_hw}, dt::f32, tag::any);
      dnnl::pooling_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_max, cur, dst,
                                    {2, 2}, {2, 2}, {0, 0}, {0, 0});
      dnnl::primitive_attr a;
      a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      dnnl::pooling_forward::primitive_desc pd(d, a, eng);
      Step s;
      s.prim = dnnl::pooling_forward(pd);
      s.args.push_back({DNNL_ARG_SRC, cur_ref, cur_index, cur});
      add_scratch(s, pd.scratchpad_desc());
      produce(s, pd.dst_desc());
      p.steps.push_back(std::move(s));
    };
    auto fc = [&](int64_t out, bool relu, bool first_fc, bool last) {
      memory::desc src = cur;
      memory::desc w = first_fc ? memory::desc({out, geo.conv2.channels, geo.p2, geo.p2}, dt::f32, tag::any)
                                : memory::desc({out, cur.dims()[1]}, dt::f32, tag::any);
      memory::desc bias({out}, dt::f32, tag::x);
      memory::desc dst({b, out}, dt::f32, last ? tag::nc : tag::any);
      dnnl::inner_product_forward::desc d(dnnl::prop_kind::forward_inference, src, w, bias, dst);
      dnnl::inner_product_forward::primitive_desc pd(d, relu_attr(relu, true), eng);
      Step s;
      s.prim = dnnl::inner_product_forward(pd);
      s.args.push_back({DNNL_ARG_SRC, cur_ref, cur_index, cur});
      s.args.push_back({DNNL_ARG_WEIGHTS, Ref::kWeight, weight(ti, pd.weights_desc(), first_fc), {}});
      s.args.push_back({DNNL_ARG_BIAS, Ref::kWeight, weight(ti + 1, pd.bias_desc(), false), {}});
      add_scratch(s, pd.scratchpad_desc());
      produce(s, pd.dst_desc());
      p.steps.push_back(std::move(s));
      ti += 2;
    };

    conv(geo.conv1, Ch, geo.input, geo.c1, true);
    if (sparse_arch && p.steps.size() == 1) {
      // The sparse scatter writes conv1's output in the layout oneDNN chose for it: plain
      // (block 1 would be slow: then it stays dense) or channel blocks of 8 or 16.
      for (int block : {8, 16}) {
        const memory::format_tag t = block == 8 ? tag::aBcd8b : tag::aBcd16b;
        if (geo.conv1.channels <= block && cur == memory::desc({b, geo.conv1.channels, geo.c1, geo.c1}, dt::f32, t) &&
            (sparse_block == 0 || sparse_block == block)) {
          if (sparse_block == 0) set_sparse_block(block);
          p.sparse_ok = true;
          p.conv1_slot = cur_index;
          p.conv1_block = block;
        }
      }
    }
    pool(geo.conv1.channels, geo.p1);
    conv(geo.conv2, geo.conv1.channels, geo.p1, geo.c2, false);
    if (p.sparse_ok && p.steps.size() >= 4 && p.steps[2].args.size() == 2 && p.steps[2].args[0].dnnl_arg == DNNL_ARG_FROM &&
        p.steps[2].args[1].ref == Ref::kSlot &&
        p.steps[2].args[1].md == memory::desc({b, geo.conv1.channels, geo.p1, geo.p1}, dt::f32, tag::abcd) &&
        geo.c1 == 2 * geo.p1) {
      p.fused_pool = true;
      p.pool1_plain_slot = p.steps[2].args[1].index;
    }
    pool(geo.conv2.channels, geo.p2);
    bool first = true;
    for (int64_t h : geo.fc_hidden) {
      fc(h, true, first, false);
      first = false;
    }
    fc(classes, false, false, true);
    {
      dnnl::softmax_forward::desc d(dnnl::prop_kind::forward_inference, cur, 1);
      dnnl::primitive_attr a;
      a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      dnnl::softmax_forward::primitive_desc pd(d, a, eng);
      Step s;
      s.prim = dnnl::softmax_forward(pd);
      s.args.push_back({DNNL_ARG_SRC, cur_ref, cur_index, cur});
      add_scratch(s, pd.scratchpad_desc());
      produce(s, pd.dst_desc());
      p.steps.push_back(std::move(s));
    }
    if (ti != static_cast<int>(T.size())) throw ModelError("network: tensor count does not match the arch");
    p.out_slot = cur_index;
    return p;
  }

  // Second phase: buffers exist, create memory objects and the C argument arrays.
  void bind(Pipeline& p) {
    for (Step& s : p.steps) {
      for (const Arg& a : s.args) {
        memory m;
        switch (a.ref) {
          case Ref::kInput: m = memory(a.md, eng, input.p); break;
          case Ref::kSlot: m = memory(a.md, eng, slots[a.index].p); break;
          case Ref::kWeight: m = weights[a.index]; break;
          case Ref::kScratch: m = memory(a.md, eng, scratch.p); break;
        }
        s.mems.push_back(m);
      }
      for (size_t i = 0; i < s.args.size(); ++i) s.c_args.push_back({s.args[i].dnnl_arg, s.mems[i].get()});
    }
  }
};

Network::Network(std::shared_ptr<const Model> model, int max_batch, int threads) : impl_(new Impl) {
  Impl& m = *impl_;
  if (!model) throw ModelError("network: no model");
  if (max_batch < 1) throw ModelError("network: max_batch must be >= 1");
  m.model = std::move(model);
  m.max_batch = max_batch;
  m.threads = resolve_threads(threads);
  m.classes = m.model->num_classes();
  m.R = m.model->resolution();
  m.Ch = m.model->channels();
  m.geo = arch_geometry(m.model->info().arch, m.R);
  // Shapes were validated by load(); a created model is checked here as well.
  const auto expect = parameter_shapes(m.model->info().arch, m.R, m.classes, m.Ch);
  const auto& T = m.model->tensors();
  if (expect.size() != T.size()) throw ModelError("network: model has the wrong number of tensors");
  for (size_t i = 0; i < T.size(); ++i)
    if (T[i].dims != expect[i].dims || static_cast<int64_t>(T[i].data.size()) != [&] {
          int64_t n = 1;
          for (auto d : T[i].dims) n *= d;
          return n;
        }())
      throw ModelError("network: tensor " + T[i].name + " has the wrong shape");

  OmpThreadsGuard omp(m.threads);
  m.input.reset(static_cast<size_t>(max_batch) * m.model->picture_floats() * sizeof(float));
  std::vector<int> sizes;
  for (int b = 1; b < max_batch; b *= 2) sizes.push_back(b);
  sizes.push_back(max_batch);
  m.prepare_sparse();
  for (int b : sizes) m.pipes.push_back(m.build(b));
  for (size_t bytes : m.slot_bytes) m.slots.emplace_back(bytes);
  m.scratch.reset(m.scratch_bytes);
  for (auto& p : m.pipes) m.bind(p);
}

Network::~Network() = default;

float* Network::input() noexcept { return impl_->input.f(); }

void Network::forward(int n, float* probs) noexcept {
  Impl& m = *impl_;
  if (n <= 0) return;
  if (n > m.max_batch) {  // caller error: only max_batch pictures fit in input()
    ++m.errors;
    n = m.max_batch;
  }
  size_t pi = 0;
  while (m.pipes[pi].batch < n) ++pi;
  Impl::Pipeline& p = m.pipes[pi];
  omp_set_num_threads(m.threads);  // this thread's team: see the header
  bool ok = true;
  size_t first = 0;
  if (p.sparse_ok && m.sparse_wins(p.batch)) {
    if (p.fused_pool) {
      if (m.sparse_block == 8) m.conv1_pool_sparse<8>(m.input.f(), m.slots[p.pool1_plain_slot].f(), p.batch);
      else m.conv1_pool_sparse<16>(m.input.f(), m.slots[p.pool1_plain_slot].f(), p.batch);
      first = 3;
    } else {
      m.conv1_sparse(m.input.f(), m.slots[p.conv1_slot].f(), p.batch);
      first = 1;
    }
    ++m.sparse_batches;
  } else {
    ++m.dense_batches;
  }
  for (size_t k = first; k < p.steps.size(); ++k) {
    Impl::Step& s = p.steps[k];
    if (dnnl_primitive_execute(s.prim.get(), m.strm.get(), static_cast<int>(s.c_args.size()), s.c_args.data()) !=
        dnnl_success) {
      ok = false;
      break;
    }
  }
  if (ok && dnnl_stream_wait(m.strm.get()) != dnnl_success) ok = false;
  if (!ok) {
    ++m.errors;
    std::fill(probs, probs + static_cast<size_t>(n) * m.classes, 0.f);
    return;
  }
  std::memcpy(probs, m.slots[p.out_slot].p, static_cast<size_t>(n) * m.classes * sizeof(float));
  apply_temperature(probs, static_cast<size_t>(n), m.classes, m.model->info().temperature);
}

void Network::classify(const float* pictures, int n, float* probs) noexcept {
  if (n <= 0) return;
  const int fit = std::min(n, impl_->max_batch);  // forward() counts the excess as an error
  std::memcpy(impl_->input.p, pictures, static_cast<size_t>(fit) * impl_->model->picture_floats() * sizeof(float));
  forward(n, probs);
}

std::string Network::probe_outputs() noexcept {
  Impl& m = *impl_;
  const size_t floats = m.model->picture_floats();
  const int n = std::min(3, m.max_batch);
  float* in = m.input.f();
  std::fill(in, in + static_cast<size_t>(n) * floats, 0.f);
  if (n > 1)
    for (int c = 0; c < m.Ch; ++c) in[floats + static_cast<size_t>(c) * m.R * m.R + m.R * (m.R / 2) + m.R / 2] = 1.f;
  if (n > 2) {
    uint32_t x = 12345;
    for (size_t i = 0; i < floats; ++i) {
      x = x * 1664525u + 1013904223u;
      if ((x >> 24) < 8) in[2 * floats + i] = static_cast<float>((x >> 8) & 0xff) / 255.f;
    }
  }
  std::vector<float> probs(static_cast<size_t>(n) * m.classes);
  const uint64_t errors_before = m.errors;
  forward(n, probs.data());
  if (m.errors != errors_before) return "inference failed on the reference pictures";
  for (int i = 0; i < n; ++i) {
    double sum = 0;
    for (int c = 0; c < m.classes; ++c) {
      const float p = probs[static_cast<size_t>(i) * m.classes + c];
      if (!std::isfinite(p) || p < 0.f || p > 1.f)
        return "its outputs on a reference picture are not probabilities (got " + std::to_string(p) +
               "): weights that overflow or are not finite";
      sum += p;
    }
    if (std::abs(sum - 1.0) > 1e-3) return "its outputs on a reference picture sum to " + std::to_string(sum) + ", not 1";
  }
  return {};
}

uint64_t Network::sparse_batches() const noexcept { return impl_->sparse_batches; }
bool Network::sparse_capable() const noexcept {
  for (const auto& p : impl_->pipes)
    if (p.sparse_ok) return true;
  return false;
}
uint64_t Network::dense_batches() const noexcept { return impl_->dense_batches; }
const Model& Network::model() const noexcept { return *impl_->model; }
const std::shared_ptr<const Model>& Network::model_ptr() const noexcept { return impl_->model; }
int Network::max_batch() const noexcept { return impl_->max_batch; }
uint64_t Network::errors() const noexcept { return impl_->errors; }

// ---------------------------------------------------------------------------------------------
// Trainer: plain layouts (nchw activations, oihw/oi weights) so the weights and gradients are
// the model's own tensors, Adam and the element-wise layers (ReLU backward, dropout) are plain
// loops over the same bytes, and no reorders run per step. Convolution, pooling (max, with
// workspace) and inner products run forward and backward through oneDNN primitives built once.
// A short batch (n < batch) is padded with zero pictures whose loss gradient is zero.

namespace {

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

struct Trainer::Impl {
  std::shared_ptr<Model> model;
  TrainOptions opt;
  ArchGeometry geo;
  int B = 0, R = 0, C = 0, Ch = 1, threads = 1;
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  uint64_t rng_state = 0;
  int64_t adam_t = 0;

  // Activations (forward) and their gradients (backward). a[0] = input.
  struct Layer {
    dnnl::primitive fwd, bwd_data, bwd_weights;
    std::unordered_map<int, memory> fwd_args, bwd_data_args, bwd_weights_args;
  };
  memory x;                   // B,Ch,R,R
  memory c1, p1, ws1, c2, p2, ws2;
  memory dc1, dp1, dc2, dp2;
  std::vector<memory> h, dh;  // hidden fc outputs (post ReLU) and their gradients
  memory logits, dlogits;
  std::vector<float> mask_conv, mask_fc;
  std::vector<memory> w_mem, g_mem;  // per tensor: model weights, gradients (plain)
  std::vector<std::vector<float>> grads, adam_m, adam_v;
  Layer conv1, pool1, conv2, pool2;
  std::vector<Layer> fcs;
  bool dropout_on = true;

  memory plain(const memory::dims& d) {
    return memory(memory::desc(d, dt::f32, d.size() == 4 ? tag::nchw : tag::nc), eng);
  }

  void build() {
    const auto& T = model->tensors();
    for (size_t i = 0; i < T.size(); ++i) {
      const bool first_fc = i == 4;
      const memory::desc md = stored_weights_md(T[i], geo, first_fc);
      w_mem.emplace_back(md, eng, const_cast<float*>(T[i].data.data()));
      grads.emplace_back(T[i].data.size(), 0.f);
      adam_m.emplace_back(T[i].data.size(), 0.f);
      adam_v.emplace_back(T[i].data.size(), 0.f);
      g_mem.emplace_back(md, eng, grads.back().data());
    }
    x = plain({B, Ch, R, R});
    auto make_conv = [&](Layer& L, const ConvGeometry& c, memory& src, memory& dst, memory& ddst,
                         memory* dsrc, int wi, int64_t out_hw) {
      dst = plain({B, c.channels, out_hw, out_hw});
      ddst = plain({B, c.channels, out_hw, out_hw});
      memory::desc wd = w_mem[wi].get_desc(), bd = w_mem[wi + 1].get_desc();
      dnnl::convolution_forward::desc fd(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                         src.get_desc(), wd, bd, dst.get_desc(), conv_strides(c), conv_pad_l(c),
                                         conv_pad_r(c));
      dnnl::convolution_forward::primitive_desc fpd(fd, relu_attr(true, false), eng);
      L.fwd = dnnl::convolution_forward(fpd);
      L.fwd_args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w_mem[wi]}, {DNNL_ARG_BIAS, w_mem[wi + 1]},
                    {DNNL_ARG_DST, dst}};
      dnnl::convolution_backward_weights::desc bwd(dnnl::algorithm::convolution_direct, src.get_desc(), wd, bd,
                                                   ddst.get_desc(), conv_strides(c), conv_pad_l(c), conv_pad_r(c));
      dnnl::convolution_backward_weights::primitive_desc bwpd(bwd, eng, fpd);
      L.bwd_weights = dnnl::convolution_backward_weights(bwpd);
      L.bwd_weights_args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_DIFF_WEIGHTS, g_mem[wi]},
                            {DNNL_ARG_DIFF_BIAS, g_mem[wi + 1]}};
      if (dsrc) {  // caller-made, shared with the layer below
        dnnl::convolution_backward_data::desc bdd(dnnl::algorithm::convolution_direct, dsrc->get_desc(), wd,
                                                  ddst.get_desc(), conv_strides(c), conv_pad_l(c), conv_pad_r(c));
        dnnl::convolution_backward_data::primitive_desc bdpd(bdd, eng, fpd);
        L.bwd_data = dnnl::convolution_backward_data(bdpd);
        L.bwd_data_args = {{DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_WEIGHTS, w_mem[wi]}, {DNNL_ARG_DIFF_SRC, *dsrc}};
      }
    };
    // Activation memories are made once, by the producing layer or (pool outputs) by build().
    auto make_pool = [&](Layer& L, memory& src, memory& dsrc, memory& dst, memory& ddst, memory& ws) {
      dnnl::pooling_forward::desc fd(dnnl::prop_kind::forward_training, dnnl::algorithm::pooling_max,
                                     src.get_desc(), dst.get_desc(), {2, 2}, {2, 2}, {0, 0}, {0, 0});
      dnnl::pooling_forward::primitive_desc fpd(fd, eng);
      ws = memory(fpd.workspace_desc(), eng);
      L.fwd = dnnl::pooling_forward(fpd);
      L.fwd_args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}, {DNNL_ARG_WORKSPACE, ws}};
      dnnl::pooling_backward::desc bd(dnnl::algorithm::pooling_max, dsrc.get_desc(), ddst.get_desc(), {2, 2},
                                      {2, 2}, {0, 0}, {0, 0});
      dnnl::pooling_backward::primitive_desc bpd(bd, eng, fpd);
      L.bwd_data = dnnl::pooling_backward(bpd);
      L.bwd_data_args = {{DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_DIFF_SRC, dsrc}, {DNNL_ARG_WORKSPACE, ws}};
    };
    auto make_fc = [&](Layer& L, memory& src, memory* dsrc, memory& dst, memory& ddst, int wi, bool relu) {
      const int64_t out = w_mem[wi].get_desc().dims()[0];
      dst = plain({B, out});
      ddst = plain({B, out});
      memory::desc wd = w_mem[wi].get_desc(), bd = w_mem[wi + 1].get_desc();
      dnnl::inner_product_forward::desc fd(dnnl::prop_kind::forward_training, src.get_desc(), wd, bd,
                                           dst.get_desc());
      dnnl::inner_product_forward::primitive_desc fpd(fd, relu_attr(relu, false), eng);
      L.fwd = dnnl::inner_product_forward(fpd);
      L.fwd_args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w_mem[wi]}, {DNNL_ARG_BIAS, w_mem[wi + 1]},
                    {DNNL_ARG_DST, dst}};
      dnnl::inner_product_backward_weights::desc bwd(src.get_desc(), wd, bd, ddst.get_desc());
      dnnl::inner_product_backward_weights::primitive_desc bwpd(bwd, eng, fpd);
      L.bwd_weights = dnnl::inner_product_backward_weights(bwpd);
      L.bwd_weights_args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_DIFF_WEIGHTS, g_mem[wi]},
                            {DNNL_ARG_DIFF_BIAS, g_mem[wi + 1]}};
      dnnl::inner_product_backward_data::desc bdd(dsrc->get_desc(), wd, ddst.get_desc());
      dnnl::inner_product_backward_data::primitive_desc bdpd(bdd, eng, fpd);
      L.bwd_data = dnnl::inner_product_backward_data(bdpd);
      L.bwd_data_args = {{DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_WEIGHTS, w_mem[wi]}, {DNNL_ARG_DIFF_SRC, *dsrc}};
    };

    make_conv(conv1, geo.conv1, x, c1, dc1, nullptr, 0, geo.c1);
    p1 = plain({B, geo.conv1.channels, geo.p1, geo.p1});
    dp1 = plain({B, geo.conv1.channels, geo.p1, geo.p1});
    make_pool(pool1, c1, dc1, p1, dp1, ws1);
    make_conv(conv2, geo.conv2, p1, c2, dc2, &dp1, 2, geo.c2);
    p2 = plain({B, geo.conv2.channels, geo.p2, geo.p2});
    dp2 = plain({B, geo.conv2.channels, geo.p2, geo.p2});
    make_pool(pool2, c2, dc2, p2, dp2, ws2);
    const size_t nfc = geo.fc_hidden.size() + 1;
    fcs.resize(nfc);
    h.resize(nfc);
    dh.resize(nfc);
    for (size_t i = 0; i < nfc; ++i) {
      memory& src = i == 0 ? p2 : h[i - 1];
      memory* dsrc = i == 0 ? &dp2 : &dh[i - 1];
      make_fc(fcs[i], src, dsrc, h[i], dh[i], 4 + 2 * static_cast<int>(i), i + 1 < nfc);
    }
    logits = h.back();
    dlogits = dh.back();
    mask_conv.assign(static_cast<size_t>(B) * geo.conv2.channels * geo.c2 * geo.c2, 1.f);
    mask_fc.assign(static_cast<size_t>(B) * geo.fc_hidden.back(), 1.f);
  }

  static float* F(const memory& m) { return static_cast<float*>(m.get_data_handle()); }

  void fill_mask(std::vector<float>& mask, float p) {
    if (!dropout_on || p <= 0.f) {
      std::fill(mask.begin(), mask.end(), 1.f);
      return;
    }
    const float keep_scale = 1.f / (1.f - p);
    const uint64_t threshold = static_cast<uint64_t>(static_cast<double>(p) * 4294967296.0);
    for (size_t i = 0; i < mask.size(); i += 2) {  // two 32-bit draws per 64-bit number
      const uint64_t r = splitmix64(rng_state);
      mask[i] = (r & 0xffffffffu) < threshold ? 0.f : keep_scale;
      if (i + 1 < mask.size()) mask[i + 1] = (r >> 32) < threshold ? 0.f : keep_scale;
    }
  }

  // Forward + backward on a padded batch; returns the mean loss over the n real pictures.
  float run(const float* pictures, const int* labels, int n) {
    omp_set_num_threads(threads);
    float* xp = F(x);
    const size_t pic = static_cast<size_t>(Ch) * R * R;
    std::memcpy(xp, pictures, n * pic * sizeof(float));
    std::memset(xp + n * pic, 0, (B - n) * pic * sizeof(float));

    conv1.fwd.execute(strm, conv1.fwd_args);
    pool1.fwd.execute(strm, pool1.fwd_args);
    conv2.fwd.execute(strm, conv2.fwd_args);
    fill_mask(mask_conv, geo.dropout_conv);
    {
      float* a = F(c2);
      const float* mk = mask_conv.data();
      for (size_t i = 0; i < mask_conv.size(); ++i) a[i] *= mk[i];
    }
    pool2.fwd.execute(strm, pool2.fwd_args);
    const size_t nfc = fcs.size();
    for (size_t i = 0; i < nfc; ++i) {
      fcs[i].fwd.execute(strm, fcs[i].fwd_args);
      if (i + 2 == nfc) {  // last hidden layer: dropout
        fill_mask(mask_fc, geo.dropout_fc);
        float* a = F(h[i]);
        for (size_t k = 0; k < mask_fc.size(); ++k) a[k] *= mask_fc[k];
      }
    }
    strm.wait();

    // Softmax cross-entropy; gradient of the mean loss w.r.t. the logits, zero for padding rows.
    const float* z = F(logits);
    float* dz = F(dlogits);
    double loss = 0;
    for (int i = 0; i < B; ++i) {
      const float* zi = z + static_cast<size_t>(i) * C;
      float* di = dz + static_cast<size_t>(i) * C;
      if (i >= n) {
        std::fill(di, di + C, 0.f);
        continue;
      }
      const float mx = *std::max_element(zi, zi + C);
      double sum = 0;
      for (int c = 0; c < C; ++c) sum += std::exp(static_cast<double>(zi[c] - mx));
      const double lse = std::log(sum) + mx;
      loss += lse - zi[labels[i]];
      for (int c = 0; c < C; ++c)
        di[c] = static_cast<float>((std::exp(static_cast<double>(zi[c]) - lse) - (c == labels[i] ? 1.0 : 0.0)) / n);
    }

    for (size_t i = nfc; i-- > 0;) {
      fcs[i].bwd_weights.execute(strm, fcs[i].bwd_weights_args);
      fcs[i].bwd_data.execute(strm, fcs[i].bwd_data_args);
      strm.wait();
      if (i > 0) {  // through ReLU (and dropout on the last hidden layer) of the layer below
        const float* a = F(h[i - 1]);
        float* d = F(dh[i - 1]);
        const size_t cnt = static_cast<size_t>(B) * geo.fc_hidden[i - 1];
        if (i == nfc - 1) {
          const float* mk = mask_fc.data();
          for (size_t k = 0; k < cnt; ++k) d[k] = a[k] > 0.f ? d[k] * mk[k] : 0.f;
        } else {
          for (size_t k = 0; k < cnt; ++k) d[k] = a[k] > 0.f ? d[k] : 0.f;
        }
      }
    }
    pool2.bwd_data.execute(strm, pool2.bwd_data_args);
    strm.wait();
    {
      const float* a = F(c2);  // post ReLU and dropout
      float* d = F(dc2);
      const float* mk = mask_conv.data();
      for (size_t k = 0; k < mask_conv.size(); ++k) d[k] = a[k] > 0.f ? d[k] * mk[k] : 0.f;
    }
    conv2.bwd_weights.execute(strm, conv2.bwd_weights_args);
    conv2.bwd_data.execute(strm, conv2.bwd_data_args);
    pool1.bwd_data.execute(strm, pool1.bwd_data_args);
    strm.wait();
    {
      const float* a = F(c1);
      float* d = F(dc1);
      const size_t cnt = static_cast<size_t>(B) * geo.conv1.channels * geo.c1 * geo.c1;
      for (size_t k = 0; k < cnt; ++k) d[k] = a[k] > 0.f ? d[k] : 0.f;
    }
    conv1.bwd_weights.execute(strm, conv1.bwd_weights_args);
    strm.wait();
    return static_cast<float>(loss / n);
  }

  void adam() {
    ++adam_t;
    const double b1 = opt.beta1, b2 = opt.beta2;
    const float c1f = static_cast<float>(1.0 / (1.0 - std::pow(b1, static_cast<double>(adam_t))));
    const float c2f = static_cast<float>(1.0 / (1.0 - std::pow(b2, static_cast<double>(adam_t))));
    auto& T = model->mutable_tensors();
    for (size_t ti = 0; ti < T.size(); ++ti) {
      float* w = T[ti].data.data();
      const float* g = grads[ti].data();
      float* m = adam_m[ti].data();
      float* v = adam_v[ti].data();
      const float decay = T[ti].dims.size() > 1 ? opt.weight_decay * opt.lr : 0.f;  // decoupled (AdamW), weights only
      const size_t cnt = T[ti].data.size();
      const float beta1 = opt.beta1, beta2 = opt.beta2, lr = opt.lr, eps = opt.eps;
      for (size_t k = 0; k < cnt; ++k) {
        m[k] = beta1 * m[k] + (1.f - beta1) * g[k];
        v[k] = beta2 * v[k] + (1.f - beta2) * g[k] * g[k];
        const float mh = m[k] * c1f, vh = v[k] * c2f;
        w[k] -= lr * mh / (std::sqrt(vh) + eps) + decay * w[k];
      }
    }
  }
};

Trainer::Trainer(std::shared_ptr<Model> model, const TrainOptions& opt, int batch) : impl_(new Impl) {
  Impl& m = *impl_;
  if (!model) throw ModelError("trainer: no model");
  if (batch < 1) throw ModelError("trainer: batch must be >= 1");
  m.model = std::move(model);
  m.opt = opt;
  m.B = batch;
  m.R = m.model->resolution();
  m.C = m.model->num_classes();
  m.Ch = m.model->channels();
  m.threads = resolve_threads(opt.threads);
  m.geo = arch_geometry(m.model->info().arch, m.R);
  const auto expect = parameter_shapes(m.model->info().arch, m.R, m.C, m.Ch);
  const auto& T = m.model->tensors();
  if (expect.size() != T.size()) throw ModelError("trainer: model has the wrong number of tensors");
  for (size_t i = 0; i < T.size(); ++i)
    if (T[i].dims != expect[i].dims) throw ModelError("trainer: tensor " + T[i].name + " has the wrong shape");
  m.rng_state = opt.seed ^ 0x5deece66dull;
  OmpThreadsGuard omp(m.threads);
  m.build();
}

Trainer::~Trainer() = default;

float Trainer::step(const float* pictures, const int* labels, int n) {
  Impl& m = *impl_;
  if (n < 1 || n > m.B) throw ModelError("trainer: step with " + std::to_string(n) + " pictures, batch is " +
                                         std::to_string(m.B));
  for (int i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= m.C) throw ModelError("trainer: label " + std::to_string(labels[i]) + " out of range");
  m.dropout_on = true;
  const float loss = m.run(pictures, labels, n);
  m.adam();
  return loss;
}

float Trainer::loss_and_gradients(const float* pictures, const int* labels, int n,
                                  std::vector<std::vector<float>>* grads) {
  Impl& m = *impl_;
  if (n < 1 || n > m.B) throw ModelError("trainer: batch of " + std::to_string(n) + " pictures, batch is " +
                                         std::to_string(m.B));
  for (int i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= m.C) throw ModelError("trainer: label " + std::to_string(labels[i]) + " out of range");
  m.dropout_on = false;
  const float loss = m.run(pictures, labels, n);
  if (grads) *grads = m.grads;
  return loss;
}

Model& Trainer::model() noexcept { return *impl_->model; }

}  // namespace flowpic
