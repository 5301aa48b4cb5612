#pragma once

// The audit trail of writes: one structured line on stderr for every
// RecordPurchases and EraseCustomer call by a known caller,
//
//   audit: {"call":"RecordPurchases","caller":"pos","code":"OK","events":3,
//           "recorded":2,"duplicates":1,"expired":0,"erased":0,"refused":0,
//           "first_event_id":"..."}
//
// `refused` counts the events of a call that failed (all of them). Never a
// key, a token, a customer id or a purchase: who wrote, how much, and the
// first event id, by which the write can be found in the event store.

#include <string>

#include "absl/status/status.h"
#include "proto/recommender.pb.h"

namespace hmrec {

// The audit line of one RecordPurchases call (without the "audit: " prefix).
std::string RecordPurchasesAuditLine(const std::string& caller, const v1::RecordPurchasesRequest& request,
                                     const absl::Status& status, const v1::RecordPurchasesResponse& response);

// Writes "audit: " + RecordPurchasesAuditLine(...) to stderr as one write.
void AuditRecordPurchases(const std::string& caller, const v1::RecordPurchasesRequest& request,
                          const absl::Status& status, const v1::RecordPurchasesResponse& response);

// The audit line of one EraseCustomer call: who asked, how many ids, what
// the store did; never the ids (an erased customer's id is not kept in
// logs either):
//   {"call":"EraseCustomer","caller":"privacy","code":"OK","customers":2,
//    "erased":1,"already_erased":1,"events_deleted":3}
std::string EraseCustomerAuditLine(const std::string& caller, const v1::EraseCustomerRequest& request,
                                   const absl::Status& status, const v1::EraseCustomerResponse& response);
void AuditEraseCustomer(const std::string& caller, const v1::EraseCustomerRequest& request, const absl::Status& status,
                        const v1::EraseCustomerResponse& response);

}  // namespace hmrec
