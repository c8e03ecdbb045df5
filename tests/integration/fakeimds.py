#!/usr/bin/env python3
"""A fake EC2 instance metadata service (IMDSv2) bound to 127.0.0.1.

    imds = FakeIMDS(role="gm-role", require_token=True).start()
    env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.url
    ...
    imds.records  -> [{"method", "path", "had_token", "token_valid", "status"}]
    imds.stop()

Endpoints: PUT /latest/api/token (needs X-aws-ec2-metadata-token-ttl-seconds,
1..21600), GET /latest/meta-data/ (listing), iam/security-credentials/[role],
iam/info, instance-id, instance-type, placement/region,
placement/availability-zone, spot/instance-action (404 until set),
/latest/dynamic/instance-identity/document.  With require_token (default) every
GET without a valid X-aws-ec2-metadata-token gets 401; without it IMDSv1 GETs
are allowed but an invalid token is still refused.
`set_response(path, status, body)` overrides any path (e.g. make the token
endpoint answer 403, or the credentials 500).

CLI: python3 fakeimds.py [--port 0] [--no-require-token] prints its URL.
"""

import argparse
import datetime
import http.server
import json
import secrets
import signal
import socketserver
import sys
import threading
import time

__all__ = ["FakeIMDS"]

MAX_TTL = 21600


def _iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)  # no reverse DNS lookup
        self.server_name, self.server_port = self.server_address[:2]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "EC2ws"
    timeout = 60

    def log_message(self, fmt, *args):
        pass

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (OSError, ValueError):
            self.close_connection = True

    def _reply(self, status, body, ctype="text/plain", extra=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return status

    def _handle(self):
        imds = self.server.imds
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(min(n, 1 << 20))
        path = self.path.split("?", 1)[0]
        tok = self.headers.get("X-aws-ec2-metadata-token")
        valid = imds._token_valid(tok) if tok is not None else False
        rec = {"method": self.command, "path": path, "had_token": tok is not None,
               "token_valid": valid, "status": None, "time": time.time()}
        try:
            rec["status"] = self._route(imds, path, tok, valid)
        finally:
            imds._record(rec)

    def _route(self, imds, path, tok, valid):
        ov = imds._override(path)
        if ov is not None:
            return self._reply(ov[0], ov[1])
        if path == "/latest/api/token":
            if self.command != "PUT":
                return self._reply(405, "Method Not Allowed")
            if self.headers.get("X-Forwarded-For"):
                return self._reply(403, "Forbidden")
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            try:
                ttl = int(ttl)
            except (TypeError, ValueError):
                return self._reply(400, "Bad Request")
            if not 1 <= ttl <= MAX_TTL:
                return self._reply(400, "Bad Request")
            return self._reply(200, imds._new_token(ttl),
                               extra=[("X-aws-ec2-metadata-token-ttl-seconds", str(ttl))])
        if self.command not in ("GET", "HEAD"):
            return self._reply(405, "Method Not Allowed")
        if tok is not None and not valid:
            return self._reply(401, "Unauthorized")
        if imds.require_token and not valid:
            return self._reply(401, "Unauthorized")
        found = imds._lookup(path)
        if found is None:
            return self._reply(404, "Not Found")
        body, ctype = found
        return self._reply(200, body, ctype)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle


class FakeIMDS:
    def __init__(self, require_token=True, role="geusemaker-test-role",
                 access_key_id="ASIAFAKEIMDSKEY00001", secret_access_key="fake-imds-secret-key",
                 token="fake-imds-session-token", expiration=None, region="us-east-1",
                 availability_zone=None, instance_id="i-0fakeimds00000001",
                 instance_type="t3.medium", account_id="123456789012", port=0):
        self.require_token = require_token
        self.role = role
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.token = token
        self.expiration = expiration  # epoch seconds or ISO string; default now + 6 h
        self.region = region
        self.availability_zone = availability_zone or region + "a"
        self.instance_id = instance_id
        self.instance_type = instance_type
        self.account_id = account_id
        self.spot_action = None
        self.port = port
        self._lock = threading.Lock()
        self._tokens = {}
        self._overrides = {}
        self._records = []
        self._server = None
        self._thread = None
        self.url = None

    # -- lifecycle
    def start(self):
        self._server = _Server(("127.0.0.1", self.port), _Handler)
        self._server.imds = self
        self.port = self._server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True,
                                        name="fakeimds")
        self._thread.start()
        return self

    def stop(self):
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- knobs
    def set_response(self, path, status, body=""):
        """Override the answer for an exact path (any method)."""
        with self._lock:
            self._overrides[path] = (int(status), body)

    def clear_responses(self):
        with self._lock:
            self._overrides.clear()

    def set_spot_action(self, action="terminate", when=None):
        """Publish a spot interruption notice (when: epoch seconds, default now + 120)."""
        self.spot_action = None if action is None else {
            "action": action, "time": _iso(when if when is not None else time.time() + 120)}

    def expire_tokens(self):
        with self._lock:
            self._tokens.clear()

    @property
    def records(self):
        with self._lock:
            return list(self._records)

    def clear_records(self):
        with self._lock:
            self._records = []

    # -- internals
    def _record(self, rec):
        with self._lock:
            self._records.append(rec)

    def _override(self, path):
        with self._lock:
            return self._overrides.get(path)

    def _new_token(self, ttl):
        t = secrets.token_urlsafe(40)
        with self._lock:
            self._tokens[t] = time.monotonic() + ttl
        return t

    def _token_valid(self, tok):
        with self._lock:
            exp = self._tokens.get(tok)
        return exp is not None and exp > time.monotonic()

    def credentials(self):
        exp = self.expiration
        if exp is None:
            exp = _iso(time.time() + 6 * 3600)
        elif not isinstance(exp, str):
            exp = _iso(exp)
        return {"Code": "Success", "LastUpdated": _iso(time.time() - 60), "Type": "AWS-HMAC",
                "AccessKeyId": self.access_key_id, "SecretAccessKey": self.secret_access_key,
                "Token": self.token, "Expiration": exp}

    def _lookup(self, path):
        md = "/latest/meta-data/"
        text = "text/plain"
        if path in ("/latest/meta-data", md):
            return ("ami-id\nhostname\niam/\ninstance-id\ninstance-type\nplacement/\n"
                    "local-ipv4\nspot/\n", text)
        if path == md + "instance-id":
            return self.instance_id, text
        if path == md + "instance-type":
            return self.instance_type, text
        if path == md + "ami-id":
            return "ami-0fakeimds0000001", text
        if path == md + "local-ipv4":
            return "127.0.0.1", text
        if path == md + "hostname":
            return "ip-127-0-0-1.ec2.internal", text
        if path in (md + "placement", md + "placement/"):
            return "availability-zone\nregion\n", text
        if path == md + "placement/region":
            return self.region, text
        if path == md + "placement/availability-zone":
            return self.availability_zone, text
        if path in (md + "iam", md + "iam/"):
            return "info\nsecurity-credentials/\n", text
        if path == md + "iam/info":
            return json.dumps({
                "Code": "Success", "LastUpdated": _iso(time.time()),
                "InstanceProfileArn": "arn:aws:iam::%s:instance-profile/%s"
                                      % (self.account_id, self.role),
                "InstanceProfileId": "AIPAFAKEIMDS0000001"}), text
        if path in (md + "iam/security-credentials", md + "iam/security-credentials/"):
            return (self.role, text) if self.role else None
        if self.role and path.rstrip("/") == md + "iam/security-credentials/" + self.role:
            return json.dumps(self.credentials(), indent=2), text
        if path == md + "spot/instance-action":
            return (json.dumps(self.spot_action), text) if self.spot_action else None
        if path.rstrip("/") == "/latest/dynamic/instance-identity/document":
            return json.dumps({
                "accountId": self.account_id, "architecture": "x86_64",
                "availabilityZone": self.availability_zone, "imageId": "ami-0fakeimds0000001",
                "instanceId": self.instance_id, "instanceType": self.instance_type,
                "pendingTime": _iso(time.time() - 600), "privateIp": "127.0.0.1",
                "region": self.region, "version": "2017-09-30"}, indent=2), "application/json"
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(description="fake EC2 IMDSv2 on 127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--no-require-token", action="store_true")
    ap.add_argument("--role", default="geusemaker-test-role")
    ap.add_argument("--region", default="us-east-1")
    a = ap.parse_args(argv)
    imds = FakeIMDS(require_token=not a.no_require_token, role=a.role, region=a.region,
                    port=a.port).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sys.stdout.write(imds.url + "\n")
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    imds.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
