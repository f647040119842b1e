// MysqlTx: members, cards and the snapshot feed (see mysql_membership_tx.h).
#include "services/membership/mysql_membership_tx.h"

#include <algorithm>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/db/mysql_error.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"

namespace loyalty::membership::mysql_internal {
namespace {

#define LOYALTY_MEMBER_COLUMNS                                                                  \
  "member_id, status, status_reason, given_name, family_name, email, phone, birth_date, "      \
  "preferred_language, enrolling_partner_id, referral_code, referred_by_member_id, tier_id, " \
  "tier_basis, tier_since, tier_retained_until, tier_paid_until, tier_qualifying_points, "     \
  "tier_evaluated_at, created_at, updated_at, version, erased_at"
#define LOYALTY_CARD_COLUMNS \
  "card_number, member_id, state, issued_at, deactivated_at, block_reason, replaced_by_card_number"

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

// A row of LOYALTY_SNAPSHOT_COLUMNS.
void ReadSnapshot(sql::ResultSet& rs, v1::MemberSnapshot* snap) {
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

}  // namespace

absl::StatusOr<std::optional<v1::Member>> MysqlTx::GetMember(const std::string& member_id, bool for_update) {
  auto& s = tx_.Prepare(for_update ? kSelectMemberForUpdate : kSelectMember);
  s.setString(1, member_id);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  if (!rs->next()) return std::nullopt;
  return ReadMember(*rs);
}

absl::StatusOr<std::optional<std::string>> MysqlTx::FindMemberId(LookupKind kind, const std::string& value) {
  return SelectOneString(kind == LookupKind::kEmail ? kSelectByEmail : kSelectByPhone, value);
}

absl::StatusOr<std::optional<std::string>> MysqlTx::FindMemberIdByReferralCode(const std::string& code) {
  return SelectOneString(kSelectByReferralCode, code);
}

absl::Status MysqlTx::InsertMember(const v1::Member& m, const v1::Consents& docs) {
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

absl::Status MysqlTx::UpdateMember(const v1::Member& m, bool snapshot_changed) {
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

absl::StatusOr<std::vector<std::string>> MysqlTx::ListOpenMemberIds(const std::string& after, int limit) {
  auto& s = tx_.Prepare(kListOpenMembers);
  s.setString(1, after);
  s.setInt(2, limit);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  std::vector<std::string> out;
  while (rs->next()) out.push_back(Str(*rs, 1));
  return out;
}

absl::StatusOr<int64_t> MysqlTx::CountMembersHoldingTier(const std::string& tier_id) {
  return SelectCount(kCountTierHolders, tier_id);
}

absl::Status MysqlTx::ScrubPersonalData(const std::string& member_id) {
  for (absl::string_view sql : {kDeleteCards, kScrubIdempotency, kScrubAudit}) {
    auto& s = tx_.Prepare(sql);
    s.setString(1, member_id);
    s.executeUpdate();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::Card>> MysqlTx::GetCard(const std::string& number, bool for_update) {
  auto& s = tx_.Prepare(for_update ? kSelectCardForUpdate : kSelectCard);
  s.setString(1, number);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  if (!rs->next()) return std::nullopt;
  return ReadCard(*rs);
}

absl::StatusOr<std::vector<v1::Card>> MysqlTx::ListCards(const std::string& member_id) {
  auto& s = tx_.Prepare(kSelectCards);
  s.setString(1, member_id);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  std::vector<v1::Card> out;
  while (rs->next()) out.push_back(ReadCard(*rs));
  return out;
}

absl::Status MysqlTx::InsertCard(const v1::Card& c) {
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

absl::Status MysqlTx::UpdateCard(const v1::Card& c) {
  auto& s = tx_.Prepare(kUpdateCard);
  s.setInt(1, c.state());
  SetOptionalTime(s, 2, c.has_deactivated_at() ? &c.deactivated_at() : nullptr);
  s.setInt(3, c.block_reason());
  s.setString(4, c.replaced_by_card_number());
  s.setString(5, c.card_number());
  s.executeUpdate();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::MemberSnapshot>> MysqlTx::ListSnapshots(int64_t after_version, int limit) {
  auto& s = tx_.Prepare(kSelectSnapshots);
  s.setInt64(1, after_version);
  s.setInt(2, limit);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  std::vector<v1::MemberSnapshot> out;
  while (rs->next()) ReadSnapshot(*rs, &out.emplace_back());
  return out;
}

absl::StatusOr<std::optional<v1::MemberSnapshot>> MysqlTx::GetSnapshot(const std::string& member_id) {
  auto& s = tx_.Prepare(kSelectSnapshot);
  s.setString(1, member_id);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  if (!rs->next()) return std::nullopt;
  v1::MemberSnapshot snap;
  ReadSnapshot(*rs, &snap);
  return snap;
}

}  // namespace loyalty::membership::mysql_internal
