#include "dataplane/placement.hpp"

#include <hwloc.h>

#include <algorithm>
#include <stdexcept>

namespace flowpic {

Topology::Topology() {
  if (hwloc_topology_init(&topo_) != 0 || hwloc_topology_load(topo_) != 0)
    throw std::runtime_error("hwloc: cannot read the CPU topology");
}

Topology::~Topology() {
  if (topo_) hwloc_topology_destroy(topo_);
}

std::vector<unsigned> Topology::online_cpus() const {
  std::vector<unsigned> out;
  hwloc_const_cpuset_t set = hwloc_topology_get_allowed_cpuset(topo_);
  unsigned i;
  hwloc_bitmap_foreach_begin(i, set) { out.push_back(i); }
  hwloc_bitmap_foreach_end();
  return out;
}

bool Topology::has_cpu(unsigned cpu) const {
  return hwloc_bitmap_isset(hwloc_topology_get_allowed_cpuset(topo_), cpu);
}

int Topology::numa_node(unsigned cpu) const {
  hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(topo_, cpu);
  if (!pu || !pu->nodeset) return -1;
  return hwloc_bitmap_first(pu->nodeset);
}

bool Topology::bind_this_thread(const std::vector<unsigned>& cpus) const {
  if (cpus.empty()) return true;
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  for (unsigned c : cpus) hwloc_bitmap_set(set, c);
  const int rc = hwloc_set_cpubind(topo_, set, HWLOC_CPUBIND_THREAD);
  hwloc_bitmap_free(set);
  return rc == 0;
}

std::string Topology::describe() const {
  const int cpus = hwloc_get_nbobjs_by_type(topo_, HWLOC_OBJ_PU);
  const int nodes = std::max(1, hwloc_get_nbobjs_by_type(topo_, HWLOC_OBJ_NUMANODE));
  std::string s = std::to_string(cpus) + " CPUs, " + std::to_string(nodes) + " NUMA node(s)";
  hwloc_obj_t pkg = hwloc_get_obj_by_type(topo_, HWLOC_OBJ_PACKAGE, 0);
  if (pkg) {
    const char* model = hwloc_obj_get_info_by_name(pkg, "CPUModel");
    if (model) s += std::string(", ") + model;
  }
  return s;
}

std::string cpu_list_string(const std::vector<unsigned>& cpus) {
  std::vector<unsigned> v = cpus;
  std::sort(v.begin(), v.end());
  std::string s;
  for (std::size_t i = 0; i < v.size();) {
    std::size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
    if (!s.empty()) s += ",";
    s += std::to_string(v[i]);
    if (j > i) s += "-" + std::to_string(v[j]);
    i = j + 1;
  }
  return s.empty() ? "-" : s;
}

}  // namespace flowpic
