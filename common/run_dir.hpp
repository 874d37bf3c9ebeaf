// Where flowpicd keeps its run-time files, shared by flowpicd and flowpicctl (issue 16):
// RUN_BASE/INSTANCE/, RUN_BASE = $FLOWPICD_RUN_DIR or /run/flowpicd.
#pragma once

#include <cstdlib>
#include <string>

namespace flowpic {

inline constexpr const char* kDefaultRunBase = "/run/flowpicd";
// The control socket's name in the run directory when control.socket is a relative name; the
// shipped configs use it, and `flowpicctl -i INSTANCE` looks for it.
inline constexpr const char* kControlSocketName = "control.sock";

// $FLOWPICD_RUN_DIR when set and not empty, else /run/flowpicd.
inline std::string run_base() {
  const char* v = std::getenv("FLOWPICD_RUN_DIR");
  return v && *v ? std::string(v) : std::string(kDefaultRunBase);
}

// An instance name is a file name: letters, digits, '_', '-', '.', '@' (not first), 1-64 chars.
inline bool valid_instance_name(const std::string& s) {
  if (s.empty() || s.size() > 64 || s[0] == '.' || s[0] == '-') return false;
  for (const char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '.' || c == '@';
    if (!ok) return false;
  }
  return true;
}

}  // namespace flowpic
