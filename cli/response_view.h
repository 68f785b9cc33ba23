#pragma once

// How shadanctl shows the controller's automatic response (docs/operations.md, "Automatic
// response"): the circuit breaker in one line, what an automatic action cuts, the section of
// `shadanctl approvals` that lists the actions waiting for confirm or release, and the short
// block of `shadanctl status`. Pure functions of the controller's JSON, shared by alerts_cmd,
// approval_cmd and status_cmd.
//
// Text in these answers can come from a detector (a rule name, a title, a reason that quotes
// the alert), so every cell goes through displayCell: no control character reaches the
// terminal.

#include <cstddef>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace shadan {

// `text` on one line, control characters escaped ("\n", "\x1b"), cut to at most `max_chars`
// bytes (never inside a UTF-8 sequence) with "..." at the end when it was longer.
std::string displayCell(const std::string& text, size_t max_chars = 200);
// displayCell of jsonText(object, key): "-" when missing or null.
std::string jsonCell(const nlohmann::json& object, const char* key, size_t max_chars = 200);

// The breaker ({"open","since","reason","by","actions_in_window","max_actions","window_s",
// "max_segments_percent"}) in one line: "OPEN since T by automatic: WHY", "closed since T by
// op:sato: WHY", or "closed" when it never changed.
std::string breakerSummary(const nlohmann::json& breaker);

// What an automatic action ({"scope","segment","host"}) cuts: "host 10.20.0.5 in lgwan",
// "segment lgwan".
std::string autoActionTarget(const nlohmann::json& action);

// An entry of GET /v1/approvals that is an automatic action ("kind":"automatic"), not a
// signature approval.
bool isAutomaticEntry(const nlohmann::json& entry);

// The section of `shadanctl approvals` for automatic actions: a title, one row each (ID STATE
// TARGET DETECTOR/RULE EXPIRES WHY), what the states mean and the two commands.
void printAutoActions(std::ostream& out, const std::vector<const nlohmann::json*>& actions);

// The "automatic response" block of `shadanctl status` from its "response" member: the breaker
// and the open actions, then the decisions counted since the controller started.
void printResponseStatus(std::ostream& out, const nlohmann::json& response);

}  // namespace shadan
