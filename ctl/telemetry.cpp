#include "ctl/telemetry.hpp"

#include <rte_telemetry.h>

#include <cerrno>
#include <cstdio>
#include <map>
#include <memory>
#include <shared_mutex>
#include <utility>
#include <vector>

#include "ctl/control_server.hpp"

namespace flowpic {

using nlohmann::json;

namespace {

constexpr size_t kMaxName = RTE_TEL_MAX_STRING_LEN - 1;
constexpr size_t kMaxDict = RTE_TEL_MAX_DICT_ENTRIES;

// DPDK 22.11's callbacks carry no user pointer: one trampoline finds the source by name.
std::shared_mutex& registry_mu() {
  static std::shared_mutex m;
  return m;
}
std::map<std::string, TelemetrySource>& registry() {
  static std::map<std::string, TelemetrySource> r;
  return r;
}

std::string tel_name(std::string s) {
  for (char& c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '/'))
      c = '_';
  if (s.size() > kMaxName) s.resize(kMaxName);
  return s.empty() ? std::string("_") : s;
}

// Strings are kept to printable ASCII without quotes or backslashes, whatever DPDK's JSON
// writer escapes: its output must stay valid JSON.
std::string tel_string(const std::string& in) {
  std::string s = in.substr(0, kMaxName);
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f || c == '"' || c == '\\')
      c = '_';
  return s;
}

std::string number_text(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

bool scalar(const json& v) { return v.is_primitive(); }

// Arrays that 22.11 can hold as a container: all u64-able integers, or all strings.
bool u64_array(const json& a) {
  if (!a.is_array() || a.empty() || a.size() > RTE_TEL_MAX_ARRAY_ENTRIES) return false;
  for (const auto& x : a)
    if (!x.is_number_unsigned() && !(x.is_number_integer() && x.get<int64_t>() >= 0)) return false;
  return true;
}
bool string_array(const json& a) {
  if (!a.is_array() || a.empty() || a.size() > RTE_TEL_MAX_ARRAY_ENTRIES) return false;
  for (const auto& x : a)
    if (!x.is_string()) return false;
  return true;
}

struct Leaf {
  std::string name;
  const json* value;
};

void flatten(const json& j, const std::string& prefix, std::vector<Leaf>& out) {
  auto child = [&](const std::string& key) { return prefix.empty() ? key : prefix + "/" + key; };
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if (scalar(v) || u64_array(v) || string_array(v)) out.push_back({child(k), &v});
      else flatten(v, child(k), out);
    }
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) {
      const json& v = j[i];
      const std::string key = child(std::to_string(i));
      if (scalar(v) || u64_array(v) || string_array(v)) out.push_back({key, &v});
      else flatten(v, key, out);
    }
  } else {
    out.push_back({prefix.empty() ? std::string("value") : prefix, &j});
  }
}

int add_leaf(rte_tel_data* d, const std::string& raw_name, const json& v) {
  const std::string name = tel_name(raw_name);
  if (v.is_array()) {
    rte_tel_data* arr = rte_tel_data_alloc();
    if (!arr) return -ENOMEM;
    if (string_array(v)) {
      rte_tel_data_start_array(arr, RTE_TEL_STRING_VAL);
      for (const auto& x : v) rte_tel_data_add_array_string(arr, tel_string(x.get<std::string>()).c_str());
    } else {
      rte_tel_data_start_array(arr, RTE_TEL_U64_VAL);
      for (const auto& x : v) rte_tel_data_add_array_u64(arr, x.get<uint64_t>());
    }
    const int rc = rte_tel_data_add_dict_container(d, name.c_str(), arr, 0);
    if (rc != 0) rte_tel_data_free(arr);
    return rc;
  }
  if (v.is_string()) return rte_tel_data_add_dict_string(d, name.c_str(), tel_string(v.get<std::string>()).c_str());
  if (v.is_boolean()) return rte_tel_data_add_dict_u64(d, name.c_str(), v.get<bool>() ? 1 : 0);
  if (v.is_number_unsigned()) return rte_tel_data_add_dict_u64(d, name.c_str(), v.get<uint64_t>());
  if (v.is_number_integer()) {
    const int64_t x = v.get<int64_t>();
    if (x >= 0) return rte_tel_data_add_dict_u64(d, name.c_str(), static_cast<uint64_t>(x));
    if (x >= INT32_MIN) return rte_tel_data_add_dict_int(d, name.c_str(), static_cast<int>(x));
    return rte_tel_data_add_dict_string(d, name.c_str(), std::to_string(x).c_str());
  }
  if (v.is_number_float()) return rte_tel_data_add_dict_string(d, name.c_str(), number_text(v.get<double>()).c_str());
  return rte_tel_data_add_dict_string(d, name.c_str(), "null");
}

// The source runs under the shared lock: clear_telemetry_sources() (exclusive) therefore waits
// for calls in flight, and what a source points to (flowpicd's ControlServer) may be destroyed
// once it returns (issue 16: a source copied out of the lock ran on a deleted server). DPDK
// 22.11 cannot unregister a callback; after the clear it answers "not available".
int trampoline(const char* cmd, const char* params, rte_tel_data* d) {
  json j;
  {
    std::shared_lock lk(registry_mu());
    auto it = registry().find(cmd ? cmd : "");
    if (it == registry().end() || !it->second) {
      j = json{{"error", "flowpic telemetry is not available (appliance stopping)"}};
    } else {
      try {
        j = it->second(params ? params : "");
      } catch (const std::exception& e) {
        j = json{{"error", e.what()}};
      }
    }
  }
  return json_to_telemetry(j, d);
}

}  // namespace

int json_to_telemetry(const json& j, rte_tel_data* d) {
  if (j.is_array() && (u64_array(j) || string_array(j))) {
    if (string_array(j)) {
      rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
      for (const auto& x : j) rte_tel_data_add_array_string(d, tel_string(x.get<std::string>()).c_str());
    } else {
      rte_tel_data_start_array(d, RTE_TEL_U64_VAL);
      for (const auto& x : j) rte_tel_data_add_array_u64(d, x.get<uint64_t>());
    }
    return 0;
  }
  if (j.is_string()) return rte_tel_data_string(d, tel_string(j.get<std::string>()).c_str());
  int rc = rte_tel_data_start_dict(d);
  if (rc != 0) return rc;
  std::vector<Leaf> leaves;
  flatten(j, "", leaves);
  const size_t room = leaves.size() > kMaxDict ? kMaxDict - 1 : leaves.size();
  for (size_t i = 0; i < room; ++i) {
    rc = add_leaf(d, leaves[i].name, *leaves[i].value);
    if (rc < 0 && rc != -E2BIG) return rc;
  }
  if (room < leaves.size()) rte_tel_data_add_dict_u64(d, "truncated", leaves.size() - room);
  return 0;
}

json json_select_path(const json& j, std::string_view path) {
  const json* cur = &j;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    const std::string part(path.substr(pos, slash - pos));
    pos = slash + 1;
    if (part.empty()) {
      if (slash == path.size()) break;
      continue;
    }
    if (cur->is_object()) {
      auto it = cur->find(part);
      if (it == cur->end()) return nullptr;
      cur = &*it;
    } else if (cur->is_array()) {
      if (part.find_first_not_of("0123456789") != std::string::npos || part.size() > 9) return nullptr;
      const size_t idx = std::stoul(part);
      if (idx >= cur->size()) return nullptr;
      cur = &(*cur)[idx];
    } else {
      return nullptr;
    }
  }
  return *cur;
}

bool register_telemetry_command(const std::string& cmd, TelemetrySource source, const std::string& help,
                                std::string* err) {
  auto fail = [&](const std::string& why) {
    if (err) *err = "telemetry command " + cmd + ": " + why;
    return false;
  };
  if (cmd.rfind("/flowpic/", 0) != 0) return fail("must start with /flowpic/");
  if (cmd.size() > 55) return fail("longer than 55 bytes");
  if (tel_name(cmd) != cmd) return fail("only letters, digits, '_' and '/' are allowed");
  {
    std::unique_lock lk(registry_mu());
    auto it = registry().find(cmd);
    if (it != registry().end()) {  // already known to DPDK: just swap the source
      it->second = std::move(source);
      return true;
    }
    registry()[cmd] = std::move(source);
  }
  const int rc = rte_telemetry_register_cmd(cmd.c_str(), trampoline, help.substr(0, 127).c_str());
  if (rc != 0) {
    std::unique_lock lk(registry_mu());
    registry().erase(cmd);
    return fail("rte_telemetry_register_cmd refused it (" + std::to_string(rc) + ")");
  }
  return true;
}

void clear_telemetry_sources() {
  std::unique_lock lk(registry_mu());
  for (auto& [name, src] : registry()) src = nullptr;
}

bool register_control_telemetry(ControlServer& server, std::string* err) {
  auto result_of = [&server](const std::string& cmd, json args) -> json {
    json reply = server.dispatch(json{{"cmd", cmd}, {"args", std::move(args)}}.dump());
    if (!reply.value("ok", false)) return json{{"error", reply.value("error", std::string("failed"))}};
    return reply["result"];
  };
  return register_telemetry_command(
             "/flowpic/status", [result_of](const std::string&) { return result_of("status", json::object()); },
             "flowpicd status: version, uptime, ports, lcores, model. No parameters", err) &&
         register_telemetry_command(
             "/flowpic/stats",
             [result_of](const std::string& params) {
               json s = result_of("stats", json::object());
               return params.empty() ? s : json_select_path(s, params);
             },
             "flowpicd counters. Parameter: optional subtree path, e.g. ports/0 or classes", err) &&
         register_telemetry_command(
             "/flowpic/model", [result_of](const std::string&) { return result_of("model.show", json::object()); },
             "Model serving verdicts, previous model. No parameters", err) &&
         register_telemetry_command(
             "/flowpic/flows",
             [result_of](const std::string& params) {
               int n = 10;
               if (!params.empty()) {
                 try {
                   n = std::stoi(params);
                 } catch (const std::exception&) {
                   return json{{"error", "parameter must be a number of flows"}};
                 }
               }
               return result_of("flows.top", json{{"n", n}});
             },
             "Top flows by packets. Parameter: number of flows (default 10)", err);
}

}  // namespace flowpic
