#pragma once
// Plain-text tables for command-line tools: columns padded to their widest
// cell, two spaces apart, no trailing spaces.
//
//   std::cout << text::Table({"PARTNER", "NET"}, {{"vet-clinic", "12.40 EUR"}});

#include <string>
#include <vector>

namespace loyalty::text {

// REQUIRES: every row has header.size() cells.
std::string Table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

}  // namespace loyalty::text
