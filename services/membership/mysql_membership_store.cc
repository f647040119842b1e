#include "services/membership/mysql_membership_store.h"

#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/db/idempotency_rows.h"
#include "common/db/mysql_error.h"
#include "common/db/sql_values.h"
#include "common/db/transaction.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"

namespace loyalty::membership {
namespace {

using db::ParseSqlTime;
using db::SqlTime;
using db::ReadBlob;
using db::SetBlob;
using db::Str;

#define LOYALTY_MEMBER_COLUMNS                                                                  \
  "member_id, status, status_reason, given_name, family_name, email, phone, birth_date, "      \
  "preferred_language, enrolling_partner_id, referral_code, referred_by_member_id, tier_id, " \
  "tier_basis, tier_since, tier_retained_until, tier_paid_until, tier_qualifying_points, "     \
  "tier_evaluated_at, created_at, updated_at, version, erased_at"
#define LOYALTY_CARD_COLUMNS \
  "card_number, member_id, state, issued_at, deactivated_at, block_reason, replaced_by_card_number"
#define LOYALTY_TIER_CHANGE_COLUMNS                                                              \
  "id, tier_change_id, member_id, from_tier_id, to_tier_id, reason, qualifying_points, "         \
  "window_start_time, window_end_time, changed_at, valid_until, actor_key_id"
#define LOYALTY_REFERRAL_COLUMNS                                                                  \
  "id, referral_id, referrer_member_id, referred_member_id, referral_code, state, enrolled_at, " \
  "rewarded_at, reward_points, reward_transfer_id"
#define LOYALTY_AUDIT_COLUMNS                                                                  \
  "id, audit_event_id, occurred_at, actor_key_id, actor_role, actor_partner_id, action, "      \
  "entity_type, entity_id, before_json, after_json, idempotency_key, reason"

constexpr absl::string_view kSelectIdempotency =
    "SELECT method, fingerprint, request, status_code, status_message, status_detail, response, "
    "member_id, erased, completed FROM idempotency WHERE scope = ? AND idem_key = ? FOR UPDATE";
constexpr absl::string_view kInsertIdempotency =
    "INSERT INTO idempotency (scope, idem_key, method, fingerprint, request, status_code, "
    "status_message, status_detail, response, member_id, completed, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))";
constexpr absl::string_view kCompleteIdempotency =
    "UPDATE idempotency SET status_code = ?, status_message = ?, status_detail = ?, response = ?, "
    "member_id = ?, completed = 1 WHERE scope = ? AND idem_key = ?";

constexpr absl::string_view kNextFeedVersion = "SELECT last_version FROM feed_head WHERE id = 1 FOR UPDATE";
constexpr absl::string_view kSetFeedVersion = "UPDATE feed_head SET last_version = ? WHERE id = 1";

constexpr absl::string_view kSelectMember = "SELECT " LOYALTY_MEMBER_COLUMNS " FROM members WHERE member_id = ?";
constexpr absl::string_view kSelectMemberForUpdate =
    "SELECT " LOYALTY_MEMBER_COLUMNS " FROM members WHERE member_id = ? FOR UPDATE";
constexpr absl::string_view kSelectByEmail = "SELECT member_id FROM members WHERE email = ?";
constexpr absl::string_view kSelectByPhone = "SELECT member_id FROM members WHERE phone = ?";
constexpr absl::string_view kSelectByReferralCode = "SELECT member_id FROM members WHERE referral_code = ?";
constexpr absl::string_view kInsertMember =
    "INSERT INTO members (member_id, status, status_reason, given_name, family_name, email, phone, "
    "birth_date, birth_month, preferred_language, enrolling_partner_id, referral_code, "
    "referred_by_member_id, tier_id, tier_basis, tier_since, tier_retained_until, tier_paid_until, "
    "tier_qualifying_points, tier_evaluated_at, terms_version, terms_accepted_at, privacy_version, "
    "privacy_accepted_at, created_at, updated_at, version, erased_at, snapshot_version) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr absl::string_view kUpdateMember =
    "UPDATE members SET status = ?, status_reason = ?, given_name = ?, family_name = ?, email = ?, "
    "phone = ?, birth_date = ?, birth_month = ?, preferred_language = ?, referred_by_member_id = ?, "
    "tier_id = ?, tier_basis = ?, tier_since = ?, tier_retained_until = ?, tier_paid_until = ?, "
    "tier_qualifying_points = ?, tier_evaluated_at = ?, updated_at = ?, version = ?, erased_at = ?, "
    "snapshot_version = IF(? = 0, snapshot_version, ?) WHERE member_id = ?";
constexpr absl::string_view kListOpenMembers =
    "SELECT member_id FROM members WHERE member_id > ? AND status <> 3 ORDER BY member_id LIMIT ?";
constexpr absl::string_view kCountTierHolders = "SELECT COUNT(*) FROM members WHERE tier_id = ?";

constexpr absl::string_view kDeleteCards = "DELETE FROM cards WHERE member_id = ?";
constexpr absl::string_view kScrubIdempotency =
    "UPDATE idempotency SET request = NULL, response = NULL, erased = 1 WHERE member_id = ?";
constexpr absl::string_view kScrubAudit =
    "UPDATE audit_events SET before_json = '', after_json = '' WHERE member_id = ?";

constexpr absl::string_view kSelectCard = "SELECT " LOYALTY_CARD_COLUMNS " FROM cards WHERE card_number = ?";
constexpr absl::string_view kSelectCardForUpdate =
    "SELECT " LOYALTY_CARD_COLUMNS " FROM cards WHERE card_number = ? FOR UPDATE";
constexpr absl::string_view kSelectCards =
    "SELECT " LOYALTY_CARD_COLUMNS " FROM cards WHERE member_id = ? ORDER BY issued_at, card_number";
constexpr absl::string_view kInsertCard =
    "INSERT INTO cards (" LOYALTY_CARD_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?)";
constexpr absl::string_view kUpdateCard =
    "UPDATE cards SET state = ?, deactivated_at = ?, block_reason = ?, replaced_by_card_number = ? "
    "WHERE card_number = ?";

constexpr absl::string_view kSelectDocuments =
    "SELECT terms_version, terms_accepted_at, privacy_version, privacy_accepted_at FROM members "
    "WHERE member_id = ?";
constexpr absl::string_view kSetDocuments =
    "UPDATE members SET terms_version = ?, terms_accepted_at = ?, privacy_version = ?, "
    "privacy_accepted_at = ? WHERE member_id = ?";
constexpr absl::string_view kSelectConsents =
    "SELECT kind, channel, partner_id, granted, updated_at, source FROM consents WHERE member_id = ? "
    "ORDER BY kind, channel, partner_id";
constexpr absl::string_view kPutConsent =
    "INSERT INTO consents (member_id, kind, channel, partner_id, granted, updated_at, source) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE granted = VALUES(granted), "
    "updated_at = VALUES(updated_at), source = VALUES(source)";
constexpr absl::string_view kSharesWith =
    "SELECT granted FROM consents WHERE member_id = ? AND kind = 2 AND channel = 0 AND partner_id = ?";
constexpr absl::string_view kInsertConsentEvent =
    "INSERT INTO consent_events (consent_event_id, member_id, occurred_at, kind, source, actor_key_id, "
    "channel, partner_id, granted, document_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr absl::string_view kSelectConsentEvents =
    "SELECT consent_event_id, occurred_at, kind, source, actor_key_id, channel, partner_id, granted, "
    "document_version FROM consent_events WHERE member_id = ? ORDER BY id DESC LIMIT ?";

constexpr absl::string_view kSelectLadder =
    "SELECT version, qualification_window_months, updated_at FROM tier_ladder WHERE id = 1";
constexpr absl::string_view kSelectLadderForUpdate =
    "SELECT version, qualification_window_months, updated_at FROM tier_ladder WHERE id = 1 FOR UPDATE";
constexpr absl::string_view kSelectTiers =
    "SELECT tier_id, name, tier_rank, qualifying_points_threshold, tier_multiplier_bp, retention_months, "
    "annual_fee_minor, annual_fee_currency FROM tiers ORDER BY tier_rank";
constexpr absl::string_view kUpdateLadder =
    "UPDATE tier_ladder SET version = ?, qualification_window_months = ?, updated_at = ? WHERE id = 1";
constexpr absl::string_view kDeleteTiers = "DELETE FROM tiers";
constexpr absl::string_view kInsertTier =
    "INSERT INTO tiers (tier_id, name, tier_rank, qualifying_points_threshold, tier_multiplier_bp, "
    "retention_months, annual_fee_minor, annual_fee_currency) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
constexpr absl::string_view kInsertTierChange =
    "INSERT INTO tier_changes (tier_change_id, member_id, from_tier_id, to_tier_id, reason, "
    "qualifying_points, window_start_time, window_end_time, changed_at, valid_until, actor_key_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr absl::string_view kSelectTierChanges =
    "SELECT " LOYALTY_TIER_CHANGE_COLUMNS " FROM tier_changes WHERE member_id = ? AND id < ? "
    "ORDER BY id DESC LIMIT ?";

constexpr absl::string_view kInsertReferral =
    "INSERT INTO referrals (referral_id, referrer_member_id, referred_member_id, referral_code, state, "
    "enrolled_at, rewarded_at, reward_points, reward_transfer_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr absl::string_view kSelectReferrals =
    "SELECT " LOYALTY_REFERRAL_COLUMNS " FROM referrals WHERE referrer_member_id = ? AND id < ? "
    "ORDER BY id DESC LIMIT ?";
constexpr absl::string_view kSelectReferralOf =
    "SELECT " LOYALTY_REFERRAL_COLUMNS " FROM referrals WHERE referred_member_id = ?";
constexpr absl::string_view kCountReferrals = "SELECT COUNT(*) FROM referrals WHERE referrer_member_id = ?";

// A member's segments come with its row (one index range on
// segment_members_member per snapshot), so a page is one statement.
#define LOYALTY_SNAPSHOT_COLUMNS                                                                    \
  "m.member_id, m.status, m.tier_id, m.birth_month, m.enrolling_partner_id, m.created_at, "          \
  "m.snapshot_version, (SELECT GROUP_CONCAT(sm.segment_id ORDER BY sm.segment_id SEPARATOR ',') " \
  "FROM segment_members sm WHERE sm.member_id = m.member_id) "
constexpr absl::string_view kSelectSnapshots =
    "SELECT " LOYALTY_SNAPSHOT_COLUMNS
    "FROM members m WHERE m.snapshot_version > ? ORDER BY m.snapshot_version LIMIT ?";
constexpr absl::string_view kSelectSnapshot = "SELECT " LOYALTY_SNAPSHOT_COLUMNS "FROM members m WHERE m.member_id = ?";

constexpr absl::string_view kLockCursor = "SELECT position FROM feed_cursors WHERE name = ? FOR UPDATE";
constexpr absl::string_view kSetCursor = "UPDATE feed_cursors SET position = ?, updated_at = ? WHERE name = ?";
constexpr absl::string_view kRecordActivity =
    "UPDATE members SET last_activity_at = GREATEST(COALESCE(last_activity_at, ?), ?) WHERE member_id = ?";
constexpr absl::string_view kMarkReferralDue =
    "UPDATE referrals SET reward_due = 1 WHERE referred_member_id = ? AND state = 1 AND reward_due = 0";
constexpr absl::string_view kSelectDueReferrals =
    "SELECT " LOYALTY_REFERRAL_COLUMNS " FROM referrals WHERE reward_due = 1 AND state = 1 ORDER BY id LIMIT ?";
// Only a referral still due: another replica may have completed it since it
// was listed, and its outcome stands.
constexpr absl::string_view kSelectReferralAttempted = "SELECT reward_attempted FROM referrals WHERE referral_id = ?";
constexpr absl::string_view kMarkReferralAttempted =
    "UPDATE referrals SET reward_attempted = 1 WHERE referral_id = ? AND reward_due = 1";
constexpr absl::string_view kCompleteReferral =
    "UPDATE referrals SET state = ?, rewarded_at = ?, reward_points = ?, reward_transfer_id = ?, reward_due = 0 "
    "WHERE referral_id = ? AND reward_due = 1";

constexpr absl::string_view kInsertSegment =
    "INSERT INTO segments (segment_id, name, description, filter, created_at, updated_at, version, member_count, "
    "refreshed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr absl::string_view kUpdateSegment =
    "UPDATE segments SET name = ?, description = ?, filter = ?, updated_at = ?, version = ?, member_count = ?, "
    "refreshed_at = ? WHERE segment_id = ?";
#define LOYALTY_SEGMENT_COLUMNS \
  "segment_id, name, description, filter, created_at, updated_at, version, member_count, refreshed_at"
constexpr absl::string_view kSelectSegment = "SELECT " LOYALTY_SEGMENT_COLUMNS " FROM segments WHERE segment_id = ?";
constexpr absl::string_view kSelectSegmentForUpdate =
    "SELECT " LOYALTY_SEGMENT_COLUMNS " FROM segments WHERE segment_id = ? FOR UPDATE";
constexpr absl::string_view kSelectSegments =
    "SELECT " LOYALTY_SEGMENT_COLUMNS " FROM segments WHERE segment_id > ? ORDER BY segment_id LIMIT ?";
constexpr absl::string_view kScanMembers =
    "SELECT member_id, tier_id, enrolling_partner_id, preferred_language, status, birth_month, last_activity_at "
    "FROM members WHERE member_id > ? ORDER BY member_id LIMIT ?";
constexpr absl::string_view kGrantedChannelsInRange =
    "SELECT member_id, channel, partner_id FROM consents "
    "WHERE member_id > ? AND member_id <= ? AND kind = 1 AND granted = 1";

constexpr absl::string_view kLockSegmentRefresh =
    "SELECT pass, after_member_id FROM segment_refresh WHERE id = 1 FOR UPDATE";
constexpr absl::string_view kSetSegmentRefresh =
    "UPDATE segment_refresh SET pass = ?, after_member_id = ?, updated_at = ? WHERE id = 1";
constexpr absl::string_view kStartSegmentRefresh = "UPDATE segment_refresh SET pass_started_at = ? WHERE id = 1";
constexpr absl::string_view kPinSegmentVersions = "UPDATE segments SET refresh_version = version";
constexpr absl::string_view kCompleteSegments =
    "UPDATE segments SET member_count = (SELECT COUNT(*) FROM segment_members sm "
    "WHERE sm.segment_id = segments.segment_id), refreshed_at = ? WHERE refresh_version = version";
constexpr absl::string_view kSegmentMembersInRange =
    "SELECT segment_id, member_id FROM segment_members WHERE member_id > ? AND member_id <= ? FOR UPDATE";
constexpr absl::string_view kInsertSegmentMember =
    "INSERT INTO segment_members (segment_id, member_id, added_at) VALUES (?, ?, ?)";
constexpr absl::string_view kDeleteSegmentMember =
    "DELETE FROM segment_members WHERE segment_id = ? AND member_id = ?";
constexpr absl::string_view kLockMemberRow = "SELECT member_id FROM members WHERE member_id = ? FOR UPDATE";
constexpr absl::string_view kSetSnapshotVersion = "UPDATE members SET snapshot_version = ? WHERE member_id = ?";

constexpr absl::string_view kInsertAudit =
    "INSERT INTO audit_events (audit_event_id, occurred_at, actor_key_id, actor_role, actor_partner_id, "
    "action, entity_type, entity_id, member_id, before_json, after_json, idempotency_key, reason) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

// ---- helpers ------------------------------------------------------------------

void SetOptionalTime(sql::PreparedStatement& s, int i, const google::protobuf::Timestamp* ts) {
  if (ts == nullptr) {
    s.setNull(i, 0);
  } else {
    s.setString(i, SqlTime(FromProtoTime(*ts)));
  }
}
void SetTime(sql::PreparedStatement& s, int i, const google::protobuf::Timestamp& ts) {
  s.setString(i, SqlTime(FromProtoTime(ts)));
}
void SetNullableString(sql::PreparedStatement& s, int i, const std::string& v) {
  if (v.empty()) {
    s.setNull(i, 0);
  } else {
    s.setString(i, v);
  }
}
bool ReadTime(const sql::ResultSet& rs, int col, google::protobuf::Timestamp* out) {
  if (rs.isNull(col)) return false;
  *out = ToProtoTime(ParseSqlTime(Str(rs, col)));
  return true;
}
std::string SqlDate(const common::v1::Date& d) {
  return absl::StrFormat("%04d-%02d-%02d", d.year(), d.month(), d.day());
}

v1::Member ReadMember(const sql::ResultSet& rs) {
  v1::Member m;
  m.set_member_id(Str(rs, 1));
  m.set_status(static_cast<v1::MemberStatus>(rs.getInt(2)));
  m.set_status_reason(Str(rs, 3));
  m.set_given_name(Str(rs, 4));
  m.set_family_name(Str(rs, 5));
  if (!rs.isNull(6)) m.set_email(Str(rs, 6));
  if (!rs.isNull(7)) m.set_phone(Str(rs, 7));
  if (!rs.isNull(8)) {
    const std::string d = Str(rs, 8);
    int y = 0, mo = 0, da = 0;
    if (absl::SimpleAtoi(d.substr(0, 4), &y) && absl::SimpleAtoi(d.substr(5, 2), &mo) &&
        absl::SimpleAtoi(d.substr(8, 2), &da)) {
      m.mutable_birth_date()->set_year(y);
      m.mutable_birth_date()->set_month(mo);
      m.mutable_birth_date()->set_day(da);
    }
  }
  m.set_preferred_language(Str(rs, 9));
  m.set_enrolling_partner_id(Str(rs, 10));
  m.set_referral_code(Str(rs, 11));
  if (!rs.isNull(12)) m.set_referred_by_member_id(Str(rs, 12));
  v1::MemberTier* t = m.mutable_tier();
  t->set_tier_id(Str(rs, 13));
  t->set_basis(static_cast<v1::TierBasis>(rs.getInt(14)));
  ReadTime(rs, 15, t->mutable_since());
  if (!ReadTime(rs, 16, t->mutable_retained_until())) t->clear_retained_until();
  if (!ReadTime(rs, 17, t->mutable_paid_until())) t->clear_paid_until();
  t->set_qualifying_points(rs.getInt64(18));
  if (!ReadTime(rs, 19, t->mutable_evaluated_at())) t->clear_evaluated_at();
  ReadTime(rs, 20, m.mutable_created_at());
  ReadTime(rs, 21, m.mutable_updated_at());
  m.set_version(rs.getInt64(22));
  if (!ReadTime(rs, 23, m.mutable_erased_at())) m.clear_erased_at();
  return m;
}

v1::Card ReadCard(const sql::ResultSet& rs) {
  v1::Card c;
  c.set_card_number(Str(rs, 1));
  c.set_member_id(Str(rs, 2));
  c.set_state(static_cast<v1::CardState>(rs.getInt(3)));
  ReadTime(rs, 4, c.mutable_issued_at());
  if (!ReadTime(rs, 5, c.mutable_deactivated_at())) c.clear_deactivated_at();
  c.set_block_reason(static_cast<v1::CardBlockReason>(rs.getInt(6)));
  c.set_replaced_by_card_number(Str(rs, 7));
  return c;
}

v1::TierChange ReadTierChange(const sql::ResultSet& rs) {
  v1::TierChange c;
  c.set_tier_change_id(Str(rs, 2));
  c.set_member_id(Str(rs, 3));
  c.set_from_tier_id(Str(rs, 4));
  c.set_to_tier_id(Str(rs, 5));
  c.set_reason(static_cast<v1::TierChangeReason>(rs.getInt(6)));
  c.set_qualifying_points(rs.getInt64(7));
  if (!ReadTime(rs, 8, c.mutable_window_start_time())) c.clear_window_start_time();
  if (!ReadTime(rs, 9, c.mutable_window_end_time())) c.clear_window_end_time();
  ReadTime(rs, 10, c.mutable_changed_at());
  if (!ReadTime(rs, 11, c.mutable_valid_until())) c.clear_valid_until();
  c.set_actor_key_id(Str(rs, 12));
  return c;
}

v1::Referral ReadReferral(const sql::ResultSet& rs) {
  v1::Referral r;
  r.set_referral_id(Str(rs, 2));
  r.set_referrer_member_id(Str(rs, 3));
  r.set_referred_member_id(Str(rs, 4));
  r.set_referral_code(Str(rs, 5));
  r.set_state(static_cast<v1::ReferralState>(rs.getInt(6)));
  ReadTime(rs, 7, r.mutable_enrolled_at());
  if (!ReadTime(rs, 8, r.mutable_rewarded_at())) r.clear_rewarded_at();
  r.set_reward_points(rs.getInt64(9));
  r.set_reward_transfer_id(Str(rs, 10));
  return r;
}

common::v1::AuditEvent ReadAudit(const sql::ResultSet& rs) {
  common::v1::AuditEvent e;
  e.set_audit_event_id(Str(rs, 2));
  ReadTime(rs, 3, e.mutable_occurred_at());
  e.set_actor_key_id(Str(rs, 4));
  e.set_actor_role(static_cast<common::v1::Role>(rs.getInt(5)));
  e.set_actor_partner_id(Str(rs, 6));
  e.set_action(Str(rs, 7));
  e.set_entity_type(Str(rs, 8));
  e.set_entity_id(Str(rs, 9));
  e.set_before_json(Str(rs, 10));
  e.set_after_json(Str(rs, 11));
  e.set_idempotency_key(Str(rs, 12));
  e.set_reason(Str(rs, 13));
  return e;
}

absl::StatusOr<v1::Segment> ReadSegment(const sql::ResultSet& rs) {
  v1::Segment seg;
  seg.set_segment_id(Str(rs, 1));
  seg.set_name(Str(rs, 2));
  seg.set_description(Str(rs, 3));
  if (!seg.mutable_filter()->ParseFromString(ReadBlob(rs, 4))) {
    return absl::InternalError(absl::StrCat("segment ", seg.segment_id(), ": unreadable filter"));
  }
  ReadTime(rs, 5, seg.mutable_created_at());
  ReadTime(rs, 6, seg.mutable_updated_at());
  seg.set_version(rs.getInt64(7));
  seg.set_member_count(rs.getInt64(8));
  if (!ReadTime(rs, 9, seg.mutable_refreshed_at())) seg.clear_refreshed_at();
  return seg;
}

// ---- the transaction ------------------------------------------------------------

class MysqlTx final : public MembershipTx {
 public:
  explicit MysqlTx(db::Transaction& tx) : tx_(tx) {}

  absl::StatusOr<std::optional<IdempotencyRecord>> ClaimKey(const IdempotencyRecord& claim) override {
    if (!db::IdempotencyKeyPresent(tx_, claim.scope, claim.key)) return Insert(claim, /*completed=*/false);
    auto& sel = tx_.Prepare(kSelectIdempotency);
    sel.setString(1, claim.scope);
    sel.setString(2, claim.key);
    std::unique_ptr<sql::ResultSet> rs(sel.executeQuery());
    if (rs->next()) {
      IdempotencyRecord r;
      r.scope = claim.scope;
      r.key = claim.key;
      r.method = Str(*rs, 1);
      r.fingerprint = Str(*rs, 2);
      r.request = ReadBlob(*rs, 3);
      r.status_code = rs->getInt(4);
      r.status_message = Str(*rs, 5);
      r.status_detail = Str(*rs, 6);
      r.response = ReadBlob(*rs, 7);
      r.member_id = Str(*rs, 8);
      r.erased = rs->getBoolean(9);
      if (!rs->getBoolean(10)) {
        // A claim is only ever visible uncommitted to its own transaction.
        return absl::InternalError("idempotency record without an outcome");
      }
      return r;
    }
    rs.reset();
    return Insert(claim, /*completed=*/false);
  }

  absl::Status SaveOutcome(const IdempotencyRecord& record) override {
    auto& up = tx_.Prepare(kCompleteIdempotency);
    std::istringstream response;
    up.setInt(1, record.status_code);
    up.setString(2, record.status_message);
    up.setString(3, record.status_detail);
    SetBlob(up, 4, record.response, response);
    up.setString(5, record.member_id);
    up.setString(6, record.scope);
    up.setString(7, record.key);
    if (up.executeUpdate() == 1) return absl::OkStatus();
    ASSIGN_OR_RETURN(auto inserted, Insert(record, /*completed=*/true));
    (void)inserted;
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<v1::Member>> GetMember(const std::string& member_id, bool for_update) override {
    auto& s = tx_.Prepare(for_update ? kSelectMemberForUpdate : kSelectMember);
    s.setString(1, member_id);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    if (!rs->next()) return std::nullopt;
    return ReadMember(*rs);
  }

  absl::StatusOr<std::optional<std::string>> FindMemberId(LookupKind kind, const std::string& value) override {
    return SelectOneString(kind == LookupKind::kEmail ? kSelectByEmail : kSelectByPhone, value);
  }

  absl::StatusOr<std::optional<std::string>> FindMemberIdByReferralCode(const std::string& code) override {
    return SelectOneString(kSelectByReferralCode, code);
  }

  absl::Status InsertMember(const v1::Member& m, const v1::Consents& docs) override {
    ASSIGN_OR_RETURN(int64_t version, NextFeedVersion());
    auto& s = tx_.Prepare(kInsertMember);
    s.setString(1, m.member_id());
    s.setInt(2, m.status());
    s.setString(3, m.status_reason());
    s.setString(4, m.given_name());
    s.setString(5, m.family_name());
    SetNullableString(s, 6, m.email());
    SetNullableString(s, 7, m.phone());
    if (m.has_birth_date()) {
      s.setString(8, SqlDate(m.birth_date()));
    } else {
      s.setNull(8, 0);
    }
    s.setInt(9, m.has_birth_date() ? m.birth_date().month() : 0);
    s.setString(10, m.preferred_language());
    s.setString(11, m.enrolling_partner_id());
    s.setString(12, m.referral_code());
    SetNullableString(s, 13, m.referred_by_member_id());
    const v1::MemberTier& t = m.tier();
    s.setString(14, t.tier_id());
    s.setInt(15, t.basis());
    SetTime(s, 16, t.since());
    SetOptionalTime(s, 17, t.has_retained_until() ? &t.retained_until() : nullptr);
    SetOptionalTime(s, 18, t.has_paid_until() ? &t.paid_until() : nullptr);
    s.setInt64(19, t.qualifying_points());
    SetOptionalTime(s, 20, t.has_evaluated_at() ? &t.evaluated_at() : nullptr);
    s.setString(21, docs.terms_version());
    SetTime(s, 22, docs.terms_accepted_at());
    s.setString(23, docs.privacy_version());
    SetTime(s, 24, docs.privacy_accepted_at());
    SetTime(s, 25, m.created_at());
    SetTime(s, 26, m.updated_at());
    s.setInt64(27, m.version());
    SetOptionalTime(s, 28, m.has_erased_at() ? &m.erased_at() : nullptr);
    s.setInt64(29, version);
    return ExecuteUnique(s, "insert member");
  }

  absl::Status UpdateMember(const v1::Member& m, bool snapshot_changed) override {
    int64_t version = 0;
    if (snapshot_changed) {
      ASSIGN_OR_RETURN(version, NextFeedVersion());
    }
    auto& s = tx_.Prepare(kUpdateMember);
    s.setInt(1, m.status());
    s.setString(2, m.status_reason());
    s.setString(3, m.given_name());
    s.setString(4, m.family_name());
    SetNullableString(s, 5, m.email());
    SetNullableString(s, 6, m.phone());
    if (m.has_birth_date()) {
      s.setString(7, SqlDate(m.birth_date()));
    } else {
      s.setNull(7, 0);
    }
    s.setInt(8, m.has_birth_date() ? m.birth_date().month() : 0);
    s.setString(9, m.preferred_language());
    SetNullableString(s, 10, m.referred_by_member_id());
    const v1::MemberTier& t = m.tier();
    s.setString(11, t.tier_id());
    s.setInt(12, t.basis());
    SetTime(s, 13, t.since());
    SetOptionalTime(s, 14, t.has_retained_until() ? &t.retained_until() : nullptr);
    SetOptionalTime(s, 15, t.has_paid_until() ? &t.paid_until() : nullptr);
    s.setInt64(16, t.qualifying_points());
    SetOptionalTime(s, 17, t.has_evaluated_at() ? &t.evaluated_at() : nullptr);
    SetTime(s, 18, m.updated_at());
    s.setInt64(19, m.version());
    SetOptionalTime(s, 20, m.has_erased_at() ? &m.erased_at() : nullptr);
    s.setInt64(21, version);
    s.setInt64(22, version);
    s.setString(23, m.member_id());
    return ExecuteUnique(s, "update member");
  }

  absl::StatusOr<std::vector<std::string>> ListOpenMemberIds(const std::string& after, int limit) override {
    auto& s = tx_.Prepare(kListOpenMembers);
    s.setString(1, after);
    s.setInt(2, limit);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<std::string> out;
    while (rs->next()) out.push_back(Str(*rs, 1));
    return out;
  }

  absl::StatusOr<int64_t> CountMembersHoldingTier(const std::string& tier_id) override {
    return SelectCount(kCountTierHolders, tier_id);
  }

  absl::Status ScrubPersonalData(const std::string& member_id) override {
    for (absl::string_view sql : {kDeleteCards, kScrubIdempotency, kScrubAudit}) {
      auto& s = tx_.Prepare(sql);
      s.setString(1, member_id);
      s.executeUpdate();
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<v1::Card>> GetCard(const std::string& number, bool for_update) override {
    auto& s = tx_.Prepare(for_update ? kSelectCardForUpdate : kSelectCard);
    s.setString(1, number);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    if (!rs->next()) return std::nullopt;
    return ReadCard(*rs);
  }

  absl::StatusOr<std::vector<v1::Card>> ListCards(const std::string& member_id) override {
    auto& s = tx_.Prepare(kSelectCards);
    s.setString(1, member_id);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<v1::Card> out;
    while (rs->next()) out.push_back(ReadCard(*rs));
    return out;
  }

  absl::Status InsertCard(const v1::Card& c) override {
    auto& s = tx_.Prepare(kInsertCard);
    s.setString(1, c.card_number());
    s.setString(2, c.member_id());
    s.setInt(3, c.state());
    SetTime(s, 4, c.issued_at());
    SetOptionalTime(s, 5, c.has_deactivated_at() ? &c.deactivated_at() : nullptr);
    s.setInt(6, c.block_reason());
    s.setString(7, c.replaced_by_card_number());
    return db::ExecuteUnlessDuplicate(s, absl::AlreadyExistsError("card number taken"));
  }

  absl::Status UpdateCard(const v1::Card& c) override {
    auto& s = tx_.Prepare(kUpdateCard);
    s.setInt(1, c.state());
    SetOptionalTime(s, 2, c.has_deactivated_at() ? &c.deactivated_at() : nullptr);
    s.setInt(3, c.block_reason());
    s.setString(4, c.replaced_by_card_number());
    s.setString(5, c.card_number());
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<v1::Consents> GetConsents(const std::string& member_id) override {
    v1::Consents out;
    out.set_member_id(member_id);
    {
      auto& s = tx_.Prepare(kSelectDocuments);
      s.setString(1, member_id);
      std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
      if (!rs->next()) return absl::NotFoundError(absl::StrCat("member ", member_id, " not found"));
      out.set_terms_version(Str(*rs, 1));
      ReadTime(*rs, 2, out.mutable_terms_accepted_at());
      out.set_privacy_version(Str(*rs, 3));
      ReadTime(*rs, 4, out.mutable_privacy_accepted_at());
    }
    auto& s = tx_.Prepare(kSelectConsents);
    s.setString(1, member_id);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    while (rs->next()) {
      const int kind = rs->getInt(1);
      if (kind == 1) {
        v1::ChannelConsent* c = out.add_channel_consents();
        c->set_channel(static_cast<v1::ContactChannel>(rs->getInt(2)));
        c->set_partner_id(Str(*rs, 3));
        c->set_granted(rs->getBoolean(4));
        ReadTime(*rs, 5, c->mutable_updated_at());
        c->set_source(static_cast<v1::ConsentSource>(rs->getInt(6)));
      } else {
        v1::DataSharingConsent* d = out.add_data_sharing();
        d->set_partner_id(Str(*rs, 3));
        d->set_granted(rs->getBoolean(4));
        ReadTime(*rs, 5, d->mutable_updated_at());
        d->set_source(static_cast<v1::ConsentSource>(rs->getInt(6)));
      }
    }
    return out;
  }

  absl::Status PutChannelConsent(const std::string& member_id, const v1::ChannelConsent& c) override {
    return PutConsent(member_id, 1, c.channel(), c.partner_id(), c.granted(), c.updated_at(), c.source());
  }

  absl::Status PutDataSharing(const std::string& member_id, const v1::DataSharingConsent& d) override {
    return PutConsent(member_id, 2, 0, d.partner_id(), d.granted(), d.updated_at(), d.source());
  }

  absl::Status SetDocumentVersions(const std::string& member_id, const v1::Consents& docs) override {
    auto& s = tx_.Prepare(kSetDocuments);
    s.setString(1, docs.terms_version());
    SetTime(s, 2, docs.terms_accepted_at());
    s.setString(3, docs.privacy_version());
    SetTime(s, 4, docs.privacy_accepted_at());
    s.setString(5, member_id);
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::Status InsertConsentEvent(const std::string& member_id, const v1::ConsentEvent& e) override {
    auto& s = tx_.Prepare(kInsertConsentEvent);
    s.setString(1, e.consent_event_id());
    s.setString(2, member_id);
    SetTime(s, 3, e.occurred_at());
    s.setInt(4, e.kind());
    s.setInt(5, e.source());
    s.setString(6, e.actor_key_id());
    s.setInt(7, e.channel());
    s.setString(8, e.partner_id());
    s.setBoolean(9, e.granted());
    s.setString(10, e.document_version());
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<v1::ConsentEvent>> ListConsentEvents(const std::string& member_id,
                                                                   int limit) override {
    auto& s = tx_.Prepare(kSelectConsentEvents);
    s.setString(1, member_id);
    s.setInt(2, limit);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<v1::ConsentEvent> out;
    while (rs->next()) {
      v1::ConsentEvent& e = out.emplace_back();
      e.set_consent_event_id(Str(*rs, 1));
      ReadTime(*rs, 2, e.mutable_occurred_at());
      e.set_kind(static_cast<v1::ConsentEventKind>(rs->getInt(3)));
      e.set_source(static_cast<v1::ConsentSource>(rs->getInt(4)));
      e.set_actor_key_id(Str(*rs, 5));
      e.set_channel(static_cast<v1::ContactChannel>(rs->getInt(6)));
      e.set_partner_id(Str(*rs, 7));
      e.set_granted(rs->getBoolean(8));
      e.set_document_version(Str(*rs, 9));
    }
    return out;
  }

  absl::StatusOr<bool> SharesWith(const std::string& member_id, const std::string& partner_id) override {
    auto& s = tx_.Prepare(kSharesWith);
    s.setString(1, member_id);
    s.setString(2, partner_id);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    return rs->next() && rs->getBoolean(1);
  }

  absl::StatusOr<v1::TierLadder> GetLadder(bool for_update) override {
    v1::TierLadder ladder;
    {
      auto& s = tx_.Prepare(for_update ? kSelectLadderForUpdate : kSelectLadder);
      std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
      if (!rs->next()) return absl::InternalError("tier ladder row missing");
      ladder.set_version(rs->getInt64(1));
      ladder.set_qualification_window_months(rs->getInt(2));
      ReadTime(*rs, 3, ladder.mutable_updated_at());
    }
    auto& s = tx_.Prepare(kSelectTiers);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    while (rs->next()) {
      v1::TierDefinition* t = ladder.add_tiers();
      t->set_tier_id(Str(*rs, 1));
      t->set_name(Str(*rs, 2));
      t->set_rank(rs->getInt(3));
      t->set_qualifying_points_threshold(rs->getInt64(4));
      t->set_tier_multiplier_bp(rs->getInt64(5));
      t->set_retention_months(rs->getInt(6));
      if (!rs->isNull(7)) {
        t->mutable_annual_fee()->set_amount_minor(rs->getInt64(7));
        t->mutable_annual_fee()->set_currency(Str(*rs, 8));
      }
    }
    return ladder;
  }

  absl::Status SaveLadder(const v1::TierLadder& ladder) override {
    auto& up = tx_.Prepare(kUpdateLadder);
    up.setInt64(1, ladder.version());
    up.setInt(2, ladder.qualification_window_months());
    SetTime(up, 3, ladder.updated_at());
    up.executeUpdate();
    tx_.Prepare(kDeleteTiers).executeUpdate();
    for (const auto& t : ladder.tiers()) {
      auto& s = tx_.Prepare(kInsertTier);
      s.setString(1, t.tier_id());
      s.setString(2, t.name());
      s.setInt(3, t.rank());
      s.setInt64(4, t.qualifying_points_threshold());
      s.setInt64(5, t.tier_multiplier_bp());
      s.setInt(6, t.retention_months());
      if (t.has_annual_fee()) {
        s.setInt64(7, t.annual_fee().amount_minor());
        s.setString(8, t.annual_fee().currency());
      } else {
        s.setNull(7, 0);
        s.setNull(8, 0);
      }
      s.executeUpdate();
    }
    return absl::OkStatus();
  }

  absl::Status InsertTierChange(const v1::TierChange& c) override {
    auto& s = tx_.Prepare(kInsertTierChange);
    s.setString(1, c.tier_change_id());
    s.setString(2, c.member_id());
    s.setString(3, c.from_tier_id());
    s.setString(4, c.to_tier_id());
    s.setInt(5, c.reason());
    s.setInt64(6, c.qualifying_points());
    SetOptionalTime(s, 7, c.has_window_start_time() ? &c.window_start_time() : nullptr);
    SetOptionalTime(s, 8, c.has_window_end_time() ? &c.window_end_time() : nullptr);
    SetTime(s, 9, c.changed_at());
    SetOptionalTime(s, 10, c.has_valid_until() ? &c.valid_until() : nullptr);
    s.setString(11, c.actor_key_id());
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::pair<int64_t, v1::TierChange>>> ListTierChanges(
      const std::string& member_id, PageCursor cursor, int limit) override {
    auto& s = tx_.Prepare(kSelectTierChanges);
    s.setString(1, member_id);
    s.setInt64(2, cursor.before_id > 0 ? cursor.before_id : INT64_MAX);
    s.setInt(3, limit);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<std::pair<int64_t, v1::TierChange>> out;
    while (rs->next()) out.emplace_back(rs->getInt64(1), ReadTierChange(*rs));
    return out;
  }

  absl::Status InsertReferral(const v1::Referral& r) override {
    auto& s = tx_.Prepare(kInsertReferral);
    s.setString(1, r.referral_id());
    s.setString(2, r.referrer_member_id());
    s.setString(3, r.referred_member_id());
    s.setString(4, r.referral_code());
    s.setInt(5, r.state());
    SetTime(s, 6, r.enrolled_at());
    SetOptionalTime(s, 7, r.has_rewarded_at() ? &r.rewarded_at() : nullptr);
    s.setInt64(8, r.reward_points());
    s.setString(9, r.reward_transfer_id());
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::pair<int64_t, v1::Referral>>> ListReferrals(const std::string& referrer,
                                                                              PageCursor cursor,
                                                                              int limit) override {
    auto& s = tx_.Prepare(kSelectReferrals);
    s.setString(1, referrer);
    s.setInt64(2, cursor.before_id > 0 ? cursor.before_id : INT64_MAX);
    s.setInt(3, limit);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<std::pair<int64_t, v1::Referral>> out;
    while (rs->next()) out.emplace_back(rs->getInt64(1), ReadReferral(*rs));
    return out;
  }

  absl::StatusOr<std::optional<v1::Referral>> GetReferralOf(const std::string& referred) override {
    auto& s = tx_.Prepare(kSelectReferralOf);
    s.setString(1, referred);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    if (!rs->next()) return std::nullopt;
    return ReadReferral(*rs);
  }

  absl::StatusOr<int64_t> CountReferrals(const std::string& referrer) override {
    return SelectCount(kCountReferrals, referrer);
  }

  absl::StatusOr<std::vector<v1::MemberSnapshot>> ListSnapshots(int64_t after_version, int limit) override {
    auto& s = tx_.Prepare(kSelectSnapshots);
    s.setInt64(1, after_version);
    s.setInt(2, limit);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<v1::MemberSnapshot> out;
    while (rs->next()) ReadSnapshot(*rs, &out.emplace_back());
    return out;
  }

  absl::StatusOr<std::optional<v1::MemberSnapshot>> GetSnapshot(const std::string& member_id) override {
    auto& s = tx_.Prepare(kSelectSnapshot);
    s.setString(1, member_id);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    if (!rs->next()) return std::nullopt;
    v1::MemberSnapshot snap;
    ReadSnapshot(*rs, &snap);
    return snap;
  }

  // A row of LOYALTY_SNAPSHOT_COLUMNS.
  static void ReadSnapshot(sql::ResultSet& rs, v1::MemberSnapshot* snap) {
    snap->set_member_id(Str(rs, 1));
    snap->set_status(static_cast<v1::MemberStatus>(rs.getInt(2)));
    snap->set_tier_id(Str(rs, 3));
    snap->set_birth_month(rs.getInt(4));
    snap->set_enrolling_partner_id(Str(rs, 5));
    ReadTime(rs, 6, snap->mutable_enrolled_at());
    snap->set_version(rs.getInt64(7));
    if (!rs.isNull(8)) {
      std::vector<std::string> ids = absl::StrSplit(Str(rs, 8), ',', absl::SkipEmpty());
      std::sort(ids.begin(), ids.end());
      for (std::string& id : ids) snap->add_segment_ids(std::move(id));
    }
  }

  absl::StatusOr<int64_t> LockCursor(const std::string& name) override {
    auto& s = tx_.Prepare(kLockCursor);
    s.setString(1, name);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    if (!rs->next()) return absl::InternalError(absl::StrCat("feed cursor ", name, " missing"));
    return rs->getInt64(1);
  }

  absl::Status SetCursor(const std::string& name, int64_t position, absl::Time now) override {
    auto& s = tx_.Prepare(kSetCursor);
    s.setInt64(1, position);
    s.setString(2, SqlTime(now));
    s.setString(3, name);
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::Status RecordActivity(const std::string& member_id, absl::Time at) override {
    auto& s = tx_.Prepare(kRecordActivity);
    s.setString(1, SqlTime(at));
    s.setString(2, SqlTime(at));
    s.setString(3, member_id);
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<bool> MarkReferralRewardDue(const std::string& referred_member_id) override {
    auto& s = tx_.Prepare(kMarkReferralDue);
    s.setString(1, referred_member_id);
    return s.executeUpdate() > 0;
  }

  absl::StatusOr<std::vector<v1::Referral>> ListDueReferrals(int limit) override {
    auto& s = tx_.Prepare(kSelectDueReferrals);
    s.setInt(1, limit);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<v1::Referral> out;
    while (rs->next()) out.push_back(ReadReferral(*rs));
    return out;
  }

  absl::Status CompleteReferral(const v1::Referral& r) override {
    auto& s = tx_.Prepare(kCompleteReferral);
    s.setInt(1, r.state());
    SetOptionalTime(s, 2, r.has_rewarded_at() ? &r.rewarded_at() : nullptr);
    s.setInt64(3, r.reward_points());
    s.setString(4, r.reward_transfer_id());
    s.setString(5, r.referral_id());
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<bool> ReferralRewardAttempted(const std::string& referral_id) override {
    auto& s = tx_.Prepare(kSelectReferralAttempted);
    s.setString(1, referral_id);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    return rs->next() && rs->getInt(1) != 0;
  }

  absl::Status MarkReferralRewardAttempted(const std::string& referral_id) override {
    auto& s = tx_.Prepare(kMarkReferralAttempted);
    s.setString(1, referral_id);
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::Status InsertSegment(const v1::Segment& seg) override {
    auto& s = tx_.Prepare(kInsertSegment);
    std::istringstream filter;
    s.setString(1, seg.segment_id());
    s.setString(2, seg.name());
    s.setString(3, seg.description());
    SetBlob(s, 4, seg.filter().SerializeAsString(), filter);
    SetTime(s, 5, seg.created_at());
    SetTime(s, 6, seg.updated_at());
    s.setInt64(7, seg.version());
    s.setInt64(8, seg.member_count());
    SetOptionalTime(s, 9, seg.has_refreshed_at() ? &seg.refreshed_at() : nullptr);
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::Status UpdateSegment(const v1::Segment& seg) override {
    auto& s = tx_.Prepare(kUpdateSegment);
    std::istringstream filter;
    s.setString(1, seg.name());
    s.setString(2, seg.description());
    SetBlob(s, 3, seg.filter().SerializeAsString(), filter);
    SetTime(s, 4, seg.updated_at());
    s.setInt64(5, seg.version());
    s.setInt64(6, seg.member_count());
    SetOptionalTime(s, 7, seg.has_refreshed_at() ? &seg.refreshed_at() : nullptr);
    s.setString(8, seg.segment_id());
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<v1::Segment>> GetSegment(const std::string& id, bool for_update) override {
    auto& s = tx_.Prepare(for_update ? kSelectSegmentForUpdate : kSelectSegment);
    s.setString(1, id);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    if (!rs->next()) return std::nullopt;
    return ReadSegment(*rs);
  }

  absl::StatusOr<std::vector<v1::Segment>> ListSegments(const std::string& after, int limit) override {
    auto& s = tx_.Prepare(kSelectSegments);
    s.setString(1, after);
    s.setInt(2, limit);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<v1::Segment> out;
    while (rs->next()) {
      ASSIGN_OR_RETURN(v1::Segment seg, ReadSegment(*rs));
      out.push_back(std::move(seg));
    }
    return out;
  }

  absl::StatusOr<std::vector<SegmentCandidate>> ScanMembers(const std::string& after, int limit) override {
    auto& s = tx_.Prepare(kScanMembers);
    s.setString(1, after);
    s.setInt(2, limit);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<SegmentCandidate> out;
    while (rs->next()) {
      SegmentCandidate& c = out.emplace_back();
      c.member_id = Str(*rs, 1);
      c.tier_id = Str(*rs, 2);
      c.enrolling_partner_id = Str(*rs, 3);
      c.preferred_language = Str(*rs, 4);
      c.status = static_cast<v1::MemberStatus>(rs->getInt(5));
      c.birth_month = rs->getInt(6);
      if (!rs->isNull(7)) c.last_activity_at = ParseSqlTime(Str(*rs, 7));
    }
    return out;
  }

  absl::StatusOr<std::vector<GrantedChannel>> GrantedChannelsInRange(const std::string& after,
                                                                     const std::string& last) override {
    auto& s = tx_.Prepare(kGrantedChannelsInRange);
    s.setString(1, after);
    s.setString(2, last);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<GrantedChannel> out;
    while (rs->next()) {
      out.push_back({Str(*rs, 1), static_cast<v1::ContactChannel>(rs->getInt(2)), Str(*rs, 3)});
    }
    return out;
  }

  absl::StatusOr<SegmentRefreshCursor> LockSegmentRefresh() override {
    auto& s = tx_.Prepare(kLockSegmentRefresh);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    if (!rs->next()) return absl::InternalError("segment_refresh row missing");
    return SegmentRefreshCursor{rs->getInt64(1), Str(*rs, 2)};
  }

  absl::Status SetSegmentRefresh(const SegmentRefreshCursor& cursor, absl::Time now) override {
    auto& s = tx_.Prepare(kSetSegmentRefresh);
    s.setInt64(1, cursor.pass);
    s.setString(2, cursor.after_member_id);
    s.setString(3, SqlTime(now));
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::Status BeginSegmentPass(absl::Time now) override {
    auto& start = tx_.Prepare(kStartSegmentRefresh);
    start.setString(1, SqlTime(now));
    start.executeUpdate();
    tx_.Prepare(kPinSegmentVersions).executeUpdate();
    return absl::OkStatus();
  }

  absl::Status CompleteSegmentPass(absl::Time now) override {
    auto& s = tx_.Prepare(kCompleteSegments);
    s.setString(1, SqlTime(now));
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<SegmentMembership>> SegmentMembersInRange(const std::string& after,
                                                                       const std::string& last) override {
    auto& s = tx_.Prepare(kSegmentMembersInRange);
    s.setString(1, after);
    s.setString(2, last);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<SegmentMembership> out;
    while (rs->next()) out.push_back({Str(*rs, 1), Str(*rs, 2)});
    return out;
  }

  absl::Status AddSegmentMember(const SegmentMembership& row, absl::Time now) override {
    auto& s = tx_.Prepare(kInsertSegmentMember);
    s.setString(1, row.segment_id);
    s.setString(2, row.member_id);
    s.setString(3, SqlTime(now));
    // Only a refresh chunk writes these rows, under the segment_refresh
    // lock; a duplicate means another writer slipped past it (Galera
    // replicas on two nodes): retry, and the diff then sees the row.
    return db::ExecuteUnlessDuplicate(s, absl::AbortedError("segment member added concurrently"));
  }

  absl::Status RemoveSegmentMember(const SegmentMembership& row) override {
    auto& s = tx_.Prepare(kDeleteSegmentMember);
    s.setString(1, row.segment_id);
    s.setString(2, row.member_id);
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::Status BumpSnapshotVersions(const std::vector<std::string>& member_ids) override {
    // Member rows first, then the feed counter: the order UpdateMember takes
    // them in, so the two cannot deadlock.
    std::vector<const std::string*> found;
    for (const std::string& id : member_ids) {
      auto& lock = tx_.Prepare(kLockMemberRow);
      lock.setString(1, id);
      std::unique_ptr<sql::ResultSet> rs(lock.executeQuery());
      if (rs->next()) found.push_back(&id);
    }
    if (found.empty()) return absl::OkStatus();
    ASSIGN_OR_RETURN(int64_t version, NextFeedVersions(static_cast<int64_t>(found.size())));
    for (const std::string* id : found) {
      auto& s = tx_.Prepare(kSetSnapshotVersion);
      s.setInt64(1, version++);
      s.setString(2, *id);
      s.executeUpdate();
    }
    return absl::OkStatus();
  }

  absl::Status InsertAudit(const std::string& member_id, const common::v1::AuditEvent& e) override {
    auto& s = tx_.Prepare(kInsertAudit);
    s.setString(1, e.audit_event_id());
    SetTime(s, 2, e.occurred_at());
    s.setString(3, e.actor_key_id());
    s.setInt(4, e.actor_role());
    s.setString(5, e.actor_partner_id());
    s.setString(6, e.action());
    s.setString(7, e.entity_type());
    s.setString(8, e.entity_id());
    s.setString(9, member_id);
    s.setString(10, e.before_json());
    s.setString(11, e.after_json());
    s.setString(12, e.idempotency_key());
    s.setString(13, e.reason());
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::pair<int64_t, common::v1::AuditEvent>>> ListAudit(
      const AuditFilter& f, PageCursor cursor, int limit) override {
    // Each optional filter is a fixed predicate with a "no filter" sentinel,
    // so the statement text (and its plan cache entry) is always the same.
    static constexpr absl::string_view kSql =
        "SELECT " LOYALTY_AUDIT_COLUMNS " FROM audit_events WHERE id < ? "
        "AND (? = '' OR member_id = ?) AND (? = '' OR actor_key_id = ?) "
        "AND occurred_at >= ? AND occurred_at < ? ORDER BY id DESC LIMIT ?";
    auto& s = tx_.Prepare(kSql);
    s.setInt64(1, cursor.before_id > 0 ? cursor.before_id : INT64_MAX);
    s.setString(2, f.member_id);
    s.setString(3, f.member_id);
    s.setString(4, f.actor_key_id);
    s.setString(5, f.actor_key_id);
    s.setString(6, SqlTime(f.start.value_or(absl::FromUnixSeconds(0))));
    s.setString(7, SqlTime(f.end.value_or(absl::FromCivil(absl::CivilSecond(9999, 1, 1), absl::UTCTimeZone()))));
    s.setInt(8, limit);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    std::vector<std::pair<int64_t, common::v1::AuditEvent>> out;
    while (rs->next()) out.emplace_back(rs->getInt64(1), ReadAudit(*rs));
    return out;
  }

 private:
  absl::StatusOr<std::optional<IdempotencyRecord>> Insert(const IdempotencyRecord& r, bool completed) {
    auto& s = tx_.Prepare(kInsertIdempotency);
    std::istringstream request, response;
    s.setString(1, r.scope);
    s.setString(2, r.key);
    s.setString(3, r.method);
    s.setString(4, r.fingerprint);
    SetBlob(s, 5, r.request, request);
    s.setInt(6, r.status_code);
    s.setString(7, r.status_message);
    s.setString(8, r.status_detail);
    SetBlob(s, 9, r.response, response);
    s.setString(10, r.member_id);
    s.setBoolean(11, completed);
    // Another request with the same key committed first: retry the whole
    // transaction, which then finds its record.
    RETURN_IF_ERROR(db::ExecuteUnlessDuplicate(s, absl::AbortedError("idempotency key claimed concurrently")));
    return std::nullopt;
  }

  absl::StatusOr<int64_t> NextFeedVersion() { return NextFeedVersions(1); }

  // Reserves `count` consecutive feed versions and returns the first. The
  // counter row stays locked until commit, so versions follow commit order.
  absl::StatusOr<int64_t> NextFeedVersions(int64_t count) {
    auto& sel = tx_.Prepare(kNextFeedVersion);
    std::unique_ptr<sql::ResultSet> rs(sel.executeQuery());
    if (!rs->next()) return absl::InternalError("feed_head row missing");
    const int64_t first = rs->getInt64(1) + 1;
    rs.reset();
    auto& up = tx_.Prepare(kSetFeedVersion);
    up.setInt64(1, first + count - 1);
    up.executeUpdate();
    return first;
  }

  // Email, phone and referral code are unique; a collision here means a
  // concurrent writer got there between our check and our write, so the
  // transaction is retried and the check then sees the other row.
  absl::Status ExecuteUnique(sql::PreparedStatement& s, absl::string_view what) {
    return db::ExecuteUnlessDuplicate(s, absl::AbortedError(absl::StrCat(what, ": a unique value was taken concurrently")));
  }

  absl::Status PutConsent(const std::string& member_id, int kind, int channel, const std::string& partner_id,
                          bool granted, const google::protobuf::Timestamp& at, int source) {
    auto& s = tx_.Prepare(kPutConsent);
    s.setString(1, member_id);
    s.setInt(2, kind);
    s.setInt(3, channel);
    s.setString(4, partner_id);
    s.setBoolean(5, granted);
    SetTime(s, 6, at);
    s.setInt(7, source);
    s.executeUpdate();
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<std::string>> SelectOneString(absl::string_view sql, const std::string& arg) {
    auto& s = tx_.Prepare(sql);
    s.setString(1, arg);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    if (!rs->next()) return std::nullopt;
    return Str(*rs, 1);
  }

  absl::StatusOr<int64_t> SelectCount(absl::string_view sql, const std::string& arg) {
    auto& s = tx_.Prepare(sql);
    s.setString(1, arg);
    std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
    return rs->next() ? rs->getInt64(1) : 0;
  }

  db::Transaction& tx_;
};

class MysqlMembershipStore final : public MembershipStore {
 public:
  explicit MysqlMembershipStore(db::ConnectionPool& pool) : pool_(pool) {}

  absl::Status Run(absl::string_view context, const std::function<absl::Status(MembershipTx&)>& body) override {
    return db::RunInTransaction(pool_, context, [&](db::Transaction& tx) {
      MysqlTx mtx(tx);
      return body(mtx);
    });
  }

 private:
  db::ConnectionPool& pool_;
};

}  // namespace

std::unique_ptr<MembershipStore> NewMysqlMembershipStore(db::ConnectionPool& pool) {
  return std::make_unique<MysqlMembershipStore>(pool);
}

}  // namespace loyalty::membership
