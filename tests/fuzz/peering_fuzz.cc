// Fuzzes what a node reads from other nodes during peering: handshake bodies
// and answers (federation::ParseHandshake), keys documents
// (federation::ParseKeysDocument), stored peer records
// (federation::PeerRecordFromJson) and base URLs (config::ParseBaseUrl).
//
// The first byte picks the parser; the rest is its input. Besides not
// crashing, every answer must keep the promises of federation/peers.h,
// federation/node_keys.h and config/config.h:
// - a handshake that parses has a node name, a base URL whose authority is
//   that node, and capabilities within the caps; its JSON parses back to the
//   same handshake;
// - a keys document that parses lists at most kMaxNodeKeys keys, each
//   "<node>#..." and unique;
// - a base URL that parses re-parses to itself, with a lower-case authority.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.h"
#include "federation/node_keys.h"
#include "federation/peers.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using backpack::fuzz::Require;

void CheckHandshake(std::string_view input, bool is_answer) {
  auto parsed = backpack::federation::ParseHandshake(input, is_answer);
  if (!parsed.ok()) {
    Require(parsed.status().code() == backpack::StatusCode::kInvalidArgument);
    return;
  }
  Require(backpack::config::IsNodeName(parsed->node));
  auto url = backpack::config::ParseBaseUrl(parsed->base_url);
  Require(url.ok() && url->authority == parsed->node && url->url == parsed->base_url);
  Require(parsed->capabilities.size() <= backpack::federation::kMaxCapabilities);
  Require(!is_answer || parsed->state == "active" || parsed->state == "pending");
  auto again = backpack::federation::ParseHandshake(backpack::federation::ToJson(*parsed), is_answer);
  Require(again.ok() && again->node == parsed->node && again->base_url == parsed->base_url &&
          again->capabilities == parsed->capabilities && again->state == parsed->state);
}

void CheckKeysDocument(std::string_view input) {
  constexpr std::string_view kNode = "a.example";
  auto keys = backpack::federation::ParseKeysDocument(input, kNode);
  if (!keys.ok()) return;
  Require(keys->size() <= backpack::federation::kMaxNodeKeys);
  for (size_t i = 0; i < keys->size(); ++i) {
    Require((*keys)[i].id.starts_with("a.example#") && (*keys)[i].id.size() > kNode.size() + 1);
    for (size_t j = 0; j < i; ++j) Require((*keys)[j].id != (*keys)[i].id);
  }
}

void CheckBaseUrl(std::string_view input) {
  auto url = backpack::config::ParseBaseUrl(input);
  if (!url.ok()) return;
  for (char c : url->authority) Require(!(c >= 'A' && c <= 'Z'));
  auto again = backpack::config::ParseBaseUrl(url->url);
  Require(again.ok() && again->url == url->url && again->authority == url->authority && again->https == url->https);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0: CheckHandshake(input, false); break;
    case 1: CheckHandshake(input, true); break;
    case 2: CheckKeysDocument(input); break;
    case 3: (void)backpack::federation::PeerRecordFromJson(input).ok(); break;
    case 4: CheckBaseUrl(input); break;
  }
  return 0;
}
