#include "storage/store.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/storage/crash_writer.h"

namespace backpack::storage {
namespace {

using Entries = std::vector<std::pair<std::string, std::string>>;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/backpack_storage_test_XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  StoreOptions Options(uint32_t schema_version = 1) const {
    StoreOptions options;
    options.path = dir_;
    options.block_cache_bytes = 8 << 20;
    options.schema_version = schema_version;
    return options;
  }

  // Null (with a test failure) when the open fails.
  static std::unique_ptr<Store> MustOpen(const StoreOptions& options) {
    Result<std::unique_ptr<Store>> store = OpenRocksStore(options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }
  std::unique_ptr<Store> MustOpen() const { return MustOpen(Options()); }

  static std::optional<std::string> MustGet(Store& store, Family family, std::string_view key) {
    Result<std::optional<std::string>> value = store.Get(family, key);
    EXPECT_TRUE(value.ok()) << value.status().ToString();
    return value.ok() ? *value : std::nullopt;
  }

  static Entries ScanAll(Store& store, Family family, std::string_view prefix, size_t limit = 0) {
    Entries out;
    Status s = store.Scan(
        family, prefix,
        [&](std::string_view k, std::string_view v) {
          out.emplace_back(k, v);
          return true;
        },
        limit);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  static void MustPut(Store& store, Family family, std::string_view key, std::string_view value) {
    WriteBatch batch;
    batch.Put(family, key, value);
    Status s = store.Write(batch);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }

  std::string dir_;
};

TEST(FamilyNameTest, NamesAreDistinct) {
  std::vector<std::string_view> names;
  for (Family f : kAllFamilies) names.push_back(FamilyName(f));
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end());
  EXPECT_EQ(FamilyName(Family::kAccounts), "accounts");
}

TEST_F(StoreTest, PutGetDeletePerFamily) {
  auto store = MustOpen();
  ASSERT_TRUE(store);
  EXPECT_EQ(MustGet(*store, Family::kAccounts, "a1"), std::nullopt);
  MustPut(*store, Family::kAccounts, "a1", "account");
  MustPut(*store, Family::kSessions, "a1", "session");
  EXPECT_EQ(MustGet(*store, Family::kAccounts, "a1"), "account");
  EXPECT_EQ(MustGet(*store, Family::kSessions, "a1"), "session");
  EXPECT_EQ(MustGet(*store, Family::kMailTokens, "a1"), std::nullopt);

  WriteBatch del;
  del.Delete(Family::kAccounts, "a1");
  ASSERT_TRUE(store->Write(del).ok());
  EXPECT_EQ(MustGet(*store, Family::kAccounts, "a1"), std::nullopt);
  EXPECT_EQ(MustGet(*store, Family::kSessions, "a1"), "session");
}

TEST_F(StoreTest, ValuesAreOpaqueBytes) {
  auto store = MustOpen();
  ASSERT_TRUE(store);
  const std::string key("k\0\xff", 3);
  const std::string garbage("{\"not json\0\xfe\xff", 14);
  MustPut(*store, Family::kAccounts, key, garbage);
  MustPut(*store, Family::kAccounts, "empty", "");
  EXPECT_EQ(MustGet(*store, Family::kAccounts, key), garbage);
  EXPECT_EQ(MustGet(*store, Family::kAccounts, "empty"), "");
}

TEST_F(StoreTest, BatchSpanningFamiliesAppliesInOrder) {
  auto store = MustOpen();
  ASSERT_TRUE(store);
  MustPut(*store, Family::kMailTokens, "t", "token");
  WriteBatch batch;
  batch.Put(Family::kAccounts, "acct", "v1");
  batch.Put(Family::kEmailIndex, "a@example.org", "acct");
  batch.Delete(Family::kMailTokens, "t");
  batch.Put(Family::kAccounts, "acct", "v2");  // later ops win
  ASSERT_TRUE(store->Write(batch).ok());
  EXPECT_EQ(MustGet(*store, Family::kAccounts, "acct"), "v2");
  EXPECT_EQ(MustGet(*store, Family::kEmailIndex, "a@example.org"), "acct");
  EXPECT_EQ(MustGet(*store, Family::kMailTokens, "t"), std::nullopt);
}

TEST_F(StoreTest, EmptyBatchIsOk) {
  auto store = MustOpen();
  ASSERT_TRUE(store);
  const uint64_t writes = store->Stats().writes;
  EXPECT_TRUE(store->Write(WriteBatch()).ok());
  EXPECT_EQ(store->Stats().writes, writes);
}

TEST_F(StoreTest, ScanPrefixOrderLimitAndEarlyStop) {
  auto store = MustOpen();
  ASSERT_TRUE(store);
  WriteBatch batch;
  for (std::string key : {"u/3", "u/1", "u", "v/1", "t/9", "u/2", "u\xff", "u/10"}) {
    batch.Put(Family::kAccountTokens, key, "=" + key);
  }
  batch.Put(Family::kSessions, "u/0", "other family");
  ASSERT_TRUE(store->Write(batch).ok());

  EXPECT_EQ(ScanAll(*store, Family::kAccountTokens, "u/"),
            (Entries{{"u/1", "=u/1"}, {"u/10", "=u/10"}, {"u/2", "=u/2"}, {"u/3", "=u/3"}}));
  EXPECT_EQ(ScanAll(*store, Family::kAccountTokens, "u/", 2),
            (Entries{{"u/1", "=u/1"}, {"u/10", "=u/10"}}));
  EXPECT_EQ(ScanAll(*store, Family::kAccountTokens, "u").size(), 6u);
  EXPECT_EQ(ScanAll(*store, Family::kAccountTokens, "u\xff"), (Entries{{"u\xff", "=u\xff"}}));
  EXPECT_EQ(ScanAll(*store, Family::kAccountTokens, "").size(), 8u);
  EXPECT_TRUE(ScanAll(*store, Family::kAccountTokens, "w").empty());

  int visits = 0;
  ASSERT_TRUE(store
                  ->Scan(Family::kAccountTokens, "u/",
                         [&](std::string_view, std::string_view) { return ++visits < 3; })
                  .ok());
  EXPECT_EQ(visits, 3);
}

TEST_F(StoreTest, ScanFromStartsAtAKeyWithinThePrefix) {
  auto store = MustOpen();
  ASSERT_TRUE(store);
  WriteBatch batch;
  for (std::string key : {"a/1", "a/2", "a/3", "b/1"}) batch.Put(Family::kBadges, key, key);
  ASSERT_TRUE(store->Write(batch).ok());
  auto from = [&](std::string_view start) {
    Entries out;
    EXPECT_TRUE(store
                    ->ScanFrom(Family::kBadges, "a/", start,
                               [&](std::string_view k, std::string_view v) {
                                 out.emplace_back(k, v);
                                 return true;
                               })
                    .ok());
    return out;
  };
  // Just after "a/1": a cursor page.
  EXPECT_EQ(from(std::string("a/1") + '\0'), (Entries{{"a/2", "a/2"}, {"a/3", "a/3"}}));
  EXPECT_EQ(from("a/2"), (Entries{{"a/2", "a/2"}, {"a/3", "a/3"}}));
  // A start before the prefix starts at the prefix; one past it finds nothing.
  EXPECT_EQ(from("").size(), 3u);
  EXPECT_TRUE(from("a/9").empty());
  EXPECT_TRUE(from("b/").empty());
}

TEST_F(StoreTest, AddAccumulatesWithoutLosingConcurrentAdditions) {
  auto store = MustOpen();
  ASSERT_TRUE(store);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        WriteBatch batch;
        batch.Add(Family::kBadgeKeys, "n", 2);
        batch.Add(Family::kBadgeKeys, "n", -1);
        EXPECT_TRUE(store->Write(batch).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(MustGet(*store, Family::kBadgeKeys, "n"), "400");
  // A put replaces the sum; a delete starts it again from zero.
  MustPut(*store, Family::kBadgeKeys, "n", "7");
  WriteBatch more;
  more.Add(Family::kBadgeKeys, "n", 3);
  ASSERT_TRUE(store->Write(more).ok());
  EXPECT_EQ(MustGet(*store, Family::kBadgeKeys, "n"), "10");
  WriteBatch reset;
  reset.Delete(Family::kBadgeKeys, "n");
  reset.Add(Family::kBadgeKeys, "n", -2);
  ASSERT_TRUE(store->Write(reset).ok());
  EXPECT_EQ(MustGet(*store, Family::kBadgeKeys, "n"), "-2");
  // The merged value survives a reopen.
  store.reset();
  store = MustOpen();
  ASSERT_TRUE(store);
  EXPECT_EQ(MustGet(*store, Family::kBadgeKeys, "n"), "-2");
}

TEST_F(StoreTest, DataSurvivesCloseAndReopen) {
  {
    auto store = MustOpen();
    ASSERT_TRUE(store);
    MustPut(*store, Family::kAccounts, "memtable", "only in the WAL");
    MustPut(*store, Family::kSessions, "flushed", "in an SST");
    ASSERT_TRUE(store->Flush().ok());
    StoreStats stats = store->Stats();
    EXPECT_GT(stats.live_data_bytes, 0u);
    EXPECT_GE(stats.estimated_keys, 2u);
    MustPut(*store, Family::kAccounts, "after-flush", "x");
    EXPECT_GT(store->Stats().memtable_bytes, 0u);
  }
  auto store = MustOpen();
  ASSERT_TRUE(store);
  EXPECT_EQ(MustGet(*store, Family::kAccounts, "memtable"), "only in the WAL");
  EXPECT_EQ(MustGet(*store, Family::kSessions, "flushed"), "in an SST");
  EXPECT_EQ(MustGet(*store, Family::kAccounts, "after-flush"), "x");
}

TEST_F(StoreTest, SecondOpenWhileOpenIsRefused) {
  auto store = MustOpen();
  ASSERT_TRUE(store);
  Result<std::unique_ptr<Store>> second = OpenRocksStore(Options());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use by another process"), std::string::npos)
      << second.status().message();
}

TEST_F(StoreTest, NewStoreRecordsSchemaVersion) {
  auto store = MustOpen(Options(3));
  ASSERT_TRUE(store);
  Result<uint32_t> version = ReadSchemaVersion(*store);
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, 3u);
}

TEST_F(StoreTest, MigrationsRunInOrderAndOnlyOnce) {
  {
    auto store = MustOpen(Options(1));
    ASSERT_TRUE(store);
    MustPut(*store, Family::kAccounts, "a", "v1");
  }
  std::vector<uint32_t> seen;  // the version each step found on disk
  auto step = [&seen](uint32_t from) {
    return Migration{from, [&seen](Store& store) {
                       Result<uint32_t> v = ReadSchemaVersion(store);
                       if (!v.ok()) return v.status();
                       seen.push_back(*v);
                       std::optional<std::string> old = MustGet(store, Family::kAccounts, "a");
                       WriteBatch batch;
                       batch.Put(Family::kAccounts, "a",
                                 old.value_or("") + "+" + std::to_string(*v));
                       return store.Write(batch);
                     }};
  };
  StoreOptions options = Options(3);
  options.migrations = {step(2), step(1), step(7)};  // matched by `from`, not position
  {
    auto store = MustOpen(options);
    ASSERT_TRUE(store);
    EXPECT_EQ(seen, (std::vector<uint32_t>{1, 2}));
    EXPECT_EQ(MustGet(*store, Family::kAccounts, "a"), "v1+1+2");
    Result<uint32_t> version = ReadSchemaVersion(*store);
    ASSERT_TRUE(version.ok());
    EXPECT_EQ(*version, 3u);
  }
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  EXPECT_EQ(seen.size(), 2u);
}

TEST_F(StoreTest, FailedMigrationKeepsOldVersion) {
  { ASSERT_TRUE(MustOpen(Options(1))); }
  StoreOptions options = Options(2);
  options.migrations = {{1, [](Store&) { return Unavailable("disk on fire"); }}};
  Result<std::unique_ptr<Store>> store = OpenRocksStore(options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(store.status().message().find("disk on fire"), std::string::npos);
  auto reopened = MustOpen(Options(1));
  ASSERT_TRUE(reopened);
  EXPECT_EQ(*ReadSchemaVersion(*reopened), 1u);
}

TEST_F(StoreTest, MissingMigrationStepIsRefusedBeforeAnyStepRuns) {
  { ASSERT_TRUE(MustOpen(Options(1))); }
  bool ran = false;
  StoreOptions options = Options(3);
  options.migrations = {{1, [&ran](Store&) {
                           ran = true;
                           return Status::Ok();
                         }}};
  Result<std::unique_ptr<Store>> store = OpenRocksStore(options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("from schema version 2 to 3"), std::string::npos)
      << store.status().message();
  EXPECT_FALSE(ran);
}

TEST_F(StoreTest, NewerSchemaIsRefused) {
  { ASSERT_TRUE(MustOpen(Options(5))); }
  Result<std::unique_ptr<Store>> store = OpenRocksStore(Options(2));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("newer schema (5 > 2)"), std::string::npos)
      << store.status().message();
}

TEST_F(StoreTest, GarbledSchemaVersionIsDataLoss) {
  {
    auto store = MustOpen();
    ASSERT_TRUE(store);
    MustPut(*store, Family::kMeta, "schema_version", "2x");
  }
  Result<std::unique_ptr<Store>> store = OpenRocksStore(Options());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kDataLoss);
}

TEST_F(StoreTest, ConcurrentWritersShareSyncs) {
  auto store = MustOpen();
  ASSERT_TRUE(store);
  constexpr int kThreads = 8, kWritesPerThread = 200;
  const StoreStats before = store->Stats();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&store, t] {
      for (int i = 0; i < kWritesPerThread; ++i) {
        const std::string key = std::to_string(t) + "/" + std::to_string(i);
        MustPut(*store, Family::kSessions, key, key);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(ScanAll(*store, Family::kSessions, "").size(), size_t{kThreads * kWritesPerThread});
  const StoreStats after = store->Stats();
  const uint64_t writes = after.writes - before.writes;
  const uint64_t syncs = after.synced_writes - before.synced_writes;
  std::cout << "group commit: " << writes << " writes, " << syncs << " WAL syncs\n";
  EXPECT_EQ(writes, uint64_t{kThreads * kWritesPerThread});
  EXPECT_LT(after.synced_writes, after.writes);
}

// A child process writes batches and acknowledges each one after Write()
// returns; it is SIGKILLed mid-stream. Every acknowledged batch must survive.
// The child execs crash_writer rather than running the store in the forked
// image: RocksDB's process-wide thread pools, started by earlier tests, do
// not survive a fork.
TEST_F(StoreTest, AcknowledgedWritesSurviveKill) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const std::string fd_arg = std::to_string(fds[1]);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    execl(BACKPACK_CRASH_WRITER, BACKPACK_CRASH_WRITER, dir_.c_str(), fd_arg.c_str(), nullptr);
    _exit(127);
  }
  close(fds[1]);

  // Acks arrive as 8-byte records; a read may split one.
  std::vector<uint64_t> acked;
  std::string pending;
  auto read_acks = [&](int timeout_ms) {
    pollfd pfd{fds[0], POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) <= 0) return false;
    char buf[4096];
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) return false;
    pending.append(buf, static_cast<size_t>(n));
    size_t used = 0;
    for (; pending.size() - used >= sizeof(uint64_t); used += sizeof(uint64_t)) {
      uint64_t seq;
      std::memcpy(&seq, pending.data() + used, sizeof seq);
      acked.push_back(seq);
    }
    pending.erase(0, used);
    return true;
  };
  while (acked.size() < 300 && read_acks(/*timeout_ms=*/60'000)) {
  }
  const size_t acked_before_kill = acked.size();

  // While the child holds the store, this process must be turned away.
  Result<std::unique_ptr<Store>> busy = OpenRocksStore(Options());
  EXPECT_EQ(busy.status().code(), StatusCode::kFailedPrecondition) << busy.status().ToString();
  EXPECT_NE(busy.status().message().find("in use by another process"), std::string::npos)
      << busy.status().message();

  ASSERT_EQ(kill(pid, SIGKILL), 0);
  while (read_acks(/*timeout_ms=*/60'000)) {  // until EOF: the child is gone
  }
  close(fds[0]);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_GE(acked_before_kill, 300u) << "child exited early, status " << wstatus;
  EXPECT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL) << wstatus;

  auto store = MustOpen();
  ASSERT_TRUE(store);
  for (uint64_t seq : acked) {
    EXPECT_EQ(MustGet(*store, Family::kAccounts, CrashKey(seq)), CrashValue(seq)) << seq;
    EXPECT_EQ(MustGet(*store, Family::kEmailIndex, CrashKey(seq)), CrashValue(seq)) << seq;
  }
  // Batches are atomic across families: the unacknowledged tail, if any
  // survived, did so whole.
  EXPECT_EQ(ScanAll(*store, Family::kAccounts, "seq/").size(),
            ScanAll(*store, Family::kEmailIndex, "seq/").size());
  std::cout << "crash: " << acked.size() << " acknowledged batches (" << acked_before_kill
            << " before the kill), all present\n";
}

}  // namespace
}  // namespace backpack::storage
