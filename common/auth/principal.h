#pragma once
// Who is calling: the identity an API key (or, later, a client certificate)
// resolves to. Produced once per call at the gRPC boundary and passed into
// domain code, which must not look at gRPC metadata itself.

#include <string>
#include <utility>

#include "loyalty/common/v1/common.pb.h"

namespace loyalty::auth {

using Role = common::v1::Role;

struct Principal {
  // Public id of the credential (the <key_id> of lk_<key_id>_<secret>).
  // Appears in logs and audit records; never a secret.
  std::string key_id;
  Role role = common::v1::ROLE_UNSPECIFIED;
  // Set if and only if role == ROLE_PARTNER.
  std::string partner_id;

  bool is_partner() const { return role == common::v1::ROLE_PARTNER; }
  bool is_backoffice() const { return role == common::v1::ROLE_BACKOFFICE; }
  bool is_finance() const { return role == common::v1::ROLE_FINANCE; }
  bool is_service() const { return role == common::v1::ROLE_SERVICE; }

  // Idempotency keys are scoped to the credential that sent them.
  std::string idempotency_scope() const { return "key:" + key_id; }

  static Principal Partner(std::string key_id, std::string partner_id) {
    return Principal{std::move(key_id), common::v1::ROLE_PARTNER, std::move(partner_id)};
  }
  static Principal Of(std::string key_id, Role role) {
    return Principal{std::move(key_id), role, {}};
  }
};

}  // namespace loyalty::auth
