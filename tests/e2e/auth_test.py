"""Who may call what, against a real hmrec_server with TLS and API keys, from
clients hmrec did not write (Python's http.client over ssl, Debian's
python3-grpcio): every HTTP route and RPC x {no key, wrong key, a key
without the scope, a key with it}; malformed authorization values; the
metrics port and health without a key; the refusal metrics.

    /usr/bin/python3 auth_test.py STUB_DIR CA.pem GRPC_PORT HTTP_PORT METRICS_PORT KEYS_DIR CUSTOMER ARTICLE

KEYS_DIR holds one file a client, named as in the keys file: rec
(recommend), rw (record), insp (inspect), all (every scope).
"""
import http.client
import json
import os
import ssl
import sys

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
import recommender_pb2  # noqa: E402
import recommender_pb2_grpc  # noqa: E402

CA, GRPC_PORT, HTTP_PORT, METRICS_PORT, KEYS, CUSTOMER, ARTICLE = sys.argv[2:9]
key = {name: open(os.path.join(KEYS, name)).read().strip() for name in ("rec", "rw", "insp", "all", "priv")}
tls = ssl.create_default_context(cafile=CA)


def call(method, path, body=None, headers=None, port=HTTP_PORT, raw_headers=None):
    """One HTTPS call; returns (status, headers, body text)."""
    conn = http.client.HTTPSConnection("127.0.0.1", int(port), context=tls, timeout=30)
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    conn.putrequest(method, path)
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    for k, v in raw_headers or []:  # repeats and raw bytes allowed
        conn.putheader(k, v)
    if data is not None:
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(data)))
    conn.endheaders(data)
    r = conn.getresponse()
    out = r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode("utf-8", "replace")
    conn.close()
    return out


def bearer(name):
    return {"Authorization": "Bearer " + key[name]}


recommend_body = {"customer_ids": [CUSTOMER], "k": 5}
# route: (method, path, body, scope needed; None: any valid key; "": no key)
routes = [
    ("POST", "/v1/recommend", recommend_body, "recommend"),
    ("POST", "/v1/similar", {"article_ids": [ARTICLE], "k": 5}, "recommend"),
    ("GET", "/v1/bundle", None, None),
    ("GET", "/v1/customers/" + CUSTOMER, None, "inspect"),
    ("GET", "/v1/random_customer", None, "inspect"),
    ("POST", "/v1/articles", {"article_ids": [ARTICLE]}, "inspect"),
    ("GET", "/v1/filters", None, "inspect"),
    ("GET", "/v1/rules", None, "inspect"),
    ("GET", "/inspect", None, ""),
    ("GET", "/healthz", None, ""),
    ("GET", "/readyz", None, ""),
]
holder = {"recommend": "rec", "inspect": "insp", "record": "rw", "erase": "priv"}
lacker = {"recommend": "insp", "inspect": "rec", "record": "rec", "erase": "rw"}
checked = 0
for method, path, body, scope in routes:
    if scope == "":
        status, _, text = call(method, path, body)
        assert status == 200, (path, status, text)
        checked += 1
        continue
    status, headers, text = call(method, path, body)
    assert status == 401, (path, "no key", status, text)
    assert headers.get("www-authenticate", "").startswith("Bearer"), (path, headers)
    assert json.loads(text)["error"]["code"] == "UNAUTHENTICATED", text
    status, headers, text = call(method, path, body, {"Authorization": "Bearer not-a-key"})
    assert status == 401 and 'error="invalid_token"' in headers.get("www-authenticate", ""), (path, status, headers)
    if scope is not None:
        status, headers, text = call(method, path, body, bearer(lacker[scope]))
        assert status == 403, (path, "key without the scope", status, text)
        err = json.loads(text)["error"]
        assert err["code"] == "PERMISSION_DENIED" and f"'{scope}'" in err["message"], err
        assert f'scope="{scope}"' in headers.get("www-authenticate", ""), headers
    status, _, text = call(method, path, body, bearer(holder[scope] if scope else "rec"))
    assert status == 200, (path, "key with the scope", status, text)
    status, _, text = call(method, path, body, bearer("all"))
    assert status == 200, (path, "key with every scope", status, text)
    checked += 1

# Refused before the body is read: a huge body without a key is 401, not 413.
status, _, _ = call("POST", "/v1/recommend", b"{" + b" " * (3 << 20) + b"}")
assert status == 401, status

# Malformed authorization values: 401 and a message, never a crash, never the value echoed.
malformed = [
    [("Authorization", key["rec"])],                      # no scheme
    [("Authorization", "")],                              # empty
    [("Authorization", "Bearer")],                        # no key
    [("Authorization", "Basic " + key["rec"])],           # another scheme
    [("Authorization", "Bearer " + "a" * (10 << 10))],    # 10 KB
    [("Authorization", "Bearer ".encode() + "clé-ünïcode".encode("utf-8"))],  # non-ASCII
    [("Authorization", "Bearer " + key["rec"]), ("Authorization", "Bearer " + key["rec"])],  # two headers
]
for values in malformed:
    status, _, text = call("POST", "/v1/recommend", recommend_body, raw_headers=values)
    assert status == 401, (values[0][1][:20], status, text)
    assert key["rec"] not in text
    assert json.loads(text)["error"]["code"] == "UNAUTHENTICATED", text

# gRPC: the same decisions, UNAUTHENTICATED / PERMISSION_DENIED.
channel = grpc.secure_channel("127.0.0.1:" + GRPC_PORT, grpc.ssl_channel_credentials(open(CA, "rb").read()))
stub = recommender_pb2_grpc.RecommenderStub(channel)
req = recommender_pb2.RecommendRequest(customer_ids=[CUSTOMER], k=5)
similar_req = recommender_pb2.SimilarArticlesRequest(article_ids=[ARTICLE], k=5)
rec_req = recommender_pb2.RecordPurchasesRequest(events=[recommender_pb2.PurchaseEvent(
    customer_id=CUSTOMER, article_id=ARTICLE, t_dat="2020-09-23", price=0.03, sales_channel_id=2,
    event_id="auth-test-1")])
# An id no file holds: erased all the same (the list holds ids, not customers).
erase_req = recommender_pb2.EraseCustomerRequest(customer_ids=["f" * 64])


def code(rpc, request, metadata):
    try:
        rpc(request, metadata=metadata, timeout=30)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


for rpc, request, scope in ((stub.Recommend, req, "recommend"), (stub.SimilarArticles, similar_req, "recommend"),
                            (stub.RecordPurchases, rec_req, "record"), (stub.EraseCustomer, erase_req, "erase")):
    assert code(rpc, request, None)[0] == grpc.StatusCode.UNAUTHENTICATED
    assert code(rpc, request, [("authorization", "Bearer not-a-key")])[0] == grpc.StatusCode.UNAUTHENTICATED
    got, details = code(rpc, request, [("authorization", "Bearer " + key[lacker[scope]])])
    assert got == grpc.StatusCode.PERMISSION_DENIED and f"'{scope}'" in details, (got, details)
    got, details = code(rpc, request, [("authorization", "Bearer " + key[holder[scope]])])
    assert got == grpc.StatusCode.OK, (scope, got, details)
    checked += 1
for values in ([("authorization", key["rec"])], [("authorization", "")], [("authorization", "Bearer")],
               [("authorization", "Bearer " + "a" * (10 << 10))],
               [("authorization", "Bearer " + key["rec"]), ("authorization", "Bearer " + key["rec"])]):
    got, details = code(stub.Recommend, req, values)
    assert got == grpc.StatusCode.UNAUTHENTICATED, (values[0][1][:20], got, details)

# Health needs no key.
check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda b: b,
                            response_deserializer=lambda b: b)
assert check(b"", timeout=10) == b"\x08\x01", "health is not SERVING without a key"

# The metrics port needs no key (TLS like the others) and counts refusals.
status, _, metrics = call("GET", "/metrics", port=METRICS_PORT)
assert status == 200, status
for reason in ("no_credential", "unknown_key", "malformed", "scope"):
    assert f'hmrec_auth_refused_total{{method="http",reason="{reason}"}}' in metrics, reason
    assert f'hmrec_auth_refused_total{{method="Recommend",reason="{reason}"}}' in metrics, reason
assert 'hmrec_request_duration_seconds_count{arm="main",caller="rec",code="OK",method="Recommend"}' in metrics
assert 'hmrec_request_duration_seconds_count{arm="none",caller="rw",code="OK",method="RecordPurchases"}' in metrics
assert 'hmrec_request_duration_seconds_count{arm="main",caller="rec",code="OK",method="http"}' in metrics
assert 'hmrec_request_duration_seconds_count{arm="none",caller="priv",code="OK",method="EraseCustomer"}' in metrics
assert 'hmrec_auth_keys 7' in metrics, [l for l in metrics.splitlines() if "auth_keys" in l]
for secret in key.values():
    assert secret not in metrics
print(f"auth: {checked} routes and RPCs x no key / wrong key / without the scope / with it, "
      f"{len(malformed)} malformed values refused, health and metrics open")
