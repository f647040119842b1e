#pragma once
// Shared by the reference integrations (vet clinic POS, pet-food e-shop):
// amounts typed by a cashier, basket lines, errors as exit codes, and the
// member behind a loyalty card.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "loyalty/ledger/v1/ledger.pb.h"
#include "partners/sdk/loyalty_sdk.h"

namespace loyalty::partners {

// Exit codes of the reference integrations.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRefused = 1;      // the platform said no
inline constexpr int kExitUsage = 2;        // bad command line
inline constexpr int kExitTryAgain = 3;     // unreachable or timed out

// "45.90" in EUR -> 4590. Exact (no floating point); false for anything that
// is not a non-negative amount with at most the currency's minor digits.
bool ParseAmount(const std::string& text, const std::string& currency, int64_t* minor);

// "category=amount" words -> purchase lines in `currency`; false (and a
// message on stderr) for a malformed word.
bool ParseLines(const std::vector<std::string>& words, const std::string& currency,
                google::protobuf::RepeatedPtrField<ledger::v1::PurchaseLine>* lines);

// Prints the error (and the field at fault) on stderr; returns the exit
// code: kExitTryAgain when retrying later may work, else kExitRefused.
int Fail(const sdk::Error& error);

// Options for one service: target and API key; TLS from LOYALTY_TLS_CA_FILE
// (and LOYALTY_TLS_CERT_FILE / LOYALTY_TLS_KEY_FILE for mutual TLS); a
// file that cannot be read ends the program with kExitUsage.
sdk::ClientOptions Options(const std::string& target, const std::string& api_key);

// The member id behind a card; on failure, prints and returns the exit code.
int MemberOfCard(const sdk::MembershipClient& membership, const std::string& card, std::string* member_id);

// The command line of a reference integration: "--name=value" options
// before the command (each name must be in `options`, which says where its
// value goes), then the command and its words. Also reads LOYALTY_API_KEY.
struct CommandLine {
  std::vector<std::string> words;  // the command first
  std::string api_key;
  bool help = false;
};
// Returns kExitOk, or kExitUsage for an unknown option, no command, or no
// API key (after a message on stderr); `help` is set for --help.
int ParseCommandLine(int argc, char** argv, const std::map<std::string, std::string*>& options, CommandLine* out);

// "120 points available (120 posted, 0 on hold)".
std::string DescribeBalance(const ledger::v1::AccountBalance& balance);

}  // namespace loyalty::partners
