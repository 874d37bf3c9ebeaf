// dp_make_model OUT [WINNER]: writes an untrained test model (see harness.hpp make_model):
// with WINNER (a class index) every window gets that class. For manual runs of flowpicd
// until models/default.fpm ships.
#include <cstdio>
#include <cstdlib>

#include "harness.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT.fpm [WINNER_CLASS_INDEX]\n", argv[0]);
    return 2;
  }
  const int winner = argc > 2 ? std::atoi(argv[2]) : -1;
  auto m = flowpic::test::make_model(argv[1], winner);
  std::printf("%s\n", m->id().c_str());
  return 0;
}
