"""The HTTP/JSON API against the gRPC one, from clients hmrec did not write:
Python's urllib and Debian's python3-grpcio (stubs generated at test time).
Same answers for the same ids; malformed JSON, wrong types, unknown fields,
bad values and huge bodies refused with the right status and a message;
/v1/bundle, /healthz, /readyz.

    [HMREC_TEST_CA=CA.pem HMREC_API_KEY=KEY] \
        /usr/bin/python3 http_test.py STUB_DIR GRPC_HOST:PORT HTTP_BASE_URL CUSTOMER_ID...

With HMREC_TEST_CA, both ports speak TLS with a certificate that CA signed;
with HMREC_API_KEY every call carries the key.
"""
import json
import os
import ssl
import sys
import urllib.error
import urllib.request

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402
import recommender_pb2  # noqa: E402
import recommender_pb2_grpc  # noqa: E402

target, base, ids = sys.argv[2], sys.argv[3], sys.argv[4:]
CA = os.environ.get("HMREC_TEST_CA")
KEY = os.environ.get("HMREC_API_KEY")
tls = ssl.create_default_context(cafile=CA) if CA else None
auth = {"Authorization": "Bearer " + KEY} if KEY else {}
metadata = [("authorization", "Bearer " + KEY)] if KEY else None
channel = (grpc.secure_channel(target, grpc.ssl_channel_credentials(open(CA, "rb").read())) if CA
           else grpc.insecure_channel(target))
stub = recommender_pb2_grpc.RecommenderStub(channel)


def post(body, content_type="application/json", path="/v1/recommend", headers=None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method="POST",
                                 headers={"Content-Type": content_type, **(auth if headers is None else headers)})
    try:
        with urllib.request.urlopen(req, timeout=30, context=tls) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def get(path):
    try:
        with urllib.request.urlopen(urllib.request.Request(base + path, headers=auth), timeout=10, context=tls) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


# Same answers as gRPC, with k, filters and explanations.
unknown = "e" * 64
request = {"customer_ids": ids + [unknown], "k": 15, "explain": True,
           "filters": {"exclude_purchased_within_days": 7}}
status, got = post(request)
assert status == 200, (status, got)
expected = stub.Recommend(json_format.ParseDict(request, recommender_pb2.RecommendRequest()), timeout=30,
                          metadata=metadata)
from_http = json_format.ParseDict(got, recommender_pb2.RecommendResponse())
assert from_http == expected, "HTTP and gRPC answers differ"
assert len(from_http.results) == len(ids) + 1 and from_http.results[-1].fallback
assert all(len(r.article_ids) == 15 for r in from_http.results)

# Refused, named.
cases = [
    (b"{\"customer_ids\": [", 400, "not a RecommendRequest"),               # malformed JSON
    ({"customer_ids": ids, "k": "twelve"}, 400, "not a RecommendRequest"),  # wrong type
    ({"customer_ids": ids, "colour": "red"}, 400, "colour"),                # unknown field
    ({"customer_ids": ["XYZ"]}, 400, "customer_ids[0]"),                    # bad value
    ({"customer_ids": ids, "k": 100000}, 400, "k = 100000"),
    ({"customer_ids": ids, "filters": {"index_group_names": ["Spacesuits"]}}, 400, "Spacesuits"),
    (b"{\"customer_ids\": [\"" + b"a" * (2 << 20) + b"\"]}", 413, "limit"),  # body over the limit
]
for body, want, named in cases:
    status, err = post(body)
    assert status == want, (body[:60] if isinstance(body, bytes) else body, status, err)
    assert named in err["error"]["message"], (named, err)
    assert err["error"]["code"], err

# Similar articles: the same answer over HTTP as over gRPC, never the query;
# a malformed id refused naming its index; no key, no answer.
query = from_http.results[0].article_ids[0]
similar = {"article_ids": [query, "0999999999"], "k": 8, "explain": True}
status, got = post(similar, path="/v1/similar")
assert status == 200, (status, got)
expected_similar = stub.SimilarArticles(json_format.ParseDict(similar, recommender_pb2.SimilarArticlesRequest()),
                                        timeout=30, metadata=metadata)
similar_http = json_format.ParseDict(got, recommender_pb2.SimilarArticlesResponse())
assert similar_http == expected_similar, "HTTP and gRPC similar articles differ"
assert len(similar_http.article_ids) == 8 and query not in similar_http.article_ids, similar_http
assert list(similar_http.unknown_article_ids) == ["0999999999"], similar_http
status, err = post({"article_ids": [query, "1a"]}, path="/v1/similar")
assert status == 400 and "article_ids[1]" in err["error"]["message"], (status, err)
if KEY:
    status, err = post(similar, path="/v1/similar", headers={})
    assert status == 401, (status, err)

status, text = get("/v1/bundle")
assert status == 200 and json.loads(text)["version"] == expected.bundle_version, text
assert "files" not in json.loads(text), "the bundle summary lists files"
assert get("/healthz")[0] == 200 and get("/readyz")[0] == 200
req = urllib.request.Request(base + "/v1/recommend", method="GET", headers=auth)
try:
    urllib.request.urlopen(req, timeout=10, context=tls)
    raise AssertionError("GET /v1/recommend was served")
except urllib.error.HTTPError as e:
    assert e.code == 405, e.code
print(f"http{'s' if CA else ''}{' with a key' if KEY else ''}: {len(ids) + 1} customers equal over HTTP and gRPC (bundle {expected.bundle_version}); "
      f"{len(cases)} bad requests refused with 400/413, named; /v1/similar equal to gRPC SimilarArticles; "
      "/v1/bundle, /healthz, /readyz")
