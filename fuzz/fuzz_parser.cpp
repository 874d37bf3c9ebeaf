// parse_packet on any bytes: the first byte picks the link type, the rest is the packet.
#include "fuzz/fuzz_target.hpp"
#include "packet/parse.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowpic;
  if (size < 1) return 0;
  static constexpr LinkType kLinks[] = {LinkType::kEthernet, LinkType::kRawIp, LinkType::kLinuxSll,
                                        LinkType::kBsdLoopback, LinkType::kUnsupported};
  const LinkType link = kLinks[data[0] % (sizeof kLinks / sizeof kLinks[0])];
  ParsedPacket out{};
  const ParseResult r = parse_packet(data + 1, static_cast<uint32_t>(size - 1), link, out);
  // What the flow table would read must be within the packet.
  if ((r == ParseResult::kOk || r == ParseResult::kOkFragment) && out.l3_offset > size - 1) __builtin_trap();
  return 0;
}
