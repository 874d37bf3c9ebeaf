// CPU topology through hwloc: which CPUs exist, their NUMA node, pinning of threads.
#pragma once

#include <string>
#include <vector>

struct hwloc_topology;

namespace flowpic {

class Topology {
 public:
  Topology();  // throws std::runtime_error if hwloc cannot load the topology
  ~Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  std::vector<unsigned> online_cpus() const;  // OS numbers of the CPUs we may run on
  bool has_cpu(unsigned cpu) const;
  int numa_node(unsigned cpu) const;          // -1 when unknown
  // Pins the calling thread to `cpus` (OS numbers). Returns false (errno kept) on failure.
  bool bind_this_thread(const std::vector<unsigned>& cpus) const;
  std::string describe() const;               // "2 CPUs, 1 NUMA node(s), Intel Xeon ..."

 private:
  hwloc_topology* topo_ = nullptr;
};

// "0-3,8" style text of a CPU list.
std::string cpu_list_string(const std::vector<unsigned>& cpus);

}  // namespace flowpic
