// The kernel's drop counter of net_af_packet ports (issue 14). DPDK 22.11's af_packet PMD reports
// no imissed: frames the kernel could not put in the port's mmap ring (full: the lcore fell behind)
// were invisible. The kernel counts them per socket (PACKET_STATISTICS, tp_drops); the PMD's
// sockets are file descriptors of this process, found once by the interface they are bound to.
#pragma once

#include <linux/if_packet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace flowpic {

// This process's AF_PACKET sockets bound to interface `ifindex` (the af_packet PMD opens one per
// queue pair at probe and closes them at port stop).
inline std::vector<int> packet_sockets_of(int ifindex) {
  std::vector<int> fds;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    const int fd = std::atoi(e.path().filename().c_str());
    std::error_code lec;
    if (std::filesystem::read_symlink(e.path(), lec).string().rfind("socket:", 0) != 0) continue;
    int domain = 0;
    socklen_t len = sizeof domain;
    if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_PACKET) continue;
    sockaddr_ll sll{};
    len = sizeof sll;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sll), &len) != 0 || sll.sll_ifindex != ifindex) continue;
    fds.push_back(fd);
  }
  return fds;
}

struct PacketSocketCounts {
  uint64_t packets = 0;  // frames the kernel handed to the sockets, dropped ones included
  uint64_t drops = 0;    // frames dropped because the ring was full
};

// Reads (and thereby resets: the kernel zeroes them on every read) the sockets' counters.
inline PacketSocketCounts read_packet_socket_counts(const std::vector<int>& fds) {
  PacketSocketCounts c;
  for (const int fd : fds) {
    tpacket_stats st{};
    socklen_t len = sizeof st;
    if (::getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) != 0) continue;
    c.packets += st.tp_packets;
    c.drops += st.tp_drops;
  }
  return c;
}

}  // namespace flowpic
