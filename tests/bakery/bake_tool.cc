// Bakes and extracts Open Badges images from the command line with
// backpackd's protocol library, for cross-checks against other bakers.
//
//   bake_tool extract IMAGE
//       Prints one JSON object: {"format","kind","form","data","verify_url"}.
//       Refused: prints {"error":{"code","message"}} and exits 1.
//   bake_tool bake IMAGE KIND PAYLOAD_FILE OUT [VERIFY_URL]
//       KIND is assertion or credential; the payload's form (JSON, JWS, URL)
//       is read from its content. Writes the baked image to OUT.
//
// Exit status: 0 done, 1 refused by the library, 2 usage or file error.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "protocol/baking.h"

namespace {

using backpack::Status;
using backpack::StatusCodeName;
using backpack::protocol::BadgeKind;
using backpack::protocol::BakedPayload;

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool WriteFile(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

int Refused(const Status& status) {
  nlohmann::json error = {
      {"error", {{"code", StatusCodeName(status.code())}, {"message", status.message()}}}};
  std::cout << error.dump() << "\n";
  return 1;
}

int Usage() {
  std::cerr << "usage: bake_tool extract IMAGE\n"
               "       bake_tool bake IMAGE assertion|credential PAYLOAD_FILE OUT [VERIFY_URL]\n";
  return 2;
}

int Extract(const std::string& image_path) {
  const std::optional<std::string> image = ReadFile(image_path);
  if (!image) {
    std::cerr << "cannot read " << image_path << "\n";
    return 2;
  }
  auto found = backpack::protocol::ExtractBadge(*image);
  if (!found.ok()) return Refused(found.status());
  nlohmann::json out = {
      {"format", backpack::protocol::ImageFormatName(found->format)},
      {"kind", backpack::protocol::BadgeKindName(found->kind)},
      {"form", backpack::protocol::PayloadFormName(found->form)},
      {"data", found->data},
      {"verify_url", found->verify_url},
  };
  std::cout << out.dump() << "\n";
  return 0;
}

int Bake(const std::string& image_path, std::string_view kind, const std::string& payload_path,
         const std::string& out_path, const std::string& verify_url) {
  const std::optional<std::string> image = ReadFile(image_path);
  const std::optional<std::string> data = ReadFile(payload_path);
  if (!image || !data) {
    std::cerr << "cannot read " << (image ? payload_path : image_path) << "\n";
    return 2;
  }
  BakedPayload payload;
  if (kind == "assertion") {
    payload.kind = BadgeKind::kAssertion;
  } else if (kind == "credential") {
    payload.kind = BadgeKind::kCredential;
  } else {
    return Usage();
  }
  auto form = backpack::protocol::ClassifyPayload(*data);
  if (!form.ok()) return Refused(form.status());
  payload.form = *form;
  payload.data = *data;
  payload.verify_url = verify_url;
  auto baked = backpack::protocol::BakeBadge(*image, payload);
  if (!baked.ok()) return Refused(baked.status());
  if (!WriteFile(out_path, *baked)) {
    std::cerr << "cannot write " << out_path << "\n";
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string_view(argv[1]) == "extract") return Extract(argv[2]);
  if ((argc == 6 || argc == 7) && std::string_view(argv[1]) == "bake") {
    return Bake(argv[2], argv[3], argv[4], argv[5], argc == 7 ? argv[6] : "");
  }
  return Usage();
}
