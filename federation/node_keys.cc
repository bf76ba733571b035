#include "federation/node_keys.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <utility>

#include <nlohmann/json.hpp>

#include "protocol/did.h"
#include "protocol/encoding.h"

namespace backpack::federation {
namespace {

using nlohmann::json;

constexpr size_t kMaxKeyFileBytes = 16 * 1024;

std::string ErrnoText(int error) { return std::strerror(error); }

// Closes a descriptor on scope exit; a failing close of a descriptor that
// was only read, or already fsynced, loses nothing.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// The key number of a file name "k<N>.json", or 0.
uint64_t KeyNumber(std::string_view file_name) {
  if (!file_name.starts_with("k") || !file_name.ends_with(".json")) return 0;
  const std::string_view digits = file_name.substr(1, file_name.size() - 6);
  if (digits.empty() || digits.size() > 9 || digits[0] == '0') return 0;
  uint64_t n = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (error != std::errc() || end != digits.data() + digits.size()) return 0;
  return n;
}

uint64_t KeyNumberOfId(std::string_view id) { return KeyNumber(std::string(id) + ".json"); }

Status MakeDirectory(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Unavailable("cannot create " + dir + ": " + ec.message());
  if (::chmod(dir.c_str(), 0700) != 0) return Unavailable("cannot chmod 0700 " + dir + ": " + ErrnoText(errno));
  return Status::Ok();
}

Status SyncDirectory(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return Unavailable("cannot open " + dir + ": " + ErrnoText(errno));
  if (::fsync(fd.get()) != 0) return Unavailable("cannot fsync " + dir + ": " + ErrnoText(errno));
  return Status::Ok();
}

// Writes `content` to dir/name as a new 0600 file: a temporary file,
// fsync, rename, fsync of the directory.
Status WriteFileDurably(const std::string& dir, const std::string& name, std::string_view content) {
  const std::string path = dir + "/" + name;
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());  // a leftover from a crash; absent is fine
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) return Unavailable("cannot create " + tmp + ": " + ErrnoText(errno));
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd.get(), content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Unavailable("cannot write " + tmp + ": " + ErrnoText(errno));
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return Unavailable("cannot fsync " + tmp + ": " + ErrnoText(errno));
  if (::close(fd.release()) != 0) return Unavailable("cannot close " + tmp + ": " + ErrnoText(errno));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Unavailable("cannot rename " + tmp + " to " + path + ": " + ErrnoText(errno));
  }
  return SyncDirectory(dir);
}

Result<std::string> ReadSmallFile(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) return Unavailable("cannot open " + path + ": " + ErrnoText(errno));
  std::string out;
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Unavailable("cannot read " + path + ": " + ErrnoText(errno));
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
    if (out.size() > kMaxKeyFileBytes) return DataLoss(path + " is larger than a key file can be");
  }
  return out;
}

// An exclusive lock on <dir>/.lock for the life of the object, so two
// processes (the node and backpackctl) never create or rotate at once.
class DirectoryLock {
 public:
  static Result<DirectoryLock> Take(const std::string& dir) {
    const std::string path = dir + "/.lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return Unavailable("cannot open " + path + ": " + ErrnoText(errno));
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      return Unavailable("cannot lock " + path + ": " + ErrnoText(error));
    }
    return DirectoryLock(fd);
  }
  DirectoryLock(DirectoryLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  DirectoryLock& operator=(DirectoryLock&&) = delete;
  ~DirectoryLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }

 private:
  explicit DirectoryLock(int fd) : fd_(fd) {}
  int fd_;
};

// PKCS#8 DER <-> the PEM form PrivateKey reads and writes.
std::optional<std::string> PemToDer(std::string_view pem) {
  constexpr std::string_view kBegin = "-----BEGIN PRIVATE KEY-----";
  constexpr std::string_view kEnd = "-----END PRIVATE KEY-----";
  const size_t begin = pem.find(kBegin);
  const size_t end = pem.find(kEnd);
  if (begin == std::string_view::npos || end == std::string_view::npos || end < begin) return std::nullopt;
  return protocol::Base64Decode(pem.substr(begin + kBegin.size(), end - begin - kBegin.size()));
}

std::string DerToPem(std::string_view der) {
  const std::string base64 = protocol::Base64Encode(der);
  std::string pem = "-----BEGIN PRIVATE KEY-----\n";
  for (size_t i = 0; i < base64.size(); i += 64) {
    pem += base64.substr(i, 64);
    pem += '\n';
  }
  pem += "-----END PRIVATE KEY-----\n";
  return pem;
}

Result<std::string> KeyFileText(const NodeKey& key) {
  const std::optional<std::string> der = PemToDer(key.key.ToPem());
  if (!der) return Internal("cannot encode the key " + key.id + " as PKCS#8");
  json doc = {{"id", key.id},
              {"type", "Ed25519"},
              {"pkcs8", protocol::Base64UrlEncode(*der)},
              {"created", key.created},
              {"retired", key.retired ? json(*key.retired) : json(nullptr)}};
  return doc.dump(2) + "\n";
}

Result<NodeKey> ParseKeyFile(const std::string& path, std::string_view expected_id, std::string_view text) {
  const auto bad = [&path](std::string_view why) { return DataLoss(path + ": " + std::string(why)); };
  const json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return bad("not a JSON object");
  const auto id = doc.find("id");
  if (id == doc.end() || !id->is_string() || *id != expected_id) return bad("its id is not " + std::string(expected_id));
  const auto type = doc.find("type");
  if (type == doc.end() || *type != "Ed25519") return bad("its type is not Ed25519");
  const auto created = doc.find("created");
  if (created == doc.end() || !created->is_number_integer() || created->get<int64_t>() < 0) {
    return bad("created is not a non-negative integer");
  }
  const auto retired = doc.find("retired");
  if (retired != doc.end() && !retired->is_null() && !retired->is_number_integer()) {
    return bad("retired is neither null nor an integer");
  }
  const auto pkcs8 = doc.find("pkcs8");
  if (pkcs8 == doc.end() || !pkcs8->is_string()) return bad("pkcs8 is missing");
  const std::optional<std::string> der = protocol::Base64UrlDecode(pkcs8->get<std::string>());
  if (!der) return bad("pkcs8 is not base64url");
  auto key = protocol::PrivateKey::FromPem(DerToPem(*der));
  if (!key.ok()) return bad("pkcs8 is not a private key: " + key.status().message());
  if (key->type() != protocol::KeyType::kEd25519) return bad("the key is not Ed25519");
  NodeKey out{std::string(expected_id), std::move(*key), created->get<int64_t>(), std::nullopt};
  if (retired != doc.end() && retired->is_number_integer()) out.retired = retired->get<int64_t>();
  return out;
}

// Newest first: by creation time, then by key number.
void SortNewestFirst(std::vector<NodeKey>& keys) {
  std::sort(keys.begin(), keys.end(), [](const NodeKey& a, const NodeKey& b) {
    if (a.created != b.created) return a.created > b.created;
    return KeyNumberOfId(a.id) > KeyNumberOfId(b.id);
  });
}

Result<NodeKey> NewKey(uint64_t number, int64_t now) {
  auto key = protocol::PrivateKey::Generate(protocol::KeyType::kEd25519);
  if (!key.ok()) return key.status();
  return NodeKey{"k" + std::to_string(number), std::move(*key), now, std::nullopt};
}

}  // namespace

std::string KeysDirectory(std::string_view data_dir) {
  std::string dir(data_dir);
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir + "/federation/keys";
}

Result<NodeKeys> NodeKeys::LoadOrCreate(const std::string& dir, int64_t now) {
  const std::string parent = std::filesystem::path(dir).parent_path().string();
  if (!parent.empty()) BP_RETURN_IF_ERROR(MakeDirectory(parent));
  BP_RETURN_IF_ERROR(MakeDirectory(dir));
  auto lock = DirectoryLock::Take(dir);
  if (!lock.ok()) return lock.status();

  NodeKeys out;
  out.dir_ = dir;
  DIR* listing = ::opendir(dir.c_str());
  if (listing == nullptr) return Unavailable("cannot list " + dir + ": " + ErrnoText(errno));
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(listing)) {
    const std::string name = entry->d_name;
    if (KeyNumber(name) != 0) names.push_back(name);
  }
  const int list_error = errno;
  ::closedir(listing);
  if (list_error != 0) return Unavailable("cannot list " + dir + ": " + ErrnoText(list_error));
  if (names.size() > kMaxNodeKeys) {
    return DataLoss(dir + " holds " + std::to_string(names.size()) + " keys; at most " +
                    std::to_string(kMaxNodeKeys) + " are kept");
  }
  for (const std::string& name : names) {
    const std::string path = dir + "/" + name;
    struct stat info {};
    if (::lstat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) return DataLoss(path + " is not a regular file");
    auto text = ReadSmallFile(path);
    if (!text.ok()) return text.status();
    auto key = ParseKeyFile(path, name.substr(0, name.size() - 5), *text);
    if (!key.ok()) return key.status();
    out.keys_.push_back(std::move(*key));
  }

  if (out.keys_.empty()) {
    auto first = NewKey(1, now);
    if (!first.ok()) return first.status();
    auto text = KeyFileText(*first);
    if (!text.ok()) return text.status();
    BP_RETURN_IF_ERROR(WriteFileDurably(dir, first->id + ".json", *text));
    out.keys_.push_back(std::move(*first));
  }
  SortNewestFirst(out.keys_);

  // The newest unretired key signs; an older unretired one (a rotation cut
  // short by a crash) counts as retired when the newer one was created.
  const auto current = std::find_if(out.keys_.begin(), out.keys_.end(),
                                    [](const NodeKey& k) { return !k.retired.has_value(); });
  if (current == out.keys_.end()) {
    return DataLoss(dir + ": every key is retired; run `backpackctl node rotate-key` to add one");
  }
  for (auto it = current + 1; it != out.keys_.end(); ++it) {
    if (!it->retired) it->retired = current->created;
  }
  // current() is keys_.front(): move the signing key first, keeping the rest in order.
  std::rotate(out.keys_.begin(), current, current + 1);
  return out;
}

Result<std::string> NodeKeys::Rotate(int64_t now) {
  auto lock = DirectoryLock::Take(dir_);
  if (!lock.ok()) return lock.status();
  if (keys_.size() >= kMaxNodeKeys) {
    return FailedPrecondition("the node already has " + std::to_string(keys_.size()) + " keys, the most it keeps");
  }
  uint64_t highest = 0;
  for (const NodeKey& key : keys_) highest = std::max(highest, KeyNumberOfId(key.id));
  // Another process may have added files since this object was loaded.
  DIR* listing = ::opendir(dir_.c_str());
  if (listing != nullptr) {
    while (const dirent* entry = ::readdir(listing)) highest = std::max(highest, KeyNumber(entry->d_name));
    ::closedir(listing);
  }
  auto fresh = NewKey(highest + 1, now);
  if (!fresh.ok()) return fresh.status();
  auto fresh_text = KeyFileText(*fresh);
  if (!fresh_text.ok()) return fresh_text.status();
  BP_RETURN_IF_ERROR(WriteFileDurably(dir_, fresh->id + ".json", *fresh_text));

  NodeKey retiring = keys_.front();
  retiring.retired = now;
  auto retiring_text = KeyFileText(retiring);
  if (!retiring_text.ok()) return retiring_text.status();
  BP_RETURN_IF_ERROR(WriteFileDurably(dir_, retiring.id + ".json", *retiring_text));

  keys_.front().retired = now;
  const std::string id = fresh->id;
  keys_.insert(keys_.begin(), std::move(*fresh));
  return id;
}

std::string NodeKeys::KeysDocument(std::string_view node_name) const {
  json keys = json::array();
  for (const NodeKey& key : keys_) {
    auto multikey = protocol::Ed25519Multikey(key.key.public_key());
    if (!multikey.ok()) continue;  // every loaded key is Ed25519
    keys.push_back({{"id", std::string(node_name) + "#" + key.id},
                    {"multikey", *multikey},
                    {"created", key.created},
                    {"retired", key.retired ? json(*key.retired) : json(nullptr)}});
  }
  return json{{"node", node_name}, {"keys", std::move(keys)}}.dump();
}

Result<std::vector<PublishedKey>> ParseKeysDocument(std::string_view json_text, std::string_view node) {
  const std::string who = "the keys document of " + std::string(node);
  const json doc = json::parse(json_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return InvalidArgument(who + " is not a JSON object");
  const auto name = doc.find("node");
  if (name == doc.end() || !name->is_string() || *name != node) {
    return InvalidArgument(who + " names another node");
  }
  const auto keys = doc.find("keys");
  if (keys == doc.end() || !keys->is_array()) return InvalidArgument(who + " has no keys array");
  if (keys->size() > kMaxNodeKeys) {
    return InvalidArgument(who + " lists more than " + std::to_string(kMaxNodeKeys) + " keys");
  }
  const std::string prefix = std::string(node) + "#";
  std::vector<PublishedKey> out;
  for (const json& entry : *keys) {
    if (!entry.is_object()) return InvalidArgument(who + " has a key that is not an object");
    const auto id = entry.find("id");
    const auto multikey = entry.find("multikey");
    const auto created = entry.find("created");
    const auto retired = entry.find("retired");
    if (id == entry.end() || !id->is_string() || !id->get<std::string>().starts_with(prefix) ||
        id->get<std::string>().size() == prefix.size() || id->get<std::string>().size() > 512) {
      return InvalidArgument(who + " has a key whose id is not \"" + prefix + "<key id>\"");
    }
    const std::string key_id = id->get<std::string>();
    for (const PublishedKey& seen : out) {
      if (seen.id == key_id) return InvalidArgument(who + " lists " + key_id + " twice");
    }
    if (multikey == entry.end() || !multikey->is_string()) return InvalidArgument(who + ": " + key_id + " has no multikey");
    auto key = protocol::PublicKeyFromMultikey(multikey->get<std::string>());
    if (!key.ok()) return InvalidArgument(who + ": " + key_id + ": " + key.status().message());
    if (created == entry.end() || !created->is_number_integer() || created->get<int64_t>() < 0) {
      return InvalidArgument(who + ": " + key_id + " has no valid created time");
    }
    PublishedKey published{key_id, std::move(*key), created->get<int64_t>(), std::nullopt};
    if (retired != entry.end() && !retired->is_null()) {
      if (!retired->is_number_integer()) return InvalidArgument(who + ": " + key_id + " has an invalid retired time");
      published.retired = retired->get<int64_t>();
    }
    out.push_back(std::move(published));
  }
  return out;
}

}  // namespace backpack::federation
