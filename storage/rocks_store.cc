// The RocksDB Store: one column family per Family, every write WAL-synced.

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/statistics.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <filesystem>
#include <system_error>

#include "storage/store.h"

namespace backpack::storage {

std::string_view FamilyName(Family family) {
  switch (family) {
    case Family::kMeta:
      return "meta";
    case Family::kAccounts:
      return "accounts";
    case Family::kEmailIndex:
      return "email_index";
    case Family::kSessions:
      return "sessions";
    case Family::kAccountTokens:
      return "account_tokens";
    case Family::kMailTokens:
      return "mail_tokens";
    case Family::kBadges:
      return "badges";
    case Family::kBadgeBlobs:
      return "badge_blobs";
    case Family::kBadgeKeys:
      return "badge_keys";
    case Family::kRecheckQueue:
      return "recheck_queue";
    case Family::kCollections:
      return "collections";
    case Family::kShareSlugs:
      return "share_slugs";
    case Family::kOAuthClients:
      return "oauth_clients";
    case Family::kOAuthCodes:
      return "oauth_codes";
    case Family::kOAuthTokens:
      return "oauth_tokens";
    case Family::kOAuthGrants:
      return "oauth_grants";
    case Family::kOAuthGrantTokens:
      return "oauth_grant_tokens";
    case Family::kFedIdentity:
      return "fed_identity";
    case Family::kFedRecords:
      return "fed_records";
    case Family::kChangeLog:
      return "change_log";
    case Family::kDirectory:
      return "directory";
    case Family::kPeers:
      return "peers";
  }
  return "unknown";
}

namespace {

constexpr size_t kFamilyCount = std::size(kAllFamilies);
constexpr std::string_view kSchemaVersionKey = "schema_version";

rocksdb::Slice ToSlice(std::string_view s) { return {s.data(), s.size()}; }

// Corruption means the bytes on disk are wrong: never retry. InvalidArgument
// and NotSupported mean this code misused RocksDB. Everything else is caused
// by the environment (I/O errors, a full disk, shutdown) and worth a retry.
Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string message = std::string(what) + ": " + s.ToString();
  if (s.IsCorruption()) return DataLoss(std::move(message));
  if (s.IsInvalidArgument() || s.IsNotSupported()) return Internal(std::move(message));
  return Unavailable(std::move(message));
}

// RocksDB reports a held LOCK file as a plain IOError; these are the texts of
// rocksdb 7.x env/fs_posix.cc for "held by this process" and "by another".
bool IsLockHeld(const rocksdb::Status& s) {
  if (!s.IsIOError()) return false;
  std::string_view text = s.getState() == nullptr ? "" : s.getState();
  return text.find("lock hold by current process") != std::string_view::npos ||
         text.find("While lock file") != std::string_view::npos;
}

// The smallest key greater than every key starting with `prefix`; empty when
// there is none (prefix is all 0xff).
std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

class RocksStore final : public Store {
 public:
  RocksStore(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> handles,
             std::shared_ptr<rocksdb::Statistics> statistics)
      : db_(db), handles_(std::move(handles)), statistics_(std::move(statistics)) {
    for (rocksdb::ColumnFamilyHandle* handle : handles_) {
      for (Family family : kAllFamilies) {
        if (handle->GetName() == FamilyName(family))
          families_[static_cast<size_t>(family)] = handle;
      }
    }
  }

  ~RocksStore() override {
    for (rocksdb::ColumnFamilyHandle* handle : handles_) {
      // A failure here can only leak a handle at shutdown.
      FromRocks(db_->DestroyColumnFamilyHandle(handle), "destroy handle").IgnoreError();
    }
    // Every write was already synced; a failed close loses nothing acknowledged.
    FromRocks(db_->Close(), "close").IgnoreError();
  }

  Result<std::optional<std::string>> Get(Family family, std::string_view key) override {
    rocksdb::ColumnFamilyHandle* handle = Handle(family);
    if (handle == nullptr) return UnknownFamily(family);
    rocksdb::PinnableSlice value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handle, ToSlice(key), &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return FromRocks(s, "get");
    return std::optional<std::string>(value.ToString());
  }

  Status Write(const WriteBatch& batch) override {
    if (batch.empty()) return Status::Ok();
    rocksdb::WriteBatch rocks_batch;
    for (const WriteBatch::Op& op : batch.ops()) {
      rocksdb::ColumnFamilyHandle* handle = Handle(op.family);
      if (handle == nullptr) return UnknownFamily(op.family);
      rocksdb::Status s;
      switch (op.type) {
        case WriteBatch::OpType::kPut:
          s = rocks_batch.Put(handle, op.key, op.value);
          break;
        case WriteBatch::OpType::kDelete:
          s = rocks_batch.Delete(handle, op.key);
          break;
        case WriteBatch::OpType::kAdd:
          s = rocks_batch.Merge(handle, op.key, op.value);
          break;
      }
      if (!s.ok()) return FromRocks(s, "batch");
    }
    // sync=true: RocksDB's write-group leader appends every queued batch to
    // the WAL and fsyncs once for all of them, so concurrent writers share
    // one sync and each returns only once its batch is durable.
    rocksdb::WriteOptions options;
    options.sync = true;
    BP_RETURN_IF_ERROR(FromRocks(db_->Write(options, &rocks_batch), "write"));
    writes_.fetch_add(1, std::memory_order_relaxed);
    return Status::Ok();
  }

  Status Scan(Family family, std::string_view prefix, const Visitor& visit, size_t limit) override {
    return ScanFrom(family, prefix, prefix, visit, limit);
  }

  Status ScanFrom(Family family, std::string_view prefix, std::string_view start, const Visitor& visit,
                  size_t limit) override {
    rocksdb::ColumnFamilyHandle* handle = Handle(family);
    if (handle == nullptr) return UnknownFamily(family);
    // The upper bound stops the iterator at the prefix's end instead of
    // stepping over whatever (tombstones included) follows it.
    std::string end = PrefixEnd(prefix);
    rocksdb::Slice end_slice(end);
    rocksdb::ReadOptions options;
    if (!end.empty()) options.iterate_upper_bound = &end_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, handle));
    size_t visits = 0;
    const std::string_view from = start < prefix ? prefix : start;
    for (it->Seek(ToSlice(from)); it->Valid(); it->Next()) {
      std::string_view key = it->key().ToStringView();
      if (!key.starts_with(prefix)) break;
      if (!visit(key, it->value().ToStringView())) break;
      if (++visits == limit) break;
    }
    return FromRocks(it->status(), "scan");
  }

  StoreStats Stats() override {
    StoreStats stats;
    for (rocksdb::ColumnFamilyHandle* handle : families_) {
      stats.estimated_keys += IntProperty(handle, rocksdb::DB::Properties::kEstimateNumKeys);
      stats.live_data_bytes += IntProperty(handle, rocksdb::DB::Properties::kLiveSstFilesSize);
      stats.memtable_bytes += IntProperty(handle, rocksdb::DB::Properties::kCurSizeAllMemTables);
    }
    stats.writes = writes_.load(std::memory_order_relaxed);
    stats.synced_writes = statistics_->getTickerCount(rocksdb::WAL_FILE_SYNCED);
    return stats;
  }

  Status Flush() override {
    rocksdb::FlushOptions options;
    options.wait = true;
    BP_RETURN_IF_ERROR(FromRocks(db_->Flush(options, handles_), "flush"));
    return FromRocks(db_->FlushWAL(/*sync=*/true), "flush wal");
  }

 private:
  rocksdb::ColumnFamilyHandle* Handle(Family family) const {
    auto index = static_cast<size_t>(family);
    return index < kFamilyCount ? families_[index] : nullptr;
  }
  static Status UnknownFamily(Family family) {
    return InvalidArgument("unknown storage family " + std::to_string(static_cast<int>(family)));
  }
  uint64_t IntProperty(rocksdb::ColumnFamilyHandle* handle, const std::string& name) {
    uint64_t value = 0;
    return db_->GetIntProperty(handle, name, &value) ? value : 0;
  }

  std::unique_ptr<rocksdb::DB> db_;
  // Every family open in the DB: ours, "default", and any a newer binary
  // created (RocksDB refuses to open a DB without all of its families).
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* families_[kFamilyCount] = {};
  std::shared_ptr<rocksdb::Statistics> statistics_;
  std::atomic<uint64_t> writes_{0};
};

// WriteBatch::Add: values are decimal int64 counters; a merge adds the
// operand to the existing value (absent = 0). A value that is not a number
// counts as 0 rather than failing reads forever; it cannot arise from our
// own writes.
class AddOperator final : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& operand,
             std::string* new_value, rocksdb::Logger*) const override {
    const int64_t sum = Parse(existing) + Parse(&operand);
    *new_value = std::to_string(sum);
    return true;
  }
  const char* Name() const override { return "backpack.add"; }

 private:
  static int64_t Parse(const rocksdb::Slice* s) {
    if (s == nullptr) return 0;
    int64_t v = 0;
    std::from_chars(s->data(), s->data() + s->size(), v);
    return v;
  }
};

Result<std::unique_ptr<Store>> OpenDb(const StoreOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) return Unavailable("cannot create data directory " + options.path + ": " + ec.message());

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  rocksdb::ColumnFamilyOptions family_options;
  family_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  family_options.merge_operator = std::make_shared<AddOperator>();

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.statistics = rocksdb::CreateDBStatistics();

  std::vector<std::string> names = {rocksdb::kDefaultColumnFamilyName};
  for (Family family : kAllFamilies) names.emplace_back(FamilyName(family));
  std::vector<std::string> existing;
  // Fails on a new directory, which then simply has no families yet.
  if (rocksdb::DB::ListColumnFamilies(db_options, options.path, &existing).ok()) {
    for (std::string& name : existing) {
      if (std::find(names.begin(), names.end(), name) == names.end())
        names.push_back(std::move(name));
    }
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : names) descriptors.emplace_back(name, family_options);

  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s = rocksdb::DB::Open(db_options, options.path, descriptors, &handles, &db);
  if (IsLockHeld(s)) {
    return FailedPrecondition("data directory " + options.path + " is in use by another process (" +
                              s.ToString() + ")");
  }
  if (!s.ok()) return FromRocks(s, "open " + options.path);
  return std::unique_ptr<Store>(
      std::make_unique<RocksStore>(db, std::move(handles), db_options.statistics));
}

Result<std::optional<uint32_t>> ReadVersion(Store& store) {
  Result<std::optional<std::string>> text = store.Get(Family::kMeta, kSchemaVersionKey);
  if (!text.ok()) return text.status();
  if (!text->has_value()) return std::optional<uint32_t>();
  const std::string& digits = **text;
  uint32_t version = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), version);
  if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty()) {
    return DataLoss("stored schema_version is not a decimal number: '" + digits + "'");
  }
  return std::optional<uint32_t>(version);
}

// Its own synced write, after the migration's writes: see Migration.
Status WriteVersion(Store& store, uint32_t version) {
  WriteBatch batch;
  batch.Put(Family::kMeta, kSchemaVersionKey, std::to_string(version));
  return store.Write(batch);
}

}  // namespace

Result<uint32_t> ReadSchemaVersion(Store& store) {
  Result<std::optional<uint32_t>> version = ReadVersion(store);
  if (!version.ok()) return version.status();
  return version->value_or(0);
}

Result<std::unique_ptr<Store>> OpenRocksStore(const StoreOptions& options) {
  Result<std::unique_ptr<Store>> store = OpenDb(options);
  if (!store.ok()) return store;
  Result<std::optional<uint32_t>> stored = ReadVersion(**store);
  if (!stored.ok()) return stored.status();
  const uint32_t target = options.schema_version;
  if (!stored->has_value()) {  // a brand-new store
    BP_RETURN_IF_ERROR(WriteVersion(**store, target));
    return store;
  }
  uint32_t version = **stored;
  if (version > target) {
    return FailedPrecondition("data directory " + options.path + " written by a newer schema (" +
                              std::to_string(version) + " > " + std::to_string(target) + ")");
  }
  // The whole chain is checked before the first step runs, so a missing step
  // never leaves the data half-migrated.
  std::vector<const Migration*> steps;
  for (uint32_t from = version; from < target; ++from) {
    auto it = std::find_if(options.migrations.begin(), options.migrations.end(),
                           [from](const Migration& m) { return m.from == from && m.apply; });
    if (it == options.migrations.end()) {
      return FailedPrecondition("no migration from schema version " + std::to_string(from) +
                                " to " + std::to_string(from + 1) + " (data is at " +
                                std::to_string(version) + ", this binary writes " +
                                std::to_string(target) + ")");
    }
    steps.push_back(&*it);
  }
  for (const Migration* step : steps) {
    Status s = step->apply(**store);
    if (!s.ok()) {
      return Status(s.code(), "migration from schema version " + std::to_string(step->from) +
                                  " failed: " + s.message());
    }
    BP_RETURN_IF_ERROR(WriteVersion(**store, step->from + 1));
  }
  return store;
}

}  // namespace backpack::storage
