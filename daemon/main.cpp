// backpackd: the backpack node daemon.
#include <cstdio>
#include <cstring>
#include <string>

#include "config/config.h"
#include "daemon/log.h"
#include "daemon/node.h"

namespace {

constexpr char kUsage[] =
    "usage: backpackd [--listen HOST:PORT] [--data-dir DIR] [--config FILE] [--port-file FILE]\n"
    "                 [--fetch-allow-private]\n"
    "       backpackd --version | --help\n"
    "\n"
    "Runs a backpack node. Every setting can be given in the TOML file named by\n"
    "--config (see deploy/backpackd.example.toml); flags override the file.\n";

}  // namespace

int main(int argc, char** argv) {
  backpack::config::Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "backpackd: %s needs a value\n%s", arg.c_str(), kUsage);
        std::exit(2);
      }
      *out = argv[++i];
    };
    if (arg == "--listen") value(&flags.listen);
    else if (arg == "--data-dir") value(&flags.data_dir);
    else if (arg == "--config") value(&flags.config_file);
    else if (arg == "--port-file") value(&flags.port_file);
    else if (arg == "--fetch-allow-private") flags.fetch_allow_private = true;
    else if (arg == "--version") {
      std::printf("backpackd %s\n", BACKPACK_VERSION);
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "backpackd: unknown argument '%s'\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }

  auto config = backpack::config::LoadConfig(flags);
  if (!config.ok()) {
    std::fprintf(stderr, "backpackd: configuration error: %s\n", config.status().message().c_str());
    return 2;
  }
  backpack::log::Level level = backpack::log::Level::kInfo;
  backpack::log::ParseLevel(config->log.level, &level);
  backpack::log::SetLevel(level);
  backpack::log::SetJsonFormat(config->log.format == "json");

  backpack::Node node(std::move(*config));
  if (backpack::Status s = node.Start(); !s.ok()) {
    backpack::log::Error("node", "start-up failed", {{"error", s.ToString()}});
    std::fprintf(stderr, "backpackd: %s\n", s.message().c_str());
    return 1;
  }
  return node.Run();
}
