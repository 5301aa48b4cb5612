#include "server/auth.h"

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/test_util.h"

namespace hmrec {
namespace {

using hmrec::testing::TempDir;
using hmrec::testing::WriteFile;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Line(const std::string& name, const std::string& scopes, const std::string& key) {
  return absl::StrCat(name, " ", scopes, " sha256:", KeyDigestHex(key), "\n");
}

absl::Status ParseError(const std::string& text) {
  auto set = KeySet::Parse(text, "keys");
  return set.ok() ? absl::OkStatus() : set.status();
}

// Credentials carrying `key` (the value they point at lives for the test).
Credentials Bearer(const std::string& key) {
  static std::deque<std::string>* values = new std::deque<std::string>();
  values->push_back("Bearer " + key);
  Credentials c;
  c.authorization.push_back(values->back());
  return c;
}

TEST(KeyDigest, IsTheHexSha256OfTheKey) {
  // FIPS 180-2's test vector for "abc".
  EXPECT_EQ(KeyDigestHex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(KeySet, FindsEachKeyAndCommonNameWithItsScopes) {
  auto set = KeySet::Parse("# clients\n\n" + Line("web", "recommend", "k1") +
                               "  ops  recommend,inspect   sha256:" + KeyDigestHex("k2") + "   # comment\n" +
                               "pos record,recommend sha256:" + absl::AsciiStrToUpper(KeyDigestHex("k3")) + "\n" +
                               "mesh recommend cn:svc.hmrec.example with space\n",
                           "keys");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ((*set)->size(), 4u);
  EXPECT_EQ((*set)->Names(), (std::vector<std::string>{"web", "ops", "pos", "mesh"}));
  const Caller* web = (*set)->FindKey("k1");
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->name, "web");
  EXPECT_TRUE(web->Has(kScopeRecommend));
  EXPECT_FALSE(web->Has(kScopeInspect));
  EXPECT_FALSE(web->Has(kScopeRecord));
  ASSERT_NE((*set)->FindKey("k2"), nullptr);
  EXPECT_TRUE((*set)->FindKey("k2")->Has(kScopeInspect));
  ASSERT_NE((*set)->FindKey("k3"), nullptr);  // upper-case hex accepted
  EXPECT_TRUE((*set)->FindKey("k3")->Has(kScopeRecord));
  EXPECT_EQ((*set)->FindKey("k4"), nullptr);
  EXPECT_EQ((*set)->FindKey(""), nullptr);
  EXPECT_EQ((*set)->FindKey("k1 "), nullptr);
  ASSERT_NE((*set)->FindCommonName("svc.hmrec.example with space"), nullptr);
  EXPECT_EQ((*set)->FindCommonName("svc.hmrec.example with space")->name, "mesh");
  EXPECT_EQ((*set)->FindCommonName("svc.hmrec.example"), nullptr);
  // The last entry is found as well as the first (the scan never stops early).
  EXPECT_EQ((*set)->FindKey("k3")->name, "pos");
}

TEST(KeySet, RefusesBadLinesNamingFileAndLineNeverTheValue) {
  const std::string good = Line("web", "recommend", "k1");
  struct Case {
    std::string text;
    std::string message;
  };
  const std::string pasted_key = "sha256:my-secret-api-key";
  for (const Case& c : std::vector<Case>{
           {good + "ops admin sha256:" + KeyDigestHex("k2"), "keys:2: unknown scope 'admin' of client 'ops'"},
           {good + "ops recommend,,inspect sha256:" + KeyDigestHex("k2"), "keys:2: an empty scope of client 'ops'"},
           {good + "ops recommend,recommend sha256:" + KeyDigestHex("k2"), "keys:2: scope 'recommend' twice"},
           {good + Line("web", "inspect", "k2"), "keys:2: client 'web' is named twice (first on line 1)"},
           {good + "ops recommend " + pasted_key, "keys:2: the credential of client 'ops' must be sha256: and 64"},
           {good + "ops recommend sha256:" + KeyDigestHex("k2").substr(1) + "g", "keys:2: the credential"},
           {good + Line("ops", "recommend", "k1"), "keys:2: client 'ops' has the same key as line 1"},
           {good + "ops recommend my-secret-api-key", "keys:2: the credential of client 'ops' must start with"},
           {good + "Ops recommend sha256:" + KeyDigestHex("k2"), "keys:2: the client name must be"},
           {good + std::string(65, 'a') + " recommend sha256:" + KeyDigestHex("k2"), "keys:2: the client name"},
           {good + "ops recommend", "keys:2: expected NAME SCOPES sha256:HEX"},
           {good + "a recommend cn:x\nb recommend cn: x \n",
            "keys:3: client 'b' has the same certificate CN as line 2"},
           {good + "a recommend cn:", "keys:2: the cn: of client 'a' must be 1-256"},
       }) {
    absl::Status s = ParseError(c.text);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message)) << c.text;
    EXPECT_THAT(std::string(s.message()), Not(HasSubstr("my-secret-api-key"))) << "a pasted key reached the message";
  }
  EXPECT_TRUE(ParseError("").ok());  // no clients: every call refused
}

TEST(KeySet, RefusesAWorldWritableFileNamingIt) {
  TempDir dir;
  const std::string path = dir.File("keys");
  WriteFile(path, Line("web", "recommend", "k1"));
  ASSERT_EQ(chmod(path.c_str(), 0666), 0);
  auto set = KeySet::Read(path);
  ASSERT_FALSE(set.ok());
  EXPECT_THAT(std::string(set.status().message()), HasSubstr(path + ": every user may write it (mode 0666)"));
  ASSERT_EQ(chmod(path.c_str(), 0640), 0);
  EXPECT_TRUE(KeySet::Read(path).ok());
  EXPECT_THAT(std::string(KeySet::Read(dir.File("none")).status().message()), HasSubstr(dir.File("none")));
}

TEST(BearerToken, TakesExactlyOneWellFormedBearerValue) {
  auto token = [](std::vector<std::string> values) {
    std::vector<absl::string_view> views(values.begin(), values.end());
    return BearerToken(views);
  };
  EXPECT_EQ(*token({"Bearer abc-DEF_1.2~3+4/5=="}), "abc-DEF_1.2~3+4/5==");
  EXPECT_EQ(*token({"bearer abc"}), "abc");
  EXPECT_EQ(*token({"BEARER abc"}), "abc");
  for (const std::vector<std::string>& bad : std::vector<std::vector<std::string>>{
           {},
           {""},
           {"abc"},
           {"Bearer"},
           {"Bearer "},
           {"Bearer  abc"},
           {"Basic YWxhZGRpbjpvcGVuc2VzYW1l"},
           {"Bearer abc def"},
           {"Bearer abc=def"},
           {"Bearer =abc"},
           {"Bearer " + std::string(1025, 'a')},
           {"Bearer " + std::string(10 << 10, 'a')},
           {"Bearer \xc3\xa9t\xc3\xa9"},
           {"Bearer abc\x01"},
           {"Bearer abc", "Bearer abc"},
       }) {
    auto t = token(bad);
    ASSERT_FALSE(t.ok()) << (bad.empty() ? "(none)" : bad[0]);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_LT(t.status().message().size(), 200u);
    if (!bad.empty() && bad[0].size() > 10) {
      EXPECT_THAT(std::string(t.status().message()), Not(HasSubstr(bad[0].substr(7, 8)))) << "echoed the value";
    }
  }
  EXPECT_THAT(std::string(token({"Bearer a", "Bearer b"}).status().message()), HasSubstr("2 authorization values"));
}

TEST(Authenticator, WithoutAKeysFileEveryCallIsAnonymousWithEveryScope) {
  auto auth = Authenticator::Open(config::AuthConfig());
  ASSERT_TRUE(auth.ok());
  EXPECT_FALSE((*auth)->enabled());
  auto caller = (*auth)->Check(Credentials(), kScopeRecord);
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->name, "anonymous");
  EXPECT_TRUE(caller->Has(kScopeRecommend) && caller->Has(kScopeRecord) && caller->Has(kScopeInspect));
}

TEST(Authenticator, RefusesEachWayWithItsCodeAndReason) {
  TempDir dir;
  WriteFile(dir.File("keys"), Line("web", "recommend", "k1") + "mesh inspect cn:batch-job\n");
  config::AuthConfig c;
  c.set_keys_file(dir.File("keys"));
  c.set_reload_ms(-1);
  auto auth = Authenticator::Open(c);
  ASSERT_TRUE(auth.ok()) << auth.status();
  Refusal why = Refusal::kNone;
  std::string known;

  auto caller = (*auth)->Check(Bearer("k1"), kScopeRecommend, &why);
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->name, "web");
  EXPECT_EQ(why, Refusal::kNone);

  EXPECT_EQ((*auth)->Check(Credentials(), kScopeRecommend, &why).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(why, Refusal::kNoCredential);
  EXPECT_EQ((*auth)->Check(Bearer("k2"), kScopeRecommend, &why).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(why, Refusal::kUnknownKey);
  EXPECT_EQ((*auth)->Check(Bearer("k 1"), kScopeRecommend, &why).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(why, Refusal::kMalformed);
  const absl::Status scope = (*auth)->Check(Bearer("k1"), kScopeInspect, &why, &known).status();
  EXPECT_EQ(scope.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(scope.message()), HasSubstr("'inspect'"));
  EXPECT_EQ(why, Refusal::kScope);
  EXPECT_EQ(known, "web");
  // Any scope: any known caller.
  EXPECT_TRUE((*auth)->Check(Bearer("k1"), kAnyScope).ok());

  // A verified certificate's CN stands for a key; a key, when sent, counts.
  Credentials cert;
  cert.peer_cn = "batch-job";
  ASSERT_TRUE((*auth)->Check(cert, kScopeInspect).ok());
  EXPECT_EQ((*auth)->Check(cert, kScopeInspect)->name, "mesh");
  cert.peer_cn = "someone-else";
  EXPECT_EQ((*auth)->Check(cert, kScopeInspect, &why).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(why, Refusal::kUnknownCertificate);
  Credentials both = Bearer("k2");
  both.peer_cn = "batch-job";
  EXPECT_EQ((*auth)->Check(both, kScopeInspect, &why).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(why, Refusal::kUnknownKey);
}

TEST(Authenticator, AFileThatDoesNotParseStopsTheStart) {
  TempDir dir;
  WriteFile(dir.File("keys"), "web superuser sha256:" + KeyDigestHex("k1") + "\n");
  config::AuthConfig c;
  c.set_keys_file(dir.File("keys"));
  auto auth = Authenticator::Open(c);
  ASSERT_FALSE(auth.ok());
  EXPECT_THAT(std::string(auth.status().message()), HasSubstr(dir.File("keys") + ":1: unknown scope 'superuser'"));
}

// Rotation: a changed file is picked up by the watcher; a broken one is
// refused and the keys in force stay; SIGHUP (Reload) re-reads at once.
TEST(Authenticator, ReloadsAChangedFileAndKeepsTheOldKeysWhenTheNewOneIsBad) {
  TempDir dir;
  const std::string path = dir.File("keys");
  WriteFile(path, Line("web", "recommend", "old"));
  config::AuthConfig c;
  c.set_keys_file(path);
  c.set_reload_ms(20);
  std::atomic<int> loaded{0}, refused{0};
  auto auth = Authenticator::Open(c, [&](const absl::Status& s, size_t) { (s.ok() ? loaded : refused)++; });
  ASSERT_TRUE(auth.ok());
  ASSERT_TRUE((*auth)->Check(Bearer("old"), kScopeRecommend).ok());

  auto wait = [](const std::function<bool()>& done) {
    for (int i = 0; i < 500 && !done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return done();
  };
  // Replaced the way Kubernetes does it: a new file renamed over the old.
  WriteFile(dir.File("keys.new"), Line("web", "recommend", "old") + Line("web2", "recommend", "new"));
  std::filesystem::rename(dir.File("keys.new"), path);
  ASSERT_TRUE(wait([&] { return (*auth)->Check(Bearer("new"), kScopeRecommend).ok(); }));
  EXPECT_TRUE((*auth)->Check(Bearer("old"), kScopeRecommend).ok());
  EXPECT_EQ((*auth)->entries(), 2u);

  WriteFile(dir.File("keys.new"), "web recommend sha256:nothex\n");
  std::filesystem::rename(dir.File("keys.new"), path);
  ASSERT_TRUE(wait([&] { return refused.load() >= 1; }));
  EXPECT_TRUE((*auth)->Check(Bearer("new"), kScopeRecommend).ok()) << "a bad file dropped the keys in force";
  EXPECT_EQ((*auth)->entries(), 2u);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(refused.load(), 1) << "an unchanged bad file is re-read on every poll";

  WriteFile(dir.File("keys.new"), Line("web2", "recommend", "new"));
  std::filesystem::rename(dir.File("keys.new"), path);
  ASSERT_TRUE(wait([&] { return !(*auth)->Check(Bearer("old"), kScopeRecommend).ok(); }));
  EXPECT_TRUE((*auth)->Check(Bearer("new"), kScopeRecommend).ok());

  // Reload() re-reads now, whatever the poll saw.
  const int before = loaded.load();
  EXPECT_TRUE((*auth)->Reload().ok());
  EXPECT_EQ(loaded.load(), before + 1);
}

// Checks on many threads while the file is swapped: never a wrong answer
// for a key valid in both versions (run under TSan too).
TEST(Authenticator, ChecksStayRightWhileTheKeysAreSwapped) {
  TempDir dir;
  const std::string path = dir.File("keys");
  WriteFile(path, Line("web", "recommend", "stable"));
  config::AuthConfig c;
  c.set_keys_file(path);
  c.set_reload_ms(1);
  auto auth = Authenticator::Open(c);
  ASSERT_TRUE(auth.ok());
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  const Credentials stable = Bearer("stable");
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (!stop) {
        if (!(*auth)->Check(stable, kScopeRecommend).ok()) ++wrong;
      }
    });
  }
  for (int i = 0; i < 50; ++i) {
    WriteFile(dir.File("keys.new"), Line("web", "recommend", "stable") + Line("x" + std::to_string(i), "record", "k"));
    std::filesystem::rename(dir.File("keys.new"), path);
    (*auth)->Reload().IgnoreError();
  }
  stop = true;
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace hmrec
