// loyalty-vet-pos: a vet clinic's till, as a reference integration of the
// partner SDK (partners/sdk). Copy it and replace the command line with your
// till's screens.
//
//   loyalty-vet-pos lookup  CARD
//   loyalty-vet-pos earn    CARD INVOICE AMOUNT [CATEGORY=AMOUNT ...]
//   loyalty-vet-pos redeem  CARD POINTS TILL_REF       authorise, then capture
//   loyalty-vet-pos return  TRANSFER_ID RETURN_REF [REFUND_AMOUNT]
//
// Options (before the command): --ledger=HOST:PORT (127.0.0.1:7102),
// --membership=HOST:PORT (127.0.0.1:7101), --partner=ID (vet-clinic),
// --currency=ISO (EUR). The API key comes from LOYALTY_API_KEY, never the
// command line. Amounts are decimals in the currency ("45.90").
//
// Idempotency keys come from the till's own references (invoice, till
// reference, return receipt), so running the same command again after a
// crash or a timeout never posts twice: the platform answers with the
// original result.
//
// Exit codes: 0 done; 1 refused (not enough points, unknown card...);
// 2 bad usage; 3 the platform is unreachable, try again.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "partners/cli_support/cli_support.h"
#include "partners/sdk/loyalty_sdk.h"

namespace {

namespace lv1 = ::loyalty::ledger::v1;
using loyalty::partners::DescribeBalance;
using loyalty::partners::Fail;
using loyalty::partners::Options;
using loyalty::partners::ParseAmount;

struct Settings {
  std::string ledger = "127.0.0.1:7102";
  std::string membership = "127.0.0.1:7101";
  std::string partner = "vet-clinic";
  std::string currency = "EUR";
  std::string api_key;
};

int Usage() {
  std::cerr << "usage: loyalty-vet-pos [--ledger=H:P] [--membership=H:P] [--partner=ID] [--currency=ISO]\n"
               "         lookup CARD\n"
               "       | earn CARD INVOICE AMOUNT [CATEGORY=AMOUNT ...]\n"
               "       | redeem CARD POINTS TILL_REF\n"
               "       | return TRANSFER_ID RETURN_REF [REFUND_AMOUNT]\n"
               "API key: LOYALTY_API_KEY\n";
  return 2;
}

// The member behind a card, or an exit code.
int MemberOfCard(const Settings& s, const std::string& card, std::string* member_id) {
  loyalty::sdk::MembershipClient membership(Options(s.membership, s.api_key));
  return loyalty::partners::MemberOfCard(membership, card, member_id);
}

int Lookup(const Settings& s, const std::vector<std::string>& args) {
  if (args.size() != 1) return Usage();
  loyalty::sdk::MembershipClient membership(Options(s.membership, s.api_key));
  auto found = membership.LookupByCard(args[0]);
  if (!found.ok()) return Fail(found.error());
  const auto& m = found->member();
  std::cout << "member " << m.member_id() << "  " << m.given_name() << " " << m.family_name() << "  tier "
            << (m.tier().tier_id().empty() ? "-" : m.tier().tier_id()) << "  status "
            << loyalty::membership::v1::MemberStatus_Name(m.status()) << "\n";
  loyalty::sdk::LedgerClient ledger(Options(s.ledger, s.api_key));
  auto balance = ledger.GetBalance(m.member_id());
  if (balance.ok()) {
    std::cout << "balance " << DescribeBalance(balance->balance()) << "\n";
  } else if (balance.error().code == loyalty::sdk::ErrorCode::kNotFound) {
    std::cout << "balance 0 points (never earned)\n";
  } else {
    return Fail(balance.error());
  }
  return 0;
}

int Earn(const Settings& s, const std::vector<std::string>& args) {
  if (args.size() < 3) return Usage();
  std::string member_id;
  if (int rc = MemberOfCard(s, args[0], &member_id); rc != 0) return rc;
  lv1::EarnRequest req;
  req.set_idempotency_key(absl::StrCat("earn:", args[1]));
  req.set_partner_id(s.partner);
  req.set_member_id(member_id);
  req.set_receipt_reference(args[1]);
  int64_t minor = 0;
  if (!ParseAmount(args[2], s.currency, &minor)) {
    std::cerr << "AMOUNT: not an amount in " << s.currency << ": " << args[2] << "\n";
    return 2;
  }
  req.mutable_amount()->set_amount_minor(minor);
  req.mutable_amount()->set_currency(s.currency);
  if (!loyalty::partners::ParseLines({args.begin() + 3, args.end()}, s.currency, req.mutable_lines())) return 2;
  loyalty::sdk::LedgerClient ledger(Options(s.ledger, s.api_key));
  auto earned = ledger.Earn(req);
  if (!earned.ok()) return Fail(earned.error());
  std::cout << "earned " << earned->points() << " points on invoice " << args[1] << " (transfer "
            << earned->transfer().transfer_id() << ")\n";
  const auto& b = earned->breakdown();
  std::cout << "  base " << b.base_points() << ", tier " << b.tier_bonus_points() << ", campaigns "
            << (earned->points() - b.base_points() - b.tier_bonus_points()) << "\n";
  std::cout << "balance " << DescribeBalance(earned->balance()) << "\n";
  return 0;
}

int Redeem(const Settings& s, const std::vector<std::string>& args) {
  if (args.size() != 3) return Usage();
  int64_t points = 0;
  if (!absl::SimpleAtoi(args[1], &points) || points <= 0) {
    std::cerr << "POINTS: want a positive whole number\n";
    return 2;
  }
  std::string member_id;
  if (int rc = MemberOfCard(s, args[0], &member_id); rc != 0) return rc;
  loyalty::sdk::LedgerClient ledger(Options(s.ledger, s.api_key));
  lv1::AuthorizeRequest hold;
  hold.set_idempotency_key(absl::StrCat("hold:", args[2]));
  hold.set_member_id(member_id);
  hold.set_partner_id(s.partner);
  hold.set_points(points);
  hold.set_ttl_seconds(300);
  hold.set_reference(args[2]);
  auto held = ledger.Authorize(hold);
  if (!held.ok()) return Fail(held.error());
  std::cout << "held " << points << " points (hold " << held->hold().hold_id() << ")\n";
  // The till would now print the discount; the customer pays; then capture.
  lv1::CaptureRequest capture;
  capture.set_idempotency_key(absl::StrCat("capture:", args[2]));
  capture.set_hold_id(held->hold().hold_id());
  capture.set_points(points);
  capture.set_reference(args[2]);
  auto captured = ledger.Capture(capture);
  if (!captured.ok() && captured.error().retryable()) {
    // The outcome is unknown: keep the hold (it expires by itself) so that
    // running the same command again captures it under the same keys.
    return Fail(captured.error());
  }
  if (!captured.ok()) {
    // Refused: release the hold rather than leave the points blocked until
    // it expires.
    lv1::VoidRequest release;
    release.set_idempotency_key(absl::StrCat("void:", args[2]));
    release.set_hold_id(held->hold().hold_id());
    release.set_reason("capture failed at the till");
    (void)ledger.Void(release);
    return Fail(captured.error());
  }
  std::cout << "redeemed " << captured->transfer().points() << " points (transfer "
            << captured->transfer().transfer_id() << ")\n";
  std::cout << "balance " << DescribeBalance(captured->balance()) << "\n";
  return 0;
}

int Return(const Settings& s, const std::vector<std::string>& args) {
  if (args.size() < 2 || args.size() > 3) return Usage();
  lv1::ReverseRequest req;
  req.set_idempotency_key(absl::StrCat("return:", args[1]));
  req.set_transfer_id(args[0]);
  req.set_reference(args[1]);
  req.set_reason("item returned at the clinic");
  if (args.size() == 3) {
    int64_t minor = 0;
    if (!ParseAmount(args[2], s.currency, &minor)) {
      std::cerr << "REFUND_AMOUNT: not an amount in " << s.currency << "\n";
      return 2;
    }
    req.mutable_refund_amount()->set_amount_minor(minor);
    req.mutable_refund_amount()->set_currency(s.currency);
  }
  loyalty::sdk::LedgerClient ledger(Options(s.ledger, s.api_key));
  auto reversed = ledger.Reverse(req);
  if (!reversed.ok()) return Fail(reversed.error());
  std::cout << "returned: " << reversed->reversed_points() << " points reversed, "
            << reversed->shortfall_points() << " already spent (not taken back), "
            << reversed->remaining_reversible_points() << " still reversible\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  loyalty::partners::CommandLine line;
  const int parsed = loyalty::partners::ParseCommandLine(argc, argv, {{"ledger", &s.ledger},
                                                                       {"membership", &s.membership},
                                                                       {"partner", &s.partner},
                                                                       {"currency", &s.currency}}, &line);
  if (line.help) return (Usage(), 0);
  if (parsed != 0) return Usage();
  s.api_key = line.api_key;
  std::vector<std::string> args = std::move(line.words);
  const std::string command = args[0];
  args.erase(args.begin());
  if (command == "lookup") return Lookup(s, args);
  if (command == "earn") return Earn(s, args);
  if (command == "redeem") return Redeem(s, args);
  if (command == "return") return Return(s, args);
  return Usage();
}
