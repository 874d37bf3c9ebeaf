// One request line of the control protocol through ControlServer::dispatch, with handlers that
// read their arguments the way flowpicd's do. Every line must get a reply object with "ok".
#include <string>

#include "ctl/control_server.hpp"
#include "fuzz/fuzz_target.hpp"

namespace {
flowpic::ControlServer& server() {
  static flowpic::ControlServer* s = [] {
    auto* srv = new flowpic::ControlServer(flowpic::ControlServerConfig{});
    srv->handle("status", [](const nlohmann::json&) { return nlohmann::json{{"version", "fuzz"}}; });
    srv->handle("flows.top", [](const nlohmann::json& a) {
      const int n = a.value("n", 10);
      return nlohmann::json{{"n", n}, {"by", a.value("by", std::string("packets"))}};
    });
    srv->handle("flows.get", [](const nlohmann::json& a) { return nlohmann::json{{"flow", a.at("flow").get<std::string>()}}; });
    srv->handle("log.level", [](const nlohmann::json& a) {
      return nlohmann::json{{"level", a.at("level").get<std::string>()}};  // not the real one: no global side effect
    });
    return srv;
  }();
  return *s;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json reply = server().dispatch(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!reply.is_object() || !reply.contains("ok") || !reply["ok"].is_boolean()) __builtin_trap();
  (void)reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return 0;
}
