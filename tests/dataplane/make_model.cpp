// dp_make_model OUT [WINNER [LIKE.fpm]]: writes an untrained test model (see harness.hpp
// make_model): with WINNER (a class index, -1 for none) every window gets that class; with
// LIKE.fpm its window policy is copied (so `flowpicctl model load` accepts it next to LIKE).
// For manual runs of flowpicd and the operator's examples in docs/operations.md.
#include <cstdio>
#include <cstdlib>

#include "harness.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT.fpm [WINNER_CLASS_INDEX [LIKE.fpm]]\n", argv[0]);
    return 2;
  }
  const int winner = argc > 2 ? std::atoi(argv[2]) : -1;
  try {
    flowpic::WindowPolicy window;
    const flowpic::WindowPolicy* like = nullptr;
    if (argc > 3) {
      window = flowpic::Model::load(argv[3])->info().picture.window;
      like = &window;
    }
    auto m = flowpic::test::make_model(argv[1], winner, 7, "dptest", like);
    std::printf("%s\n", m->id().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dp_make_model: %s\n", e.what());
    return 1;
  }
  return 0;
}
