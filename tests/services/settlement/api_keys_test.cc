// ApiKeys (services/settlement/api_keys.h) on the real store.

#include "tests/services/settlement/settlement_fixture.h"

#include "absl/strings/str_cat.h"
#include "common/auth/api_key.h"
#include "common/crypto/sha256.h"
#include "common/time/proto_time.h"
#include "gtest/gtest.h"

namespace loyalty::settlement {
namespace {

TEST_F(SettlementTest, ApiKeysAreShownOnceStoredHashedRotatedAndRevoked) {
  Create("vet");
  v1::CreateApiKeyRequest c;
  c.set_idempotency_key("key-1");
  c.set_role(common::v1::ROLE_PARTNER);
  c.set_partner_id("vet");
  c.set_label("clinic POS 3");
  auto created = settlement_->api_keys().CreateApiKey(backoffice_, c);
  ASSERT_TRUE(created.ok()) << created.status();
  auto parsed = auth::ParseApiKey(created->secret());
  ASSERT_TRUE(parsed.has_value()) << created->secret();
  EXPECT_EQ(parsed->key_id, created->api_key().key_id());
  auto replay = settlement_->api_keys().CreateApiKey(backoffice_, c);
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->api_key().key_id(), created->api_key().key_id());
  EXPECT_TRUE(replay->secret().empty());
  // The secret is nowhere in settlement's tables.
  for (const char* table : {"api_keys", "idempotency", "audit_events"}) {
    const std::string column = std::string(table) == "idempotency" ? "response" : "body";
    auto n = loyalty::testing::QueryIntForTest(
        db_->pool(), absl::StrCat("SELECT COUNT(*) FROM ", table, " WHERE INSTR(", column, ", '", parsed->secret, "') > 0"));
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(*n, 0) << table;
  }

  const Principal svc = Principal::Of("svc", common::v1::ROLE_SERVICE);
  auto authenticate = [&](const std::string& secret) {
    v1::AuthenticateApiKeyRequest a;
    a.set_key_hash(crypto::Sha256Hex(auth::ParseApiKey(secret)->secret));
    return settlement_->api_keys().AuthenticateApiKey(svc, a);
  };
  auto who = authenticate(created->secret());
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->key_id(), created->api_key().key_id());
  EXPECT_EQ(who->role(), common::v1::ROLE_PARTNER);
  EXPECT_EQ(who->partner_id(), "vet");
  EXPECT_EQ(who->partner_status(), v1::PARTNER_STATUS_ONBOARDING);
  EXPECT_EQ(who->cache_ttl_seconds(), 30);
  v1::AuthenticateApiKeyRequest bad;
  bad.set_key_hash("XYZ");
  EXPECT_EQ(settlement_->api_keys().AuthenticateApiKey(svc, bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad.set_key_hash(std::string(64, '0'));
  EXPECT_EQ(settlement_->api_keys().AuthenticateApiKey(svc, bad).status().code(), absl::StatusCode::kNotFound);

  v1::CreateApiKeyRequest wrong = c;
  wrong.set_idempotency_key("key-2");
  wrong.clear_partner_id();
  EXPECT_EQ(settlement_->api_keys().CreateApiKey(backoffice_, wrong).status().code(),
            absl::StatusCode::kInvalidArgument);
  wrong.set_role(common::v1::ROLE_FINANCE);
  wrong.set_partner_id("vet");
  EXPECT_EQ(settlement_->api_keys().CreateApiKey(backoffice_, wrong).status().code(),
            absl::StatusCode::kInvalidArgument);
  wrong.set_role(common::v1::ROLE_PARTNER);
  wrong.set_partner_id("nobody");
  EXPECT_EQ(settlement_->api_keys().CreateApiKey(backoffice_, wrong).status().code(), absl::StatusCode::kNotFound);

  // Rotation: the old key works for the grace period, then expires.
  v1::RotateApiKeyRequest rot;
  rot.set_idempotency_key("rotate-1");
  rot.set_key_id(created->api_key().key_id());
  rot.set_grace_period_seconds(60);
  auto rotated = settlement_->api_keys().RotateApiKey(backoffice_, rot);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_FALSE(rotated->secret().empty());
  EXPECT_EQ(rotated->previous_api_key().state(), v1::API_KEY_STATE_ROTATING);
  EXPECT_EQ(rotated->previous_api_key().replaced_by_key_id(), rotated->api_key().key_id());
  EXPECT_EQ(rotated->api_key().replaces_key_id(), created->api_key().key_id());
  EXPECT_EQ(rotated->api_key().partner_id(), "vet");
  EXPECT_TRUE(authenticate(created->secret()).ok());
  EXPECT_TRUE(authenticate(rotated->secret()).ok());
  rot.set_idempotency_key("rotate-2");
  EXPECT_EQ(settlement_->api_keys().RotateApiKey(backoffice_, rot).status().code(),
            absl::StatusCode::kFailedPrecondition);
  clock_offset_ += absl::Minutes(2);
  EXPECT_EQ(authenticate(created->secret()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(authenticate(rotated->secret()).ok());

  v1::RevokeApiKeyRequest rev;
  rev.set_idempotency_key("revoke-1");
  rev.set_key_id(rotated->api_key().key_id());
  rev.set_reason("till stolen");
  auto revoked = settlement_->api_keys().RevokeApiKey(backoffice_, rev);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(revoked->api_key().state(), v1::API_KEY_STATE_REVOKED);
  EXPECT_EQ(authenticate(rotated->secret()).status().code(), absl::StatusCode::kNotFound);
  rev.set_idempotency_key("revoke-2");
  EXPECT_EQ(settlement_->api_keys().RevokeApiKey(backoffice_, rev).status().code(),
            absl::StatusCode::kFailedPrecondition);

  v1::ListApiKeysRequest list;
  list.set_partner_id("vet");
  auto active = settlement_->api_keys().ListApiKeys(backoffice_, list);
  ASSERT_TRUE(active.ok()) << active.status();
  EXPECT_EQ(active->api_keys_size(), 0);
  list.set_include_inactive(true);
  auto everything = settlement_->api_keys().ListApiKeys(backoffice_, list);
  ASSERT_TRUE(everything.ok());
  ASSERT_EQ(everything->api_keys_size(), 2);
  EXPECT_EQ(everything->api_keys(0).state(), v1::API_KEY_STATE_REVOKED);  // newest first
  EXPECT_EQ(everything->api_keys(1).state(), v1::API_KEY_STATE_EXPIRED);
}

}  // namespace
}  // namespace loyalty::settlement
