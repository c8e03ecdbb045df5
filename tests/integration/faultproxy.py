#!/usr/bin/env python3
"""Fault-injection HTTP proxy placed between geusemaker and a local moto server.

The binary talks plain HTTP to the proxy as if it were the AWS endpoint
(AWS_ENDPOINT_URL=http://127.0.0.1:PORT).  Every request is identified
(service, action, params), recorded, and either forwarded to the upstream
emulator or answered with an injected fault, according to a list of rules.

In-process use (pytest):

    p = FaultProxy("http://127.0.0.1:5000", log_path="requests.jsonl")
    p.start()
    p.add_rule({"service": "ec2", "action": "RunInstances",
                "error": "InsufficientInstanceCapacity", "status": 500, "times": 1})
    ...
    p.stop()

CLI use (benchmarks, demos):

    python3 faultproxy.py --upstream http://127.0.0.1:5000 [--port 0]
        [--rules rules.json] [--log requests.jsonl] [--latency-ms N]

prints its URL on the first stdout line and runs until SIGTERM/SIGINT.
Control endpoint (both modes): POST /__proxy/rules (JSON list replaces the
rules, a JSON object appends one), DELETE /__proxy/rules, GET /__proxy/rules,
GET /__proxy/records, DELETE /__proxy/records.

Rule format (all keys optional except one action key):
  filters : service (str|list, case-insensitive), action (str|list),
            method (str), path (regex searched in the path),
            match (dict param -> value|list of values, exact string compare,
                   dotted keys reach into JSON bodies; or a str that must
                   appear as a substring of the query string + request body, as
                   is or percent- or form-encoded)
  counting: skip (let the first K matching requests through), times (fire for
            this many matching requests, default unlimited), probability (fire for
            each matching request with this chance, drawn from a generator seeded
            with seed, default 0: repeatable)
  terminal faults (first matching rule wins):
            error + status(default 400) + message [+ type Sender|Receiver]
            status without error: bare error; body "aws" (realistic AWS error
                   for the protocol), "text" (reason phrase), "empty", or any
                   other literal string; optional code, content_type
            reset: true  -> TCP RST without a response
                   (with forward: true the request reaches the upstream first: a lost
                   answer to a request that was carried out)
            close: true  -> close the connection (FIN) without a response
  modifiers (every matching rule applies):
            latency_ms: N (cumulative; may also accompany a terminal fault)
            rewrite: {"pattern": re, "replace": str} or a list of them
            respond: callable(info, status, headers, body) -> (status, headers, body)
                   or None to keep the answer (in-process only): replaces a forwarded
                   answer, e.g. one computed from the request (info: service, action,
                   params, ...; headers: [(name, value)]; body: bytes as received)
            kill_pid: int | callable | object with .pid | "from_file" (with
                   pid_file), after: N (default 1), when: before_response |
                   after_response, signal (default SIGKILL), pid_wait (s)
  lifetime: until: a filter dict (service, action, method, path, match, as above):
            the rule fires for no request after the first one that matches it
            (a rewrite that holds until the client changes something, e.g.
            until an UpdateAutoScalingGroup asks for on-demand)
  name    : label used in the record's "fault" field.

observer= (in-process only): a callable given every request (method, raw path,
header pairs, body) before it is answered; the integration suite's conftest
checks each geusemaker request against the AWS API models with it
(apimodels.py).
"""

import argparse
import gzip
import http.client
import http.server
import json
import os
import random
import re
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse
import uuid

__all__ = ["FaultProxy", "Rule", "identify", "error_body"]

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "proxy-connection", "te", "trailer", "trailers", "transfer-encoding",
    "upgrade", "content-length", "expect",
}

MAX_BODY = 64 * 1024 * 1024

CRED_RE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request")

TARGET_PREFIX_SERVICE = {
    "amazonssm": "ssm",
    "awspricelistservice": "pricing",
    "trentservice": "kms",
    "logs_20140328": "logs",
    "dynamodb_20120810": "dynamodb",
    "amazonec2containerregistry_v20150921": "ecr",
    "secretsmanager": "secretsmanager",
}

QUERY_NAMESPACES = {
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
    "elasticloadbalancing": "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
    "autoscaling": "http://autoscaling.amazonaws.com/doc/2011-01-01/",
    "cloudformation": "http://cloudformation.amazonaws.com/doc/2010-05-15/",
}

_ID = r"([^/]+)"
EFS_ROUTES = [
    ("POST", r"/file-systems", "CreateFileSystem", None),
    ("GET", r"/file-systems", "DescribeFileSystems", None),
    ("GET", r"/file-systems/" + _ID, "DescribeFileSystems", "FileSystemId"),
    ("DELETE", r"/file-systems/" + _ID, "DeleteFileSystem", "FileSystemId"),
    ("PUT", r"/file-systems/" + _ID, "UpdateFileSystem", "FileSystemId"),
    ("PUT", r"/file-systems/" + _ID + r"/lifecycle-configuration",
     "PutLifecycleConfiguration", "FileSystemId"),
    ("GET", r"/file-systems/" + _ID + r"/lifecycle-configuration",
     "DescribeLifecycleConfiguration", "FileSystemId"),
    ("PUT", r"/file-systems/" + _ID + r"/backup-policy", "PutBackupPolicy", "FileSystemId"),
    ("GET", r"/file-systems/" + _ID + r"/backup-policy", "DescribeBackupPolicy", "FileSystemId"),
    ("PUT", r"/file-systems/" + _ID + r"/policy", "PutFileSystemPolicy", "FileSystemId"),
    ("GET", r"/file-systems/" + _ID + r"/policy", "DescribeFileSystemPolicy", "FileSystemId"),
    ("DELETE", r"/file-systems/" + _ID + r"/policy", "DeleteFileSystemPolicy", "FileSystemId"),
    ("POST", r"/file-systems/" + _ID + r"/replication-configuration",
     "CreateReplicationConfiguration", "FileSystemId"),
    ("DELETE", r"/file-systems/" + _ID + r"/replication-configuration",
     "DeleteReplicationConfiguration", "FileSystemId"),
    ("GET", r"/file-systems/replication-configurations", "DescribeReplicationConfigurations", None),
    ("PUT", r"/file-systems/" + _ID + r"/protection", "UpdateFileSystemProtection", "FileSystemId"),
    ("POST", r"/mount-targets", "CreateMountTarget", None),
    ("GET", r"/mount-targets", "DescribeMountTargets", None),
    ("DELETE", r"/mount-targets/" + _ID, "DeleteMountTarget", "MountTargetId"),
    ("GET", r"/mount-targets/" + _ID + r"/security-groups",
     "DescribeMountTargetSecurityGroups", "MountTargetId"),
    ("PUT", r"/mount-targets/" + _ID + r"/security-groups",
     "ModifyMountTargetSecurityGroups", "MountTargetId"),
    ("POST", r"/resource-tags/" + _ID, "TagResource", "ResourceId"),
    ("GET", r"/resource-tags/" + _ID, "ListTagsForResource", "ResourceId"),
    ("DELETE", r"/resource-tags/" + _ID, "UntagResource", "ResourceId"),
    ("POST", r"/create-tags/" + _ID, "CreateTags", "FileSystemId"),
    ("POST", r"/delete-tags/" + _ID, "DeleteTags", "FileSystemId"),
    ("GET", r"/tags/" + _ID, "DescribeTags", "FileSystemId"),
    ("POST", r"/access-points", "CreateAccessPoint", None),
    ("GET", r"/access-points", "DescribeAccessPoints", None),
    ("DELETE", r"/access-points/" + _ID, "DeleteAccessPoint", "AccessPointId"),
    ("GET", r"/account-preferences", "DescribeAccountPreferences", None),
    ("PUT", r"/account-preferences", "PutAccountPreferences", None),
]
EFS_ROUTES = [(m, re.compile(r"^/2015-02-01" + p + r"/?$"), a, k) for (m, p, a, k) in EFS_ROUTES]


# --------------------------------------------------------------------------
# request identification


def _first_values(qs):
    out = {}
    for k, v in urllib.parse.parse_qsl(qs, keep_blank_values=True):
        out.setdefault(k, v)
    return out


def identify(method, raw_path, headers, body):
    """Return dict(service, action, params, protocol, path, query).

    headers: any mapping with case-insensitive .get (email.message.Message)
    or a plain dict (keys looked up case-insensitively).
    """
    if isinstance(headers, dict):
        low = {k.lower(): v for k, v in headers.items()}
        hget = lambda name: low.get(name.lower())  # noqa: E731
    else:
        hget = headers.get
    split = urllib.parse.urlsplit(raw_path)
    path, query = split.path or "/", split.query
    service = None
    auth = hget("Authorization") or ""
    m = CRED_RE.search(auth)
    if not m and query:
        m = CRED_RE.search("Credential=" + _first_values(query).get("X-Amz-Credential", ""))
    if m:
        service = m.group(4).lower()
    target = hget("X-Amz-Target")
    ctype = (hget("Content-Type") or "").lower()
    if not service and target:
        prefix = target.split(".", 1)[0]
        service = TARGET_PREFIX_SERVICE.get(prefix.lower(), prefix.lower())
    if not service and path.startswith("/2015-02-01/"):
        service = "elasticfilesystem"
    service = service or "unknown"

    params = {}
    action = None
    if target:
        protocol = "json"
        action = target.split(".", 1)[1] if "." in target else target
        params = _json_dict(body)
    elif path.startswith("/2015-02-01/") or service == "elasticfilesystem":
        protocol = "restjson"
        params = dict(_first_values(query))
        params.update(_json_dict(body))
        for (m_, rx, name, key) in EFS_ROUTES:
            if m_ == method:
                mm = rx.match(path)
                if mm:
                    action = name
                    if key and mm.groups():
                        params.setdefault(key, urllib.parse.unquote(mm.group(1)))
                    break
        if action is None:
            action = "%s %s" % (method, path)
    else:
        protocol = "ec2" if service == "ec2" else "query"
        params = dict(_first_values(query))
        if body and ("form-urlencoded" in ctype or not ctype) and method in ("POST", "PUT"):
            try:
                params.update(_first_values(body.decode("utf-8")))
            except UnicodeDecodeError:
                pass
        action = params.get("Action") or "%s %s" % (method, path)
    return {"service": service, "action": action, "params": params,
            "protocol": protocol, "path": path, "query": query, "target": target,
            "content_type": ctype}


def _json_dict(body):
    if not body:
        return {}
    try:
        v = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return {}
    return v if isinstance(v, dict) else {}


# --------------------------------------------------------------------------
# AWS error bodies


def _xml_escape(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def error_body(info, code, message, status, err_type=None):
    """Build (headers list, body bytes) for an AWS error in info's protocol."""
    rid = str(uuid.uuid4())
    proto = info["protocol"]
    if proto == "ec2":
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>%s</Code>'
                '<Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>'
                % (_xml_escape(code), _xml_escape(message), rid))
        return [("Content-Type", "text/xml;charset=UTF-8")], body.encode()
    if proto == "query":
        ns = QUERY_NAMESPACES.get(info["service"],
                                  "https://%s.amazonaws.com/doc/" % info["service"])
        t = err_type or ("Receiver" if status >= 500 else "Sender")
        body = ('<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>%s</Code>'
                '<Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>'
                % (ns, t, _xml_escape(code), _xml_escape(message), rid))
        return [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], body.encode()
    if proto == "json":
        ct = info.get("content_type") or ""
        if "application/x-amz-json-" not in ct:
            ct = "application/x-amz-json-1.1"
        body = json.dumps({"__type": code, "message": message})
        return [("Content-Type", ct), ("x-amzn-RequestId", rid)], body.encode()
    body = json.dumps({"ErrorCode": code, "Message": message})
    return [("Content-Type", "application/json"), ("x-amzn-ErrorType", code),
            ("x-amzn-RequestId", rid)], body.encode()


def _default_code(info, status):
    ec2 = info["protocol"] == "ec2"
    if status == 503:
        return "Unavailable" if ec2 else "ServiceUnavailable"
    if status == 500:
        return "InternalError" if ec2 else "InternalFailure"
    if status == 429:
        return "RequestLimitExceeded" if ec2 else "Throttling"
    return "HttpStatus%d" % status


# --------------------------------------------------------------------------
# rules


TERMINAL_KEYS = ("error", "status", "reset", "close")


class Rule:
    """One rule; counters are updated by the proxy under its lock."""

    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise TypeError("rule must be a dict")
        self.spec = dict(spec)
        s = self.spec
        self.service = s.get("service")
        self.action = s.get("action")
        self.method = s.get("method")
        self.path_re = re.compile(s["path"]) if s.get("path") else None
        self.match = s.get("match")
        self.is_kill = "kill_pid" in s
        self.terminal = any(k in s for k in TERMINAL_KEYS)
        if self.is_kill:
            after = int(s.get("after", 1))
            if after < 1:
                raise ValueError("after must be >= 1")
            self.skip = after - 1 + int(s.get("skip", 0))
            self.times = int(s.get("times", 1))
            self.when = s.get("when", "before_response")
            if self.when not in ("before_response", "after_response"):
                raise ValueError("when must be before_response or after_response")
        else:
            self.skip = int(s.get("skip", 0))
            self.times = None if s.get("times") is None else int(s["times"])
            self.when = None
        rw = s.get("rewrite")
        if isinstance(rw, dict):
            rw = [rw]
        self.rewrites = [(re.compile(r["pattern"]), r.get("replace", ""), int(r.get("count", 0)))
                         for r in (rw or [])]
        self.latency_ms = float(s.get("latency_ms", 0) or 0)
        self.respond = s.get("respond")
        if self.respond is not None and not callable(self.respond):
            raise ValueError("respond must be a callable (in-process use only)")
        if not (self.terminal or self.is_kill or self.rewrites or self.latency_ms
                or self.respond):
            raise ValueError("rule has no effect: %r" % (spec,))
        until = s.get("until")
        if until is not None and not isinstance(until, dict):
            raise TypeError("until must be a filter dict")
        self.until = _Filter(until) if until else None
        self.ended = False
        self.seen = 0
        self.fired = 0
        self.probability = float(s.get("probability", 1.0))
        self.rng = random.Random(int(s.get("seed", 0)))
        self.name = s.get("name") or self._describe()

    def _describe(self):
        s = self.spec
        parts = []
        if "error" in s:
            parts.append("error:%s/%s" % (s["error"], s.get("status", 400)))
        elif "status" in s:
            parts.append("status:%s" % s["status"])
        if s.get("reset"):
            parts.append("reset_after_forward" if s.get("forward") else "reset")
        if s.get("close"):
            parts.append("close")
        if self.is_kill:
            parts.append("kill:%s" % self.when)
        if self.rewrites:
            parts.append("rewrite")
        if self.respond:
            parts.append("respond")
        if self.latency_ms:
            parts.append("latency:%gms" % self.latency_ms)
        return "+".join(parts)

    @property
    def remaining(self):
        return None if self.times is None else max(0, self.times - self.fired)

    @property
    def exhausted(self):
        return self.ended or (self.times is not None and self.fired >= self.times)

    def end_if(self, info, method, raw_body):
        """Ends the rule when this request matches its `until` filter."""
        if self.until is not None and self.until.matches(info, method, raw_body):
            self.ended = True

    def matches(self, info, method, raw_body):
        if self.service is not None:
            svcs = [self.service] if isinstance(self.service, str) else self.service
            if info["service"].lower() not in [x.lower() for x in svcs]:
                return False
        if self.action is not None:
            acts = [self.action] if isinstance(self.action, str) else self.action
            if info["action"] not in acts:
                return False
        if self.method is not None and method.upper() != self.method.upper():
            return False
        if self.path_re is not None and not self.path_re.search(info["path"]):
            return False
        if self.match is not None:
            if isinstance(self.match, str):
                hay = info["query"] + "\n" + raw_body.decode("utf-8", "replace")
                forms = (self.match, urllib.parse.quote(self.match, safe=""),
                         urllib.parse.quote_plus(self.match, safe=""))
                if not any(f in hay for f in forms):
                    return False
            else:
                for k, want in self.match.items():
                    got = _lookup(info["params"], k)
                    if got is None:
                        return False
                    wants = want if isinstance(want, (list, tuple)) else [want]
                    gs = got if isinstance(got, str) else json.dumps(got) \
                        if isinstance(got, (dict, list)) else str(got)
                    if not any(gs == (w if isinstance(w, str) else str(w)) for w in wants) \
                            and not any(got == w for w in wants):
                        return False
        return True

    def take(self):
        """Count one matching request; True if the rule fires for it."""
        if self.exhausted:
            return False
        self.seen += 1
        if self.seen <= self.skip:
            return False
        if self.probability < 1.0 and self.rng.random() >= self.probability:
            return False
        self.fired += 1
        return True

    def __repr__(self):
        return "<Rule %s fired=%d seen=%d>" % (self.name, self.fired, self.seen)


class _Filter(Rule):
    """Only the filter part of a rule (an `until`)."""

    def __init__(self, spec):  # noqa: super().__init__ would ask for an effect
        self.spec = dict(spec)
        self.service = spec.get("service")
        self.action = spec.get("action")
        self.method = spec.get("method")
        self.path_re = re.compile(spec["path"]) if spec.get("path") else None
        self.match = spec.get("match")


def _lookup(params, key):
    if key in params:
        return params[key]
    cur = params
    for part in key.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return None
    return cur


def _resolve_pid(spec, deadline):
    src = spec.get("kill_pid")
    while True:
        pid = None
        try:
            if src == "from_file":
                with open(spec["pid_file"]) as f:
                    txt = f.read().strip()
                pid = int(txt) if txt else None
            elif callable(src):
                pid = src()
            elif hasattr(src, "pid"):
                pid = src.pid
            else:
                pid = src
            if pid is not None and not isinstance(pid, int):
                pid = int(pid)
        except (OSError, ValueError):
            pid = None
        if pid or time.monotonic() >= deadline:
            return pid
        time.sleep(0.01)


def _signal_num(v):
    if v is None:
        return signal.SIGKILL
    if isinstance(v, int):
        return v
    v = str(v).upper()
    return getattr(signal, v if v.startswith("SIG") else "SIG" + v)


# --------------------------------------------------------------------------
# server


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def server_bind(self):
        # skip HTTPServer.server_bind: it does a reverse DNS lookup (getfqdn)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultproxy"
    timeout = 300  # idle keep-alive connections are closed after this

    # -- plumbing
    def setup(self):
        super().setup()
        self.fp = self.server.fp
        self.fp._track(self.connection, True)
        self._up = None
        self._up_reused = False

    def finish(self):
        try:
            super().finish()
        finally:
            self.fp._track(self.connection, False)
            if self._up is not None:
                self._up.close()

    def log_message(self, fmt, *args):
        if self.fp.verbose:
            sys.stderr.write("faultproxy: " + (fmt % args) + "\n")

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (OSError, ValueError):  # client gone, timed out, or aborted by us
            self.close_connection = True

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            total = 0
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    raise ValueError("request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(n) if n > 0 else b""

    def _send(self, status, headers, body, head=False):
        self.send_response_only(status)
        names = set()
        for k, v in headers:
            if k.lower() in HOP_BY_HOP:
                continue
            names.add(k.lower())
            self.send_header(k, v)
        if "date" not in names:
            self.send_header("Date", self.date_time_string())
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head and body:
            self.wfile.write(body)
        self.wfile.flush()

    def _abort(self, rst):
        """Drop the client connection without a response."""
        self.close_connection = True
        try:
            if rst:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.rfile.close()
        except OSError:
            pass
        try:
            self.wfile.close()
        except OSError:
            pass
        self.connection.close()  # real close now: the RST goes out at once

    # -- upstream
    def _forward(self, method, body, info):
        fp = self.fp
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        for attempt in (0, 1):
            if self._up is None:
                self._up = http.client.HTTPConnection(fp.up_host, fp.up_port,
                                                      timeout=fp.upstream_timeout)
                self._up_reused = False
            conn = self._up
            try:
                conn.putrequest(method, fp.up_prefix + self.path, skip_host=True,
                                skip_accept_encoding=True)
                for k, v in headers:
                    conn.putheader(k, v)
                if body or method in ("POST", "PUT", "PATCH"):
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body if body else None)
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError, http.client.CannotSendRequest,
                    http.client.BadStatusLine) as e:
                conn.close()
                self._up = None
                if attempt == 0 and self._up_reused:
                    continue  # stale keep-alive connection: one fresh try
                raise e
            except Exception:
                conn.close()
                self._up = None
                raise
            if resp.will_close:
                conn.close()
                self._up = None
            else:
                self._up_reused = True
            return resp.status, resp.getheaders(), data
        raise RuntimeError("unreachable")

    # -- main entry
    def _handle(self):
        method = self.command
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self._send(400, [("Content-Type", "text/plain")], b"bad request body\n")
            return
        if self.path.startswith("/__proxy/"):
            self._control(method, body)
            return
        self.fp._proxy_request(self, method, body)

    def _control(self, method, body):
        fp = self.fp
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        try:
            if path == "/__proxy/rules" and method == "POST":
                spec = json.loads(body.decode() or "[]")
                if isinstance(spec, list):
                    fp.set_rules(spec)
                else:
                    fp.add_rule(spec)
                out = {"rules": fp.rules_info()}
            elif path == "/__proxy/rules" and method == "DELETE":
                fp.clear_rules()
                out = {"rules": []}
            elif path == "/__proxy/rules" and method == "GET":
                out = {"rules": fp.rules_info()}
            elif path == "/__proxy/records" and method == "GET":
                out = {"records": [fp._public(r) for r in fp.records]}
            elif path == "/__proxy/records" and method == "DELETE":
                fp.clear_records()
                out = {"records": []}
            else:
                self._send(404, [("Content-Type", "application/json")], b'{"error":"not found"}')
                return
        except (ValueError, TypeError, KeyError, re.error) as e:
            self._send(400, [("Content-Type", "application/json")],
                       json.dumps({"error": str(e)}).encode())
            return
        self._send(200, [("Content-Type", "application/json")], json.dumps(out).encode())

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle


class FaultProxy:
    """Fault-injecting reverse proxy; see the module docstring for rules."""

    def __init__(self, upstream_url, log_path=None, port=0, latency_ms=0,
                 upstream_timeout=60.0, verbose=False, observer=None):
        u = urllib.parse.urlsplit(upstream_url)
        if u.scheme != "http":
            raise ValueError("upstream must be http://")
        self.upstream_url = upstream_url.rstrip("/")
        self.up_host = u.hostname
        self.up_port = u.port or 80
        self.up_prefix = u.path.rstrip("/")
        self.log_path = str(log_path) if log_path else None
        self.port = port
        self.latency_ms = float(latency_ms or 0)
        self.upstream_timeout = upstream_timeout
        self.verbose = verbose
        # observer(method, raw_path, headers [(name, value)], body bytes): sees
        # every request before it is answered (the API model check); what it
        # raises is recorded in the record's "observer_error", never sent.
        self.observer = observer
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._rules = []
        self._records = []
        self._seq = 0
        self._conns = set()
        self._server = None
        self._thread = None
        self._log = None
        self.url = None

    # -- lifecycle
    def start(self):
        if self._server is not None:
            return self
        self._server = _Server(("127.0.0.1", self.port), _Handler)
        self._server.fp = self
        self.port = self._server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        if self.log_path:
            self._log = open(self.log_path, "a", encoding="utf-8")
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name="faultproxy", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        srv = self._server
        if srv is None:
            return
        srv.shutdown()
        srv.server_close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)
        self._server = None
        with self._lock:
            if self._log:
                self._log.close()
                self._log = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _track(self, conn, add):
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    # -- rules
    def add_rule(self, spec):
        rule = spec if isinstance(spec, Rule) else Rule(spec)
        with self._lock:
            self._rules.append(rule)
        return rule

    def set_rules(self, specs):
        rules = [Rule(s) for s in specs]
        with self._lock:
            self._rules = rules
        return rules

    def clear_rules(self):
        with self._lock:
            self._rules = []

    @property
    def rules(self):
        with self._lock:
            return list(self._rules)

    def rules_info(self):
        with self._lock:
            return [{"name": r.name, "seen": r.seen, "fired": r.fired,
                     "remaining": r.remaining, "ended": r.ended} for r in self._rules]

    def kill_after(self, n, pid, when="before_response", **filters):
        """SIGKILL `pid` (int, callable, object with .pid, or None-returning
        callable until known) at the n-th request (matching filters if given)."""
        spec = dict(filters)
        spec.update({"kill_pid": pid, "after": n, "when": when})
        return self.add_rule(spec)

    # -- records
    @property
    def records(self):
        with self._lock:
            return sorted(self._records, key=lambda r: r["seq"])

    def clear_records(self):
        with self._lock:
            self._records = []

    def find(self, action=None, service=None, status=None):
        out = []
        for r in self.records:
            if action is not None and r["action"] != action:
                continue
            if service is not None and r["service"] != service:
                continue
            if status is not None and r["status"] != status:
                continue
            out.append(r)
        return out

    def actions(self):
        return [(r["service"], r["action"]) for r in self.records]

    def count(self, action=None, service=None, status=None):
        return len(self.find(action=action, service=service, status=status))

    def wait_for(self, predicate, timeout=10.0):
        """Wait until predicate(records) is true; returns the records or raises TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                recs = sorted(self._records, key=lambda r: r["seq"])
                if predicate(recs):
                    return recs
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("faultproxy: condition not met within %.1fs" % timeout)
                self._cond.wait(min(left, 0.2))

    @staticmethod
    def _public(rec):
        return {k: v for k, v in rec.items()
                if k not in ("request_body", "response_body", "request_headers")}

    def _record(self, rec):
        with self._cond:
            self._records.append(rec)
            if self._log:
                self._log.write(json.dumps(self._public(rec), default=str) + "\n")
                self._log.flush()
            self._cond.notify_all()

    # -- request path
    def _proxy_request(self, h, method, body):
        start = time.time()
        info = identify(method, h.path, h.headers, body)
        with self._lock:
            self._seq += 1
            seq = self._seq
            terminal = None
            mods = []
            for rule in self._rules:
                if not rule.matches(info, method, body):
                    continue
                if rule.terminal and not rule.is_kill:
                    if terminal is None and rule.take():
                        terminal = rule
                elif rule.take():
                    mods.append(rule)
            for rule in self._rules:
                rule.end_if(info, method, body)
        fired = ([terminal] if terminal else []) + mods
        rec = {"seq": seq, "service": info["service"], "action": info["action"],
               "method": method, "path": info["path"], "query": info["query"],
               "start": start, "end": None, "status": None, "upstream_status": None,
               "fault": ",".join(r.name for r in fired) or None,
               "latency_ms": 0.0, "params": info["params"],
               "request_headers": dict(h.headers.items()),
               "request_body": body.decode("utf-8", "replace"), "response_body": None}

        if self.observer is not None:
            try:
                self.observer(method, h.path, list(h.headers.items()), body)
            except Exception as e:  # noqa: BLE001 - the proxy must keep answering
                rec["observer_error"] = "%s: %s" % (type(e).__name__, e)

        delay = self.latency_ms + sum(r.latency_ms for r in fired)
        if delay > 0:
            rec["latency_ms"] = delay
            time.sleep(delay / 1000.0)

        kills = [r for r in mods if r.is_kill]
        before = [r for r in kills if r.when == "before_response"]
        after = [r for r in kills if r.when == "after_response"]
        # The record is stored before the client can observe the outcome, so a
        # test that reads proxy.records right after its call always finds it.
        recorded = False
        try:
            if terminal is not None and (terminal.spec.get("reset") or terminal.spec.get("close")):
                if terminal.spec.get("forward"):
                    try:
                        status, _, data = h._forward(method, body, info)
                        rec["upstream_status"] = status
                        rec["response_body"] = data.decode("utf-8", "replace")
                    except Exception:  # the client sees a reset either way
                        rec["fault"] = (rec["fault"] or "") + ",upstream_error"
                self._do_kills(kills, rec)
                rec["end"] = time.time()
                self._record(rec)
                recorded = True
                h._abort(rst=bool(terminal.spec.get("reset")))
                return
            if terminal is not None:
                status, headers, data = self._synthesize(terminal, info)
            else:
                try:
                    status, headers, data = h._forward(method, body, info)
                    rec["upstream_status"] = status
                except Exception as e:  # upstream unreachable or broken
                    status = 502
                    headers = [("Content-Type", "text/plain")]
                    data = ("faultproxy: upstream error: %s\n" % e).encode()
                    rec["fault"] = (rec["fault"] + "," if rec["fault"] else "") + "upstream_error"
                rewrites = [rw for r in mods for rw in r.rewrites]
                if rewrites:
                    headers, data = _apply_rewrites(headers, data, rewrites)
                for r in mods:
                    if r.respond is None:
                        continue
                    try:
                        out = r.respond(info, status, list(headers), data)
                    except Exception as e:  # noqa: BLE001 - shown to the client and recorded
                        hdrs, body_ = error_body(info, "InternalFailure",
                                                 "faultproxy: respond failed: %r" % e, 500)
                        out = (500, hdrs, body_)
                        rec["respond_error"] = repr(e)
                    if out is not None:
                        status, headers, data = out
            rec["response_body"] = data.decode("utf-8", "replace")
            if before:
                self._do_kills(kills, rec)
            if before and isinstance(rec.get("kill"), int):
                # the client is dead: it never gets its answer
                rec["end"] = time.time()
                self._record(rec)
                recorded = True
                h._abort(rst=False)
                return
            pids = [(r, self._pid_for(r)) for r in after]
            rec["status"] = status
            if pids:
                rec["kill"] = pids[0][1] or "no-pid"
            rec["end"] = time.time()
            self._record(rec)
            recorded = True
            try:
                h._send(status, headers, data, head=(method == "HEAD"))
            except OSError:
                h.close_connection = True
                rec["client_gone"] = True
            for r, pid in pids:
                self._kill(r, pid, rec)
        finally:
            if not recorded:
                rec["end"] = time.time()
                self._record(rec)

    @staticmethod
    def _pid_for(rule):
        return _resolve_pid(rule.spec, time.monotonic() + float(rule.spec.get("pid_wait", 5.0)))

    @staticmethod
    def _kill(rule, pid, rec):
        if not pid:
            rec["kill"] = "no-pid"
            return
        try:
            os.kill(pid, _signal_num(rule.spec.get("signal")))
            rec["kill"] = pid
        except OSError as e:
            rec["kill"] = "failed: %s" % e

    def _do_kills(self, kills, rec):
        for r in kills:
            self._kill(r, self._pid_for(r), rec)

    @staticmethod
    def _synthesize(rule, info):
        s = rule.spec
        if "error" in s:
            status = int(s.get("status", 400))
            code = s["error"]
            msg = s.get("message", "injected by faultproxy: %s" % code)
            headers, data = error_body(info, code, msg, status, s.get("type"))
        else:
            status = int(s["status"])
            kind = s.get("body")
            if kind is None:
                kind = "aws" if status in (500, 503, 429) else "text"
            if kind == "aws":
                code = s.get("code") or _default_code(info, status)
                msg = s.get("message", "injected by faultproxy")
                headers, data = error_body(info, code, msg, status, s.get("type"))
            elif kind == "text":
                reason = http.client.responses.get(status, "Error")
                headers, data = [("Content-Type", "text/plain")], (reason + "\n").encode()
            elif kind == "empty":
                headers, data = [], b""
            else:
                headers = [("Content-Type", s.get("content_type", "text/plain"))]
                data = kind.encode() if isinstance(kind, str) else bytes(kind)
        for k, v in (s.get("headers") or {}).items():
            headers.append((k, v))
        return status, headers, data


def _apply_rewrites(headers, data, rewrites):
    enc = None
    for k, v in headers:
        if k.lower() == "content-encoding":
            enc = v.lower()
    if enc == "gzip":
        try:
            data = gzip.decompress(data)
            headers = [(k, v) for k, v in headers if k.lower() != "content-encoding"]
        except OSError:
            return headers, data
    text = data.decode("utf-8", "surrogateescape")
    for rx, repl, count in rewrites:
        text = rx.sub(repl, text, count=count)
    return headers, text.encode("utf-8", "surrogateescape")


# --------------------------------------------------------------------------
# CLI


def main(argv=None):
    ap = argparse.ArgumentParser(description="fault-injection proxy for AWS emulators")
    ap.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT of the emulator")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--rules", help="JSON file holding a list of rules")
    ap.add_argument("--log", help="JSONL request log")
    ap.add_argument("--latency-ms", type=float, default=0)
    ap.add_argument("--upstream-timeout", type=float, default=60)
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    host = urllib.parse.urlsplit(a.upstream).hostname or ""
    if not host.startswith("127.") and host != "localhost":
        ap.error("upstream must be on 127.0.0.0/8")
    p = FaultProxy(a.upstream, log_path=a.log, port=a.port, latency_ms=a.latency_ms,
                   upstream_timeout=a.upstream_timeout, verbose=a.verbose)
    if a.rules:
        with open(a.rules) as f:
            p.set_rules(json.load(f))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    p.start()
    sys.stdout.write(p.url + "\n")
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    p.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
