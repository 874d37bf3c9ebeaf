// The RSS key flowpicd programs into ports with several rx queues.
//
// Bidirectional models (window.flows: bi) need both directions of a connection in one flow
// table, that is on one polling lcore. A Toeplitz hash over (source, destination, ports) gives
// both directions the same value when the key repeats with a 16-bit period whose two bytes
// pair up source with destination and port with port: 0x6d5a repeated (S. Woo and K. Park,
// "Scalable TCP Session Monitoring with Symmetric Receive-side Scaling", KAIST tech. report,
// 2012). It spreads flows as well as the usual key on their traces. flowpicd programs it whatever
// the model (a model load cannot change window.flows anyway: the flow tables are built for it).
#pragma once

#include <cstddef>
#include <cstdint>

namespace flowpic {

// Largest RSS key a device reports (hash_key_size) that flowpicd fills; 52 bytes covers the
// NICs DPDK 22.11 drives (40 for most, 52 for i40e/ice).
constexpr std::size_t kMaxRssKeyBytes = 64;

// Fills `len` bytes of the symmetric key (0x6d, 0x5a, 0x6d, 0x5a, ...).
inline void symmetric_rss_key(uint8_t* key, std::size_t len) noexcept {
  for (std::size_t i = 0; i < len; ++i) key[i] = (i % 2) ? 0x5a : 0x6d;
}

}  // namespace flowpic
