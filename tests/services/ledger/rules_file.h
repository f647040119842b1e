#pragma once
// Earn-rules files for tests that run the ledger binary (--earn_rules_file).

#include <string>

#include "loyalty/ledger/internal/v1/earn_rules_file.pb.h"

namespace loyalty::ledger::testing {

// An active partner earning in EUR at 1 point per EUR (contract
// "<partner_id>-c1", in force since 1970).
void AddPartner(internal::v1::EarnRulesFile& file, const std::string& partner_id);

// Writes `file` as JSON to a new temporary file and returns its path
// (ADD_FAILURE on error).
std::string WriteRulesFile(const internal::v1::EarnRulesFile& file);

}  // namespace loyalty::ledger::testing
