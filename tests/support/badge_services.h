// Test support: the account and badge services of a node, built in-process
// over a real RocksDB store in a temporary directory, the outbox mailer, our
// own issuer answering fetches in memory, and an injected clock. A fixture
// for tests of the services that sit on badges.
#pragma once

#include <gtest/gtest.h>
#include <openssl/rand.h>

#include <atomic>
#include <memory>
#include <string>

#include "daemon/accounts.h"
#include "daemon/badge_verifier.h"
#include "daemon/badges.h"
#include "daemon/mail.h"
#include "storage/store.h"
#include "tests/support/test_http.h"
#include "tests/support/test_issuer.h"

namespace backpack::testing {

class BadgeServicesTest : public ::testing::Test {
 protected:
  static std::string Random(size_t n) {
    std::string out(n, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n));
    return out;
  }

  UnixClock Clock() {
    return [this] { return now_.load(); };
  }

  void SetUp() override {
    accounts_config_.scrypt_log2_n = 10;  // fast hashes: the tests are not about them
    storage::StoreOptions options;
    options.path = dir_.path() + "/db";
    auto store = storage::OpenRocksStore(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    auto mailer = mail::MakeMailer(mail_config_, dir_.path());
    ASSERT_TRUE(mailer.ok()) << mailer.status().ToString();
    mailer_ = std::move(*mailer);
    accounts_ = std::make_unique<AccountService>(*store_, locks_, *mailer_, accounts_config_, "http://node.test",
                                                 Clock(), Random);
    verifier_ = std::make_unique<BadgeVerifier>(issuer_.AsFetch());
    MakeBadgeService();
  }

  // (Re)builds badges_ from badges_config_.
  void MakeBadgeService() {
    badges_ = std::make_unique<BadgeService>(*store_, locks_, *accounts_, *verifier_, badges_config_, Clock(),
                                             Random);
  }

  // An account whose address is verified with the mailed token, as badge
  // imports require; returns its id.
  std::string VerifiedAccount(const std::string& email, const std::string& display_name = "Ann") {
    auto a = accounts_->CreateAccount(email, "a good password", display_name);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    if (!a.ok()) return {};
    const std::string token = MailToken(dir_.path() + "/outbox", email);
    EXPECT_FALSE(token.empty());
    EXPECT_TRUE(accounts_->VerifyEmail(token, a->id).ok());
    return a->id;
  }

  size_t CountKeys(storage::Family family, const std::string& prefix = "") {
    size_t n = 0;
    EXPECT_TRUE(store_->Scan(family, prefix, [&](std::string_view, std::string_view) { return ++n > 0; }).ok());
    return n;
  }

  TempDir dir_;
  config::AccountsConfig accounts_config_;
  config::MailConfig mail_config_;
  config::BadgesConfig badges_config_;
  std::unique_ptr<storage::Store> store_;
  storage::KeyLocks locks_;
  std::unique_ptr<mail::Mailer> mailer_;
  std::unique_ptr<AccountService> accounts_;
  TestIssuer issuer_;
  std::unique_ptr<BadgeVerifier> verifier_;
  std::unique_ptr<BadgeService> badges_;
  std::atomic<int64_t> now_{1'750'000'000};
};

}  // namespace backpack::testing
