#include "federation/node_keys.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "protocol/did.h"
#include "protocol/jws.h"

namespace backpack::federation {
namespace {

using nlohmann::json;

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/node_keys_test.XXXXXX";
    path_ = ::mkdtemp(pattern);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

mode_t ModeOf(const std::string& path) {
  struct stat info {};
  EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
  return info.st_mode & 07777;
}

std::string Sign(const NodeKey& key, std::string_view message) {
  auto signature = protocol::SignEd25519(key.key, message);
  EXPECT_TRUE(signature.ok());
  return signature.ok() ? *signature : std::string();
}

TEST(NodeKeys, KeysDirectoryIsUnderTheDataDir) {
  EXPECT_EQ(KeysDirectory("/var/lib/backpackd"), "/var/lib/backpackd/federation/keys");
  EXPECT_EQ(KeysDirectory("/var/lib/backpackd/"), "/var/lib/backpackd/federation/keys");
}

TEST(NodeKeys, CreatesTheFirstKeyWithPrivateModes) {
  TempDir tmp;
  const std::string dir = KeysDirectory(tmp.path());
  auto keys = NodeKeys::LoadOrCreate(dir, 1000);
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  ASSERT_EQ(keys->keys().size(), 1u);
  EXPECT_EQ(keys->current().id, "k1");
  EXPECT_EQ(keys->current().created, 1000);
  EXPECT_FALSE(keys->current().retired.has_value());
  EXPECT_EQ(keys->current().key.type(), protocol::KeyType::kEd25519);

  EXPECT_EQ(ModeOf(dir), 0700u);
  EXPECT_EQ(ModeOf(dir + "/k1.json"), 0600u);
  EXPECT_FALSE(std::filesystem::exists(dir + "/k1.json.tmp"));
  const json file = json::parse(Read(dir + "/k1.json"));
  EXPECT_EQ(file["id"], "k1");
  EXPECT_EQ(file["type"], "Ed25519");
  EXPECT_EQ(file["created"], 1000);
  EXPECT_TRUE(file["retired"].is_null());
  EXPECT_TRUE(file["pkcs8"].is_string());
  EXPECT_EQ(file["pkcs8"].get<std::string>().find_first_of("+/="), std::string::npos);  // base64url
}

TEST(NodeKeys, LoadingAgainGivesTheSameKey) {
  TempDir tmp;
  const std::string dir = KeysDirectory(tmp.path());
  auto first = NodeKeys::LoadOrCreate(dir, 1000);
  ASSERT_TRUE(first.ok());
  auto second = NodeKeys::LoadOrCreate(dir, 5000);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  ASSERT_EQ(second->keys().size(), 1u);
  EXPECT_EQ(second->current().id, "k1");
  EXPECT_EQ(second->current().created, 1000);
  EXPECT_EQ(second->current().key.public_key().ToJwk(), first->current().key.public_key().ToJwk());
  // Same private key: the deterministic Ed25519 signatures agree.
  EXPECT_EQ(Sign(second->current(), "m"), Sign(first->current(), "m"));
}

TEST(NodeKeys, RotateAddsANewKeyAndRetiresTheOldOne) {
  TempDir tmp;
  const std::string dir = KeysDirectory(tmp.path());
  auto keys = NodeKeys::LoadOrCreate(dir, 1000);
  ASSERT_TRUE(keys.ok());
  const std::string k1_jwk = keys->current().key.public_key().ToJwk();
  auto rotated = keys->Rotate(2000);
  ASSERT_TRUE(rotated.ok()) << rotated.status().ToString();
  EXPECT_EQ(*rotated, "k2");
  EXPECT_EQ(keys->current().id, "k2");
  ASSERT_EQ(keys->keys().size(), 2u);
  EXPECT_EQ(keys->keys()[1].id, "k1");
  EXPECT_EQ(keys->keys()[1].retired, 2000);
  EXPECT_NE(keys->current().key.public_key().ToJwk(), k1_jwk);

  EXPECT_EQ(ModeOf(dir + "/k2.json"), 0600u);
  EXPECT_EQ(ModeOf(dir + "/k1.json"), 0600u);

  // What another process (the node at its next start) reads.
  auto reloaded = NodeKeys::LoadOrCreate(dir, 3000);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString();
  ASSERT_EQ(reloaded->keys().size(), 2u);
  EXPECT_EQ(reloaded->current().id, "k2");
  EXPECT_FALSE(reloaded->current().retired.has_value());
  EXPECT_EQ(reloaded->keys()[1].id, "k1");
  EXPECT_EQ(reloaded->keys()[1].retired, 2000);
  EXPECT_EQ(reloaded->keys()[1].key.public_key().ToJwk(), k1_jwk);

  auto third = reloaded->Rotate(4000);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(*third, "k3");
  auto again = NodeKeys::LoadOrCreate(dir, 5000);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->keys().size(), 3u);  // old keys are kept
  EXPECT_EQ(again->current().id, "k3");
  EXPECT_EQ(again->keys()[1].retired, 4000);
  EXPECT_EQ(again->keys()[2].retired, 2000);
}

TEST(NodeKeys, KeysDocumentListsEveryKeyNewestFirst) {
  TempDir tmp;
  auto keys = NodeKeys::LoadOrCreate(KeysDirectory(tmp.path()), 1000);
  ASSERT_TRUE(keys.ok());
  ASSERT_TRUE(keys->Rotate(2000).ok());
  const json doc = json::parse(keys->KeysDocument("a.example"));
  EXPECT_EQ(doc["node"], "a.example");
  ASSERT_EQ(doc["keys"].size(), 2u);
  EXPECT_EQ(doc["keys"][0]["id"], "a.example#k2");
  EXPECT_TRUE(doc["keys"][0]["retired"].is_null());
  EXPECT_EQ(doc["keys"][0]["created"], 2000);
  EXPECT_EQ(doc["keys"][1]["id"], "a.example#k1");
  EXPECT_EQ(doc["keys"][1]["retired"], 2000);
  EXPECT_TRUE(doc["keys"][0]["multikey"].get<std::string>().starts_with("z6Mk"));
  EXPECT_EQ(doc["keys"][0].size(), 4u) << "no private material: " << doc.dump();

  auto parsed = ParseKeysDocument(doc.dump(), "a.example");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[0].id, "a.example#k2");
  EXPECT_EQ((*parsed)[0].key.ToJwk(), keys->current().key.public_key().ToJwk());
  EXPECT_FALSE((*parsed)[0].retired.has_value());
  EXPECT_EQ((*parsed)[1].retired, 2000);
}

TEST(NodeKeys, AnInterruptedRotationLeavesTheNewestKeyCurrent) {
  TempDir tmp;
  const std::string dir = KeysDirectory(tmp.path());
  {
    auto keys = NodeKeys::LoadOrCreate(dir, 1000);
    ASSERT_TRUE(keys.ok());
    ASSERT_TRUE(keys->Rotate(2000).ok());
  }
  // Undo the second write of the rotation: k1 unretired again.
  json k1 = json::parse(Read(dir + "/k1.json"));
  k1["retired"] = nullptr;
  std::ofstream(dir + "/k1.json") << k1.dump();
  auto keys = NodeKeys::LoadOrCreate(dir, 3000);
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_EQ(keys->current().id, "k2");
  EXPECT_EQ(keys->keys()[1].id, "k1");
  EXPECT_EQ(keys->keys()[1].retired, 2000);  // when k2 was created
}

TEST(NodeKeys, RefusesDamagedKeyFiles) {
  TempDir tmp;
  const std::string dir = KeysDirectory(tmp.path());
  ASSERT_TRUE(NodeKeys::LoadOrCreate(dir, 1000).ok());
  const std::string good = Read(dir + "/k1.json");

  std::ofstream(dir + "/k1.json") << "not json";
  auto loaded = NodeKeys::LoadOrCreate(dir, 1000);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(loaded.status().message().find("k1.json"), std::string::npos) << loaded.status().message();

  json renamed = json::parse(good);
  renamed["id"] = "k7";
  std::ofstream(dir + "/k1.json") << renamed.dump();
  EXPECT_EQ(NodeKeys::LoadOrCreate(dir, 1000).status().code(), StatusCode::kDataLoss);

  json broken = json::parse(good);
  broken["pkcs8"] = "AAAA";
  std::ofstream(dir + "/k1.json") << broken.dump();
  EXPECT_EQ(NodeKeys::LoadOrCreate(dir, 1000).status().code(), StatusCode::kDataLoss);

  // Files that are not keys are left alone.
  std::ofstream(dir + "/k1.json") << good;
  std::ofstream(dir + "/notes.txt") << "x";
  std::ofstream(dir + "/k2.json.tmp") << "half written";
  auto keys = NodeKeys::LoadOrCreate(dir, 1000);
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_EQ(keys->keys().size(), 1u);
}

TEST(ParseKeysDocument, RefusesWhatIsNotTheNodesKeys) {
  TempDir tmp;
  auto keys = NodeKeys::LoadOrCreate(KeysDirectory(tmp.path()), 1000);
  ASSERT_TRUE(keys.ok());
  const json good = json::parse(keys->KeysDocument("a.example"));
  EXPECT_TRUE(ParseKeysDocument(good.dump(), "a.example").ok());
  EXPECT_FALSE(ParseKeysDocument(good.dump(), "b.example").ok());  // names another node

  json other_prefix = good;
  other_prefix["keys"][0]["id"] = "b.example#k1";
  EXPECT_FALSE(ParseKeysDocument(other_prefix.dump(), "a.example").ok());
  json twice = good;
  twice["keys"].push_back(good["keys"][0]);
  EXPECT_FALSE(ParseKeysDocument(twice.dump(), "a.example").ok());
  json bad_key = good;
  bad_key["keys"][0]["multikey"] = "zNotAKey";
  EXPECT_FALSE(ParseKeysDocument(bad_key.dump(), "a.example").ok());
  json bad_retired = good;
  bad_retired["keys"][0]["retired"] = "yesterday";
  EXPECT_FALSE(ParseKeysDocument(bad_retired.dump(), "a.example").ok());
  json too_many = good;
  for (size_t i = 0; i < kMaxNodeKeys; ++i) {
    json k = good["keys"][0];
    k["id"] = "a.example#x" + std::to_string(i);
    too_many["keys"].push_back(k);
  }
  EXPECT_FALSE(ParseKeysDocument(too_many.dump(), "a.example").ok());
  EXPECT_FALSE(ParseKeysDocument("[]", "a.example").ok());
}

}  // namespace
}  // namespace backpack::federation
