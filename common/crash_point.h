#pragma once

// Named points where a test can make a writer die as a power cut or the OOM
// killer would: when the environment variable HMREC_CRASH_AT equals `point`,
// the process says so on stderr and kills itself with SIGKILL (no
// destructors, no flushing). Unset — always, outside tests — it is one
// string compare. Used to show that an interrupted bundle build leaves the
// served bundle untouched (tests/e2e/interrupted_build_test.sh).

namespace hmrec {

void CrashPoint(const char* point);

}  // namespace hmrec
