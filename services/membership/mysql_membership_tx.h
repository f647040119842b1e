#pragma once
// Internal to the MySQL membership store (mysql_membership_store.h is the
// public face): MysqlTx, the MembershipTx over one db::Transaction, is
// declared here and defined in one file per use-case group, each with the
// SQL it runs as named constants beside it:
//   mysql_membership_store.cc  the store and the transaction core: idempotency
//                              records, the snapshot feed counter, shared
//                              helpers, the audit log
//   mysql_members_store.cc     members, cards, the snapshot feed
//   mysql_consents_store.cc    consents and accepted documents
//   mysql_tiers_store.cc       the tier ladder and tier changes
//   mysql_referrals_store.cc   referrals, the ledger journal cursor, activity,
//                              referral rewards
//   mysql_segments_store.cc    segments, segment scans, the segment refresh
// sql::SQLException is turned into a Status by db::RunInTransaction (the
// store's Run), not here.
//
// Thread-safety: a MysqlTx belongs to the one thread running its
// transaction.

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/db/sql_values.h"
#include "common/db/transaction.h"
#include "google/protobuf/timestamp.pb.h"
#include "services/membership/membership_store.h"

namespace loyalty::membership::mysql_internal {

using db::ParseSqlTime;
using db::ReadBlob;
using db::SetBlob;
using db::SqlTime;
using db::Str;

// Statement parameters and result columns shared by the files above.
void SetOptionalTime(sql::PreparedStatement& s, int i, const google::protobuf::Timestamp* ts);
void SetTime(sql::PreparedStatement& s, int i, const google::protobuf::Timestamp& ts);
void SetNullableString(sql::PreparedStatement& s, int i, const std::string& v);
// False (and `out` untouched) when the column is NULL.
bool ReadTime(const sql::ResultSet& rs, int col, google::protobuf::Timestamp* out);

class MysqlTx final : public MembershipTx {
 public:
  explicit MysqlTx(db::Transaction& tx) : tx_(tx) {}

  // --- the idempotency records (mysql_membership_store.cc) ---
  absl::StatusOr<std::optional<IdempotencyRecord>> ClaimKey(const IdempotencyRecord& claim) override;
  absl::Status SaveOutcome(const IdempotencyRecord& record) override;

  // --- members (mysql_members_store.cc) ---
  absl::StatusOr<std::optional<v1::Member>> GetMember(const std::string& member_id, bool for_update) override;
  absl::StatusOr<std::optional<std::string>> FindMemberId(LookupKind kind, const std::string& value) override;
  absl::StatusOr<std::optional<std::string>> FindMemberIdByReferralCode(const std::string& code) override;
  absl::Status InsertMember(const v1::Member& m, const v1::Consents& docs) override;
  absl::Status UpdateMember(const v1::Member& m, bool snapshot_changed) override;
  absl::StatusOr<std::vector<std::string>> ListOpenMemberIds(const std::string& after, int limit) override;
  absl::StatusOr<int64_t> CountMembersHoldingTier(const std::string& tier_id) override;
  absl::Status ScrubPersonalData(const std::string& member_id) override;

  // --- cards (mysql_members_store.cc) ---
  absl::StatusOr<std::optional<v1::Card>> GetCard(const std::string& number, bool for_update) override;
  absl::StatusOr<std::vector<v1::Card>> ListCards(const std::string& member_id) override;
  absl::Status InsertCard(const v1::Card& c) override;
  absl::Status UpdateCard(const v1::Card& c) override;

  // --- consents (mysql_consents_store.cc) ---
  absl::StatusOr<v1::Consents> GetConsents(const std::string& member_id) override;
  absl::Status PutChannelConsent(const std::string& member_id, const v1::ChannelConsent& c) override;
  absl::Status PutDataSharing(const std::string& member_id, const v1::DataSharingConsent& d) override;
  absl::Status SetDocumentVersions(const std::string& member_id, const v1::Consents& docs) override;
  absl::Status InsertConsentEvent(const std::string& member_id, const v1::ConsentEvent& e) override;
  absl::StatusOr<std::vector<v1::ConsentEvent>> ListConsentEvents(const std::string& member_id,
                                                                   int limit) override;
  absl::StatusOr<bool> SharesWith(const std::string& member_id, const std::string& partner_id) override;

  // --- tiers (mysql_tiers_store.cc) ---
  absl::StatusOr<v1::TierLadder> GetLadder(bool for_update) override;
  absl::Status SaveLadder(const v1::TierLadder& ladder) override;
  absl::Status InsertTierChange(const v1::TierChange& c) override;
  absl::StatusOr<std::vector<std::pair<int64_t, v1::TierChange>>> ListTierChanges(
      const std::string& member_id, PageCursor cursor, int limit) override;

  // --- referrals (mysql_referrals_store.cc) ---
  absl::Status InsertReferral(const v1::Referral& r) override;
  absl::StatusOr<std::vector<std::pair<int64_t, v1::Referral>>> ListReferrals(const std::string& referrer,
                                                                              PageCursor cursor,
                                                                              int limit) override;
  absl::StatusOr<std::optional<v1::Referral>> GetReferralOf(const std::string& referred) override;
  absl::StatusOr<int64_t> CountReferrals(const std::string& referrer) override;

  // --- the ledger journal and referral rewards (mysql_referrals_store.cc) ---
  absl::StatusOr<int64_t> LockCursor(const std::string& name) override;
  absl::Status SetCursor(const std::string& name, int64_t position, absl::Time now) override;
  absl::Status RecordActivity(const std::string& member_id, absl::Time at) override;
  absl::StatusOr<bool> MarkReferralRewardDue(const std::string& referred_member_id) override;
  absl::StatusOr<std::vector<v1::Referral>> ListDueReferrals(int limit) override;
  absl::Status CompleteReferral(const v1::Referral& r) override;
  absl::StatusOr<bool> ReferralRewardAttempted(const std::string& referral_id) override;
  absl::Status MarkReferralRewardAttempted(const std::string& referral_id) override;

  // --- segments and their refresh (mysql_segments_store.cc) ---
  absl::Status InsertSegment(const v1::Segment& seg) override;
  absl::Status UpdateSegment(const v1::Segment& seg) override;
  absl::StatusOr<std::optional<v1::Segment>> GetSegment(const std::string& id, bool for_update) override;
  absl::StatusOr<std::vector<v1::Segment>> ListSegments(const std::string& after, int limit) override;
  absl::StatusOr<std::vector<SegmentCandidate>> ScanMembers(const std::string& after, int limit) override;
  absl::StatusOr<std::vector<GrantedChannel>> GrantedChannelsInRange(const std::string& after,
                                                                     const std::string& last) override;
  absl::StatusOr<SegmentRefreshCursor> LockSegmentRefresh() override;
  absl::Status SetSegmentRefresh(const SegmentRefreshCursor& cursor, absl::Time now) override;
  absl::Status BeginSegmentPass(absl::Time now) override;
  absl::Status CompleteSegmentPass(absl::Time now) override;
  absl::StatusOr<std::vector<SegmentMembership>> SegmentMembersInRange(const std::string& after,
                                                                       const std::string& last) override;
  absl::Status AddSegmentMember(const SegmentMembership& row, absl::Time now) override;
  absl::Status RemoveSegmentMember(const SegmentMembership& row) override;
  absl::Status BumpSnapshotVersions(const std::vector<std::string>& member_ids) override;

  // --- the snapshot feed (mysql_members_store.cc) ---
  absl::StatusOr<std::vector<v1::MemberSnapshot>> ListSnapshots(int64_t after_version, int limit) override;
  absl::StatusOr<std::optional<v1::MemberSnapshot>> GetSnapshot(const std::string& member_id) override;

  // --- audit (mysql_membership_store.cc) ---
  absl::Status InsertAudit(const std::string& member_id, const common::v1::AuditEvent& e) override;
  absl::StatusOr<std::vector<std::pair<int64_t, common::v1::AuditEvent>>> ListAudit(
      const AuditFilter& f, PageCursor cursor, int limit) override;

 private:
  // Inserts an idempotency record: a claim, or a completed outcome.
  absl::StatusOr<std::optional<IdempotencyRecord>> Insert(const IdempotencyRecord& r, bool completed);
  // The next snapshot feed version (NextFeedVersions(1)).
  absl::StatusOr<int64_t> NextFeedVersion();
  // Reserves `count` consecutive feed versions and returns the first. The
  // counter row stays locked until commit, so versions follow commit order.
  absl::StatusOr<int64_t> NextFeedVersions(int64_t count);
  // Email, phone and referral code are unique; a collision here means a
  // concurrent writer got there between our check and our write, so the
  // transaction is retried and the check then sees the other row.
  absl::Status ExecuteUnique(sql::PreparedStatement& s, absl::string_view what);
  absl::Status PutConsent(const std::string& member_id, int kind, int channel, const std::string& partner_id,
                          bool granted, const google::protobuf::Timestamp& at, int source);
  absl::StatusOr<std::optional<std::string>> SelectOneString(absl::string_view sql, const std::string& arg);
  absl::StatusOr<int64_t> SelectCount(absl::string_view sql, const std::string& arg);

  db::Transaction& tx_;
};

}  // namespace loyalty::membership::mysql_internal
