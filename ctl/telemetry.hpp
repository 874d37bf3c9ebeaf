// DPDK telemetry bridge: the control snapshots (JSON) served as /flowpic/... telemetry
// commands, so DPDK's own dpdk-telemetry.py (and collectd/telegraf DPDK plugins) read them.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

struct rte_tel_data;

namespace flowpic {

class ControlServer;

// Gets the text after the comma of a request ("/flowpic/flows,20" -> "20"; "" when none).
// Runs on a DPDK telemetry thread (one per connected client): must be thread-safe.
using TelemetrySource = std::function<nlohmann::json(const std::string& params)>;

// Registers `cmd` (must start with "/flowpic/"; letters, digits, '_' and '/'; at most 55 bytes)
// with rte_telemetry_register_cmd. Works before or after rte_eal_init. Registering the same
// command again replaces its source. Returns false with a reason in *err when DPDK refuses.
bool register_telemetry_command(const std::string& cmd, TelemetrySource source,
                                const std::string& help, std::string* err = nullptr);

// DPDK cannot unregister commands: call this before destroying what the sources read; every
// /flowpic/ command then answers an error instead of touching freed state.
void clear_telemetry_sources();

// Registers the read-only control commands as telemetry commands, answered through
// server.dispatch() (so through the same handlers as flowpicctl):
//   /flowpic/status            -> "status"
//   /flowpic/stats[,PATH]      -> "stats", optionally the subtree PATH ("ports/0", "classes")
//   /flowpic/model             -> "model.show"
//   /flowpic/flows[,N]         -> "flows.top" {"n": N (default 10)}
// The server must outlive the registration (or call clear_telemetry_sources() first).
bool register_control_telemetry(ControlServer& server, std::string* err = nullptr);

// Picks a subtree by a '/'-separated path of object keys and array indices; null if absent.
nlohmann::json json_select_path(const nlohmann::json& j, std::string_view path);

// Converts JSON into telemetry data within DPDK 22.11's limits: objects are flattened into one
// dict whose keys join the path with '/' ("ports/0/rx/packets"); arrays of non-negative
// integers or of strings stay arrays; non-negative integers are u64, negative ones int, floats
// become strings ("%.6g"), booleans 0/1; names are reduced to [A-Za-z0-9_/], strings to 127
// bytes. Past 255 entries the dict ends with "truncated": <entries left out>.
// Returns 0 or a negative errno.
int json_to_telemetry(const nlohmann::json& j, rte_tel_data* d);

}  // namespace flowpic
