#pragma once
// The fixture of membership's use-case tests (members_test.cc,
// consents_test.cc, ...): the domain on the real MySQL store (a throwaway
// schema on the test MariaDB), a fake LedgerClient (another service, not the
// database), a settable clock, and helpers that enrol members, create
// segments and read the snapshot feed.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/auth/principal.h"
#include "common/testing/test_db.h"
#include "gtest/gtest.h"
#include "services/membership/membership.h"

namespace loyalty::membership {

inline const auth::Principal kBackoffice = auth::Principal::Of("bo000000000000001", common::v1::ROLE_BACKOFFICE);
inline const auth::Principal kVet = auth::Principal::Partner("vet0000000000001", "vet-clinic");
inline const auth::Principal kFood = auth::Principal::Partner("food000000000001", "pet-food");
inline const auth::Principal kService = auth::Principal::Of("svc0000000000001", common::v1::ROLE_SERVICE);

// The ledger as membership sees it: qualifying points, statements, a
// journal, and referral bonuses granted once per key.
class FakeLedger final : public LedgerClient {
 public:
  absl::StatusOr<absl::flat_hash_map<std::string, int64_t>> QualifyingPoints(
      const std::vector<std::string>& ids, absl::Time, absl::Time) override;
  absl::StatusOr<LedgerStatement> Statement(const std::string& member_id) override;
  absl::StatusOr<JournalPage> ReadJournal(int64_t after, int page_size) override;
  absl::StatusOr<std::string> GrantBonus(const std::string& key, const std::string& member_id, int64_t points,
                                         ledger::v1::BonusKind kind, const std::string&,
                                         const std::string&) override;
  // The next `n` grants are made, but their answers are lost.
  void LoseAnswers(int n);
  // As the ledger would once its feed brings the closure: no new grant.
  void Close(const std::string& member_id);
  int64_t grants();

  void AddEarn(const std::string& member_id, absl::Time at);
  int64_t BonusPoints(const std::string& member_id);
  void SetPoints(const std::string& id, int64_t p);
  void SetDown(bool down);

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, int64_t> points_;
  bool down_ = false;
  int calls_ = 0;
  std::vector<ledger::v1::Transfer> journal_;
  absl::flat_hash_map<std::string, std::string> grants_;
  absl::flat_hash_map<std::string, int64_t> bonus_points_;
  absl::flat_hash_set<std::string> closed_;
  int lose_answers_ = 0;
};

class MembershipTest : public ::testing::Test {
 protected:
  using Principal = auth::Principal;

  void SetUp() override;

  // Small refresh chunks, so that a handful of members makes a pass of
  // several transactions.
  void UseRefreshChunk(int members);

  void Advance(absl::Duration d);
  absl::Time Now();

  v1::EnrolRequest EnrolOf(const std::string& key, const std::string& email,
                           const std::string& partner = "vet-clinic");
  v1::EnrolResponse MustEnrol(const std::string& key, const std::string& email, const Principal& p = kVet);
  int64_t Count(const std::string& sql, const std::vector<std::string>& params = {});
  v1::EnrolResponse MustEnrolBorn(const std::string& key, int birth_month, const Principal& p = kVet);
  std::string MustCreateSegment(const std::string& key, const v1::SegmentFilter& filter);
  v1::Segment MustGetSegment(const std::string& segment_id);

  // Runs refresh calls until one pass is over.
  SegmentRefreshResult MustRefresh();

  // The latest snapshot of every member with version > after_version, read
  // the way the ledger reads the feed (small pages).
  std::map<std::string, v1::MemberSnapshot> Snapshots(int64_t after_version = 0);

  int64_t FeedHead();

  MembershipOptions options_;
  absl::Mutex clock_mu_;
  absl::Time now_ = absl::FromCivil(absl::CivilSecond(2026, 3, 1, 10, 0, 0), absl::UTCTimeZone());
  std::unique_ptr<loyalty::testing::TestDatabase> db_;
  std::unique_ptr<MembershipStore> store_;
  FakeLedger ledger_;
  std::unique_ptr<Membership> membership_;
};

}  // namespace loyalty::membership
