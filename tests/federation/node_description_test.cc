#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "federation/node_description.h"

namespace backpack::federation {
namespace {

TEST(NodeDescription, SerialisesWithAbsoluteEndpoints) {
  NodeDescription node;
  node.name = "backpack.example";
  node.public_url = "https://backpack.example";
  node.software_version = "1.2.3";
  node.specs = {"ob-2.0"};
  node.endpoints = {{"accounts", "/api/v1/accounts"}, {"health", "/healthz"}};
  auto doc = nlohmann::json::parse(ToJson(node));
  EXPECT_EQ(doc["name"], "backpack.example");
  EXPECT_EQ(doc["url"], "https://backpack.example");
  EXPECT_EQ(doc["software"]["name"], "backpackd");
  EXPECT_EQ(doc["software"]["version"], "1.2.3");
  EXPECT_EQ(doc["specs"], nlohmann::json::array({"ob-2.0"}));
  EXPECT_EQ(doc["endpoints"]["accounts"], "https://backpack.example/api/v1/accounts");
  EXPECT_EQ(doc["endpoints"]["health"], "https://backpack.example/healthz");
}

TEST(NodeDescription, EmptyListsStayJsonArraysAndObjects) {
  auto doc = nlohmann::json::parse(ToJson(NodeDescription{}));
  EXPECT_TRUE(doc["specs"].is_array());
  EXPECT_TRUE(doc["endpoints"].is_object());
  EXPECT_TRUE(doc["federation"]["capabilities"].is_array());
  EXPECT_TRUE(doc["federation"]["peers"].is_array());
}

TEST(NodeDescription, ListsCapabilitiesAndPeers) {
  NodeDescription node;
  node.name = "a.example";
  node.public_url = "https://a.example";
  node.capabilities = {"peer/1"};
  node.peers = {{"b.example", "https://b.example", {"peer/1", "changes/1"}},
                {"127.0.0.1:8081", "http://127.0.0.1:8081", {}}};
  auto doc = nlohmann::json::parse(ToJson(node));
  EXPECT_EQ(doc["federation"]["capabilities"], nlohmann::json::array({"peer/1"}));
  ASSERT_EQ(doc["federation"]["peers"].size(), 2u);
  EXPECT_EQ(doc["federation"]["peers"][0]["name"], "b.example");
  EXPECT_EQ(doc["federation"]["peers"][0]["url"], "https://b.example");
  EXPECT_EQ(doc["federation"]["peers"][0]["capabilities"], nlohmann::json::array({"peer/1", "changes/1"}));
  EXPECT_EQ(doc["federation"]["peers"][1]["name"], "127.0.0.1:8081");
  EXPECT_TRUE(doc["federation"]["peers"][1]["capabilities"].is_array());
}

}  // namespace
}  // namespace backpack::federation
