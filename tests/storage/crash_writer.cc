// crash_writer DIR FD: opens the store in DIR and writes batch after batch,
// writing each sequence number (8 bytes, native order) to FD once its Write()
// returned OK. Runs until killed; the crash test SIGKILLs it mid-stream.

#include "tests/storage/crash_writer.h"

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "storage/store.h"

int main(int argc, char** argv) {
  using namespace backpack::storage;
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DIR FD\n", argv[0]);
    return 2;
  }
  StoreOptions options;
  options.path = argv[1];
  const int ack_fd = std::atoi(argv[2]);
  auto store = OpenRocksStore(options);
  if (!store.ok()) {
    std::fprintf(stderr, "crash_writer: %s\n", store.status().ToString().c_str());
    return 1;
  }
  for (uint64_t seq = 1; seq <= 1'000'000; ++seq) {
    // Two families in one batch: after the crash both or neither exist.
    WriteBatch batch;
    batch.Put(Family::kAccounts, CrashKey(seq), CrashValue(seq));
    batch.Put(Family::kEmailIndex, CrashKey(seq), CrashValue(seq));
    backpack::Status s = (*store)->Write(batch);
    if (!s.ok()) {
      std::fprintf(stderr, "crash_writer: %s\n", s.ToString().c_str());
      return 1;
    }
    if (write(ack_fd, &seq, sizeof seq) != sizeof seq) return 1;
  }
  return 0;
}
