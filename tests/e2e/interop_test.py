"""Calls a running hmrec_server from a client hmrec did not write: Debian's
python3-grpcio, with stubs generated from proto/recommender.proto by
grpc_tools at test time. Checks the health service (raw grpc.health.v1 bytes,
no generated health stubs needed), Recommend for a known and an unknown
customer, and INVALID_ARGUMENT for a malformed id.

    /usr/bin/python3 interop_test.py STUB_DIR HOST:PORT KNOWN_CUSTOMER_ID
"""
import sys

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
import recommender_pb2  # noqa: E402
import recommender_pb2_grpc  # noqa: E402

target, known = sys.argv[2], sys.argv[3]
channel = grpc.insecure_channel(target)
grpc.channel_ready_future(channel).result(timeout=20)

# grpc.health.v1.Health/Check with an empty HealthCheckRequest; the response
# is HealthCheckResponse{status: SERVING = 1}, i.e. field 1 varint 1.
check = channel.unary_unary("/grpc.health.v1.Health/Check",
                            request_serializer=lambda b: b, response_deserializer=lambda b: b)
assert check(b"", timeout=10) == b"\x08\x01", "health is not SERVING"

stub = recommender_pb2_grpc.RecommenderStub(channel)
unknown = "f" * 64
resp = stub.Recommend(recommender_pb2.RecommendRequest(customer_ids=[known, unknown]), timeout=20)
assert resp.bundle_version, "no bundle version"
assert [r.customer_id for r in resp.results] == [known, unknown]
for r in resp.results:
    assert len(r.article_ids) == 12 and len(set(r.article_ids)) == 12, r
    assert all(len(a) == 10 and a.isdigit() for a in r.article_ids), r
    assert list(r.scores) == sorted(r.scores, reverse=True), "scores not best first"
assert not resp.results[0].fallback and resp.results[1].fallback

try:
    stub.Recommend(recommender_pb2.RecommendRequest(customer_ids=["not-an-id"]), timeout=20)
    raise AssertionError("a malformed id was accepted")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e.code()
    assert "customer_ids[0]" in e.details(), e.details()
print(f"interop: python3-grpcio {grpc.__version__}: health SERVING, Recommend ok "
      f"(bundle {resp.bundle_version}), INVALID_ARGUMENT named the bad id")
