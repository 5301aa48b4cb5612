#include "server/audit.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "server/json_text.h"

namespace hmrec {

std::string RecordPurchasesAuditLine(const std::string& caller, const v1::RecordPurchasesRequest& request,
                                     const absl::Status& status, const v1::RecordPurchasesResponse& response) {
  const int events = request.events_size();
  // A client's event id, bounded: ids longer than 128 bytes are refused
  // by validation, and a refused call's id is cut the same way.
  const std::string first = events > 0 ? request.events(0).event_id().substr(0, 128) : "";
  return absl::StrCat("{\"call\":\"RecordPurchases\",\"caller\":", JsonText(caller),
                      ",\"code\":", JsonText(absl::StatusCodeToString(status.code())), ",\"events\":", events,
                      ",\"recorded\":", response.recorded(), ",\"duplicates\":", response.duplicates(),
                      ",\"expired\":", response.expired(), ",\"erased\":", response.erased(),
                      ",\"refused\":", status.ok() ? 0 : events, ",\"first_event_id\":", JsonText(first), "}");
}

void AuditRecordPurchases(const std::string& caller, const v1::RecordPurchasesRequest& request,
                          const absl::Status& status, const v1::RecordPurchasesResponse& response) {
  const std::string line = absl::StrCat("audit: ", RecordPurchasesAuditLine(caller, request, status, response), "\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

std::string EraseCustomerAuditLine(const std::string& caller, const v1::EraseCustomerRequest& request,
                                   const absl::Status& status, const v1::EraseCustomerResponse& response) {
  return absl::StrCat("{\"call\":\"EraseCustomer\",\"caller\":", JsonText(caller),
                      ",\"code\":", JsonText(absl::StatusCodeToString(status.code())),
                      ",\"customers\":", request.customer_ids_size(), ",\"erased\":", response.erased(),
                      ",\"already_erased\":", response.already_erased(),
                      ",\"events_deleted\":", response.events_deleted(), "}");
}

void AuditEraseCustomer(const std::string& caller, const v1::EraseCustomerRequest& request, const absl::Status& status,
                        const v1::EraseCustomerResponse& response) {
  const std::string line = absl::StrCat("audit: ", EraseCustomerAuditLine(caller, request, status, response), "\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace hmrec
