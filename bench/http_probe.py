"""How each HTTP library of bench/http_compare.sh bounds slow or huge
requests, measured against its port (prints JSON by library):

  slow_clients  80 connections send half a request and stall; how long a
                GET /healthz on a new connection then takes (10 s at most)
  big_header    a request with a 64 KiB header: the status, or "closed"
  huge_body     Content-Length: 100 MB with a valid key, no body sent: the
                status and how soon
  idle          a connection that sends nothing: when the server closes it
                (watched for 35 s)

    /usr/bin/python3 http_probe.py PORTS_FILE http|https CA.pem KEY_FILE
"""
import json
import socket
import ssl
import sys
import threading
import time

ports = [line.split() for line in open(sys.argv[1]) if line.strip()]
scheme, ca, key = sys.argv[2], sys.argv[3], open(sys.argv[4]).read().strip()
tls = ssl.create_default_context(cafile=ca) if scheme == "https" else None


def connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=timeout)
    return tls.wrap_socket(s, server_hostname="127.0.0.1") if tls else s


def status(sock):
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return "closed" if not data else data.decode(errors="replace")[:12]
        data += chunk
    return data.split(b" ")[1].decode()


def slow_clients(port):
    held = []
    for _ in range(80):
        try:
            s = connect(port)
            s.sendall(b"POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-")
            held.append(s)
        except OSError:
            break
    start = time.time()
    try:
        s = connect(port, timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        code = status(s)
        s.close()
        result = f"{code} in {(time.time() - start) * 1000:.0f} ms"
    except OSError:
        result = f"no answer in {time.time() - start:.0f} s"
    for s in held:
        s.close()
    return result


def big_header(port):
    try:
        s = connect(port)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (64 << 10) + b"\r\n\r\n")
        return status(s)
    except OSError as e:
        return "closed" if "reset" in str(e).lower() or "broken" in str(e).lower() else type(e).__name__


def huge_body(port):
    start = time.time()
    try:
        s = connect(port)
        s.sendall(b"POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Authorization: Bearer " + key.encode() + b"\r\nContent-Length: 100000000\r\n\r\n")
        code = status(s)
        return f"{code} in {(time.time() - start) * 1000:.0f} ms"
    except OSError as e:
        return f"{type(e).__name__} after {time.time() - start:.1f} s"


def idle(port, out, lib):
    start = time.time()
    try:
        s = connect(port, timeout=35)
        s.settimeout(35 - (time.time() - start))
        got = s.recv(1)
        out[lib] = f"closed after {time.time() - start:.0f} s" if not got else "answered"
    except (socket.timeout, TimeoutError):
        out[lib] = "open after 35 s"
    except OSError:
        out[lib] = f"closed after {time.time() - start:.0f} s"


results = {}
idles = {}
threads = [threading.Thread(target=idle, args=(port, idles, lib)) for lib, port in ports]
for t in threads:
    t.start()
for lib, port in ports:
    results[lib] = {"slow_clients": slow_clients(port), "big_header": big_header(port), "huge_body": huge_body(port)}
    time.sleep(1)
for t in threads:
    t.join()
for lib in results:
    results[lib]["idle"] = idles.get(lib, "?")
print(json.dumps(results, indent=1))
