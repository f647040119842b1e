// MysqlTx: consents and accepted documents (see mysql_membership_tx.h).
#include "services/membership/mysql_membership_tx.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "common/time/proto_time.h"

namespace loyalty::membership::mysql_internal {
namespace {

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

}  // namespace

absl::StatusOr<v1::Consents> MysqlTx::GetConsents(const std::string& member_id) {
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

absl::Status MysqlTx::PutChannelConsent(const std::string& member_id, const v1::ChannelConsent& c) {
  return PutConsent(member_id, 1, c.channel(), c.partner_id(), c.granted(), c.updated_at(), c.source());
}

absl::Status MysqlTx::PutDataSharing(const std::string& member_id, const v1::DataSharingConsent& d) {
  return PutConsent(member_id, 2, 0, d.partner_id(), d.granted(), d.updated_at(), d.source());
}

absl::Status MysqlTx::SetDocumentVersions(const std::string& member_id, const v1::Consents& docs) {
  auto& s = tx_.Prepare(kSetDocuments);
  s.setString(1, docs.terms_version());
  SetTime(s, 2, docs.terms_accepted_at());
  s.setString(3, docs.privacy_version());
  SetTime(s, 4, docs.privacy_accepted_at());
  s.setString(5, member_id);
  s.executeUpdate();
  return absl::OkStatus();
}

absl::Status MysqlTx::InsertConsentEvent(const std::string& member_id, const v1::ConsentEvent& e) {
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

absl::StatusOr<std::vector<v1::ConsentEvent>> MysqlTx::ListConsentEvents(const std::string& member_id,
                                                                         int limit) {
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

absl::StatusOr<bool> MysqlTx::SharesWith(const std::string& member_id, const std::string& partner_id) {
  auto& s = tx_.Prepare(kSharesWith);
  s.setString(1, member_id);
  s.setString(2, partner_id);
  std::unique_ptr<sql::ResultSet> rs(s.executeQuery());
  return rs->next() && rs->getBoolean(1);
}

absl::Status MysqlTx::PutConsent(const std::string& member_id, int kind, int channel, const std::string& partner_id,
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

}  // namespace loyalty::membership::mysql_internal
