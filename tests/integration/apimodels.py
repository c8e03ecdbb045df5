"""Checks AWS requests against the AWS API models that ship with botocore.

The emulator (moto) is lenient: it ignores members it does not know, takes a
wrongly encoded list as no list, and rarely checks required members, enums,
lengths or patterns. Real AWS refuses such a request. This module reads a
request off the wire -- method, path and query, headers, body -- and checks it
against botocore's service model (botocore.session.get_service_model):

- the service: from the SigV4 credential scope (the signing name), the Query
  `Version`, the JSON `X-Amz-Target` prefix or the REST request URI; the
  credential scope must name the model's signing name;
- the operation: the Query `Action`, the JSON target or the REST method + URI
  template;
- every member name and its nesting, in the protocol's own wire form:
    ec2    `Name.N` lists (`TagSpecification.1.Tag.2.Key`), member names from
           queryName / capitalised locationName;
    query  `Name.member.N` lists (or the member's locationName), flattened lists
           `Name.N`, maps `Name.entry.N.key` / `.value`;
    json   a JSON object body keyed by locationName or member name, with
           X-Amz-Target and Content-Type application/x-amz-json-<version>;
    rest-json  URI labels, query-string and header members by their
           locationName, the remaining members as the JSON body;
- scalar types (integers, booleans, numbers, timestamps, base64 blobs);
- required members, enums, min/max lengths of strings, lists and maps, numeric
  ranges, and string patterns.

Patterns: a pattern with an anchor (^ or $) is searched, as Smithy defines
it; one without any anchor (IAM's `[\\w+=,.@-]+`, EC2's
`[a-zA-Z0-9\\(\\)\\.\\-/_]+`) describes the whole value, as the services
enforce it, and is matched in full. `\\p{L}`, `\\p{N}` and `\\p{Z}` (Unicode
letters, numbers, separators), which Python's re lacks, are translated.

    models = ApiModels()
    result = models.check("POST", "/", headers, body)
    for v in result.violations:
        print(v.service, v.action, v.member, v.problem)
"""

import base64
import binascii
import json
import re
import threading
import urllib.parse
from collections import namedtuple

import botocore
import botocore.auth
import botocore.session

__all__ = ["ApiModels", "Violation", "CheckResult", "compile_pattern"]

Violation = namedtuple("Violation", "service action member problem")


class CheckResult:
    """The service (botocore's name), the operation and what is wrong."""

    def __init__(self, service=None, operation=None, protocol=None):
        self.service = service
        self.operation = operation
        self.protocol = protocol
        self.violations = []

    def add(self, member, problem):
        self.violations.append(Violation(self.service or "?", self.operation or "?",
                                         member or "-", problem))

    def __repr__(self):
        return "<CheckResult %s %s %d violations>" % (self.service, self.operation,
                                                      len(self.violations))


CRED_RE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request")

# Signing name -> botocore services signed with it. Anything else is looked
# up by scanning every model once (slow, but only for a service never seen).
SIGNING_SERVICES = {
    "ec2": ["ec2"],
    "sts": ["sts"],
    "iam": ["iam"],
    "elasticloadbalancing": ["elbv2", "elb"],
    "ssm": ["ssm"],
    "elasticfilesystem": ["efs"],
    "tagging": ["resourcegroupstaggingapi"],
    "pricing": ["pricing"],
    "autoscaling": ["autoscaling"],
    "s3": ["s3"],
    "kms": ["kms"],
    "logs": ["logs"],
    "acm": ["acm"],
    "sns": ["sns"],
    "sqs": ["sqs"],
    "monitoring": ["cloudwatch"],
    "cloudformation": ["cloudformation"],
    "secretsmanager": ["secretsmanager"],
}

# Headers the SDKs leave out of the signature (botocore.auth.SIGNED_HEADERS_BLACKLIST).
NEVER_SIGNED = frozenset(getattr(botocore.auth, "SIGNED_HEADERS_BLACKLIST", ()) or (
    "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id"))

# Unicode general categories Python's re has no escape for. \p{Z} is small
# enough to list; \p{L} and \p{N} are taken as "word characters except '_'"
# (letters and numbers: Python's \w is exactly str.isalnum() plus '_').
_PZ = "\\u0020\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
_P_CLASS = {"L": "[^\\W_]", "N": "[^\\W_]", "Z": "[" + _PZ + "]"}


def _translate_unicode_classes(pattern):
    """Rewrites \\p{L}, \\p{N}, \\p{Z} (inside or outside a bracket
    expression) into constructs Python's re knows. A negated bracket
    expression holding one is not translatable: ValueError."""
    if "\\p{" not in pattern:
        return pattern
    out = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and pattern.startswith("\\p{", i):
            j = pattern.index("}", i)
            out.append(_P_CLASS[pattern[i + 3:j]])
            i = j + 1
            continue
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if c != "[":
            out.append(c)
            i += 1
            continue
        # a bracket expression: collect its items
        j = i + 1
        negated = j < n and pattern[j] == "^"
        if negated:
            j += 1
        items, alts = [], []
        first = True
        while j < n and (pattern[j] != "]" or first):
            first = False
            if pattern.startswith("\\p{", j):
                k = pattern.index("}", j)
                cat = pattern[j + 3:k]
                if cat == "Z":
                    items.append(_PZ)
                else:
                    alts.append(_P_CLASS[cat])
                j = k + 1
            elif pattern[j] == "\\":
                items.append(pattern[j:j + 2])
                j += 2
            else:
                items.append(pattern[j])
                j += 1
        if alts and negated:
            raise ValueError("negated class with \\p{...}: %r" % pattern)
        body = "[" + ("^" if negated else "") + "".join(items) + "]" if items else None
        parts = ([body] if body else []) + sorted(set(alts))
        out.append(parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")")
        i = j + 1
    return "".join(out)


_PATTERN_CACHE = {}


_SURROGATE_PAIR = re.compile(r"\\u(D[89AB][0-9A-F]{2})\\u(D[C-F][0-9A-F]{2})", re.IGNORECASE)


def _join_surrogate_pairs(pattern):
    """Java-style models (Auto Scaling's `[\\u0020-\\uD7FF...\\uD800\\uDC00-
    \\uDBFF\\uDFFF...]`) name characters beyond U+FFFF as UTF-16 surrogate
    pairs; Python's re takes the code point (\\U00010000-\\U0010FFFF)."""
    def join(m):
        hi, lo = int(m.group(1), 16), int(m.group(2), 16)
        return "\\U%08X" % (0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
    return _SURROGATE_PAIR.sub(join, pattern)


def compile_pattern(pattern):
    """(compiled regex, full) for a model pattern: full means match the
    whole value (no anchor in the pattern), else search."""
    hit = _PATTERN_CACHE.get(pattern)
    if hit is None:
        full = "^" not in pattern and "$" not in pattern
        hit = (re.compile(_join_surrogate_pairs(_translate_unicode_classes(pattern)), re.DOTALL),
               full)
        _PATTERN_CACHE[pattern] = hit
    return hit


def _header_getter(headers):
    if hasattr(headers, "items"):
        pairs = list(headers.items())
    else:
        pairs = list(headers or [])
    low = {}
    for k, v in pairs:
        low.setdefault(k.lower(), v)
    return low


# A member that is present but malformed (already reported): counts as
# present for the required check, takes no further check.
INVALID = object()

_ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")
_INT_RE = re.compile(r"^-?\d+$")

_PROTOCOL_DESC = {"ec2": "EC2 query", "query": "query", "json": "JSON",
                  "rest-json": "REST-JSON", "rest-xml": "REST-XML"}


def _member_path(path, name):
    return name if not path else "%s.%s" % (path, name)


class ApiModels:
    """Loads botocore's models on demand (thread-safe) and checks requests."""

    def __init__(self, session=None):
        self._session = session or botocore.session.get_session()
        self._lock = threading.Lock()
        self._models = {}
        self._scan = None
        self._rest_routes = {}
        self.botocore_version = botocore.__version__

    # -- models
    def model(self, name):
        with self._lock:
            m = self._models.get(name)
            if m is None:
                m = self._session.get_service_model(name)
                self._models[name] = m
            return m

    def _candidates(self, signing_name):
        names = SIGNING_SERVICES.get(signing_name)
        if names is not None:
            return names
        with self._lock:
            if self._scan is None:
                self._scan = {}
                for svc in self._session.get_available_services():
                    try:
                        md = self._session.get_service_model(svc).metadata
                    except Exception:  # noqa: BLE001 - a broken model is no candidate
                        continue
                    sn = md.get("signingName") or md.get("endpointPrefix")
                    self._scan.setdefault(sn, []).append(svc)
            return self._scan.get(signing_name, [])

    @staticmethod
    def signing_name(model):
        md = model.metadata
        return md.get("signingName") or md.get("endpointPrefix")

    def _routes(self, name, model):
        with self._lock:
            routes = self._rest_routes.get(name)
            if routes is not None:
                return routes
        routes = []
        for op_name in model.operation_names:
            op = model.operation_model(op_name)
            uri = op.http.get("requestUri", "/")
            tpath, _, tquery = uri.partition("?")
            rx = ["^"]
            literal = 0
            for piece in re.split(r"(\{[^}]+\})", tpath):
                if piece.startswith("{") and piece.endswith("}"):
                    label = piece[1:-1]
                    greedy = label.endswith("+")
                    label = label.rstrip("+")
                    rx.append("(?P<%s>%s)" % (re.sub(r"\W", "_", label),
                                              ".+" if greedy else "[^/]+"))
                else:
                    rx.append(re.escape(piece))
                    literal += len(piece)
            rx.append("/?$" if not tpath.endswith("/") else "$")
            fixed = dict(urllib.parse.parse_qsl(tquery, keep_blank_values=True))
            routes.append((op.http.get("method", "POST"), re.compile("".join(rx)), literal,
                           fixed, op_name))
        with self._lock:
            self._rest_routes[name] = routes
        return routes

    # -- entry point
    def check(self, method, raw_path, headers, body):
        """Checks one request; returns a CheckResult (never raises for a bad
        request: what is wrong is in .violations)."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        body = body or b""
        hdr = _header_getter(headers)
        split = urllib.parse.urlsplit(raw_path)
        path, query = split.path or "/", split.query
        res = CheckResult()
        m = CRED_RE.search(hdr.get("authorization", ""))
        if not m:
            res.add("Authorization", "request is not signed with SigV4 (no credential scope)")
            return res
        signing = m.group(4)
        target = hdr.get("x-amz-target")
        params = None
        ctype = (hdr.get("content-type") or "").lower()
        if "x-www-form-urlencoded" in ctype or (not target and method == "POST" and path == "/"):
            params = self._form_pairs(body, query, res)
        chosen = self._choose_service(signing, method, path, query, target, params)
        if chosen is None:
            res.service = signing
            res.operation = (dict(params).get("Action") if params else None) or target or \
                "%s %s" % (method, path)
            res.add("-", "no service model signed as '%s' fits this request (Version %r, "
                         "X-Amz-Target %r, %s %s)"
                    % (signing, dict(params or []).get("Version"), target, method, path))
            return res
        name, model, op_name = chosen
        res.service = name
        res.operation = (dict(params or []).get("Action")
                         or (target.partition(".")[2] if target else op_name))
        self._check_signed_headers(res, hdr)
        res.protocol = model.metadata.get("protocol")
        if self.signing_name(model) != signing:
            res.add("Authorization", "signed for service '%s', the model signs as '%s'"
                    % (signing, self.signing_name(model)))
        proto = res.protocol
        if proto in ("ec2", "query"):
            self._check_query(res, model, params or [], query, method, ctype)
        elif proto == "json":
            self._check_json(res, model, target, ctype, body)
        elif proto in ("rest-json", "rest-xml"):
            res.operation = op_name
            self._check_rest(res, model, op_name, method, path, query, hdr, body)
        else:
            res.add("-", "protocol %r is not checked" % proto)
        return res

    @staticmethod
    def _check_signed_headers(res, hdr):
        """SignedHeaders as the SDKs make them: host and x-amz-date signed,
        and none of the headers they never sign (botocore's list)."""
        sm = re.search(r"SignedHeaders=([^,\s]+)", hdr.get("authorization", ""))
        signed = sm.group(1).split(";") if sm else []
        for need in ("host", "x-amz-date"):
            if need not in signed:
                res.add("Authorization", "SignedHeaders lacks %s" % need)
        for name in signed:
            if name in NEVER_SIGNED:
                res.add("Authorization", "SignedHeaders holds %s, which the SDKs never sign: "
                                         "a verifier that checks the SDK way refuses it" % name)
            elif name not in hdr and name != "host":  # the HTTP stack adds Host
                res.add("Authorization", "SignedHeaders names %s, which the request lacks" % name)

    @staticmethod
    def _form_pairs(body, query, res):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            res.add("-", "form body is not UTF-8")
            text = ""
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True)
        if query:
            pairs += urllib.parse.parse_qsl(query, keep_blank_values=True)
        return pairs

    def _choose_service(self, signing, method, path, query, target, params):
        for name in self._candidates(signing):
            try:
                model = self.model(name)
            except Exception:  # noqa: BLE001
                continue
            proto = model.metadata.get("protocol")
            if proto in ("ec2", "query"):
                version = dict(params or []).get("Version")
                if params is not None and version == model.api_version:
                    return name, model, None
            elif proto == "json":
                prefix = model.metadata.get("targetPrefix")
                if target and target.split(".", 1)[0] == prefix:
                    return name, model, None
            elif proto in ("rest-json", "rest-xml") and not target:
                op = self._rest_operation(name, model, method, path, query)
                if op:
                    return name, model, op
        return None

    def _rest_operation(self, name, model, method, path, query):
        """The operation whose method, URI template and fixed query keys
        (`/x?tagging`) fit; the most specific one."""
        keys = {k for k, _v in urllib.parse.parse_qsl(query, keep_blank_values=True)}
        best = None
        for (m, rx, literal, fixed, op_name) in self._routes(name, model):
            if m != method or not set(fixed) <= keys or not rx.match(path):
                continue
            rank = (len(fixed), literal)
            if best is None or rank > best[0]:
                best = (rank, op_name)
        return best[1] if best else None

    # -- query / ec2
    def _check_query(self, res, model, pairs, query, method, ctype):
        ec2 = model.metadata.get("protocol") == "ec2"
        if method != "POST":
            res.add("-", "query protocol request sent with %s (the SDKs POST a form)" % method)
        if query:
            res.add("-", "query protocol parameters in the URL query string: %r" % query[:80])
        if "application/x-www-form-urlencoded" not in ctype:
            res.add("Content-Type", "query protocol wants application/x-www-form-urlencoded, "
                                    "got %r" % ctype)
        seen = {}
        items = []
        res.operation = dict(pairs).get("Action")
        for k, v in pairs:
            if k in seen:
                res.add(k, "parameter repeated")
                continue
            seen[k] = v
            if k in ("Action", "Version"):
                continue
            items.append((k.split("."), v, k))
        action = seen.get("Action")
        res.operation = action
        if not action:
            res.add("Action", "missing Action")
            return
        if action not in model.operation_names:
            res.add("Action", "unknown operation '%s'" % action)
            return
        op = model.operation_model(action)
        shape = op.input_shape
        if shape is None:
            for _parts, _v, key in items:
                res.add(key, "operation takes no input")
            return
        tree = self._q_struct(res, shape, items, "", ec2)
        self._validate(res, shape, tree, "")

    @staticmethod
    def _q_member_names(shape, ec2):
        names = {}
        for mname, mshape in shape.members.items():
            ser = mshape.serialization
            if ec2:
                if "queryName" in ser:
                    wire = ser["queryName"]
                elif "name" in ser:
                    wire = ser["name"][0].upper() + ser["name"][1:]
                else:
                    wire = mname
            else:
                wire = ser.get("name", mname)
                if mshape.type_name == "list" and mshape.serialization.get("flattened") \
                        and mshape.member.serialization.get("name"):
                    wire = mshape.member.serialization["name"]
            names[wire] = mname
        return names

    def _q_struct(self, res, shape, items, prefix, ec2):
        names = self._q_member_names(shape, ec2)
        groups = {}
        out = {}
        for parts, v, key in items:
            if not parts or parts[0] == "":
                res.add(key, "empty parameter name component")
                continue
            groups.setdefault(parts[0], []).append((parts[1:], v, key))
        for wire, sub in groups.items():
            full = prefix + wire
            mname = names.get(wire)
            if mname is None:
                hint = ""
                lower = {w.lower(): w for w in names}
                if wire.lower() in lower:
                    hint = " (the model spells it '%s')" % lower[wire.lower()]
                res.add(full, "unknown member of %s%s" % (shape.name, hint))
                continue
            out[mname] = self._q_value(res, shape.members[mname], sub, full + ".", ec2)
        return out

    def _q_value(self, res, shape, items, prefix, ec2):
        t = shape.type_name
        name = prefix[:-1]
        if t == "structure":
            if any(not parts for parts, _v, _k in items):
                res.add(name, "structure %s given a plain value" % shape.name)
                items = [it for it in items if it[0]]
            return self._q_struct(res, shape, items, prefix, ec2)
        if t == "list":
            return self._q_list(res, shape, items, prefix, ec2)
        if t == "map":
            return self._q_map(res, shape, items, prefix, ec2)
        plain = [it for it in items if not it[0]]
        for parts, _v, key in items:
            if parts:
                res.add(key, "%s is a %s: no sub-members" % (name, t))
        if not plain:
            return INVALID
        return self._q_scalar(res, shape, plain[0][1], name)

    def _q_indexed(self, res, items, prefix, what):
        """Groups items by a leading 1-based index; reports bad indices."""
        groups = {}
        for parts, v, key in items:
            if not parts or not _INT_RE.match(parts[0]) or int(parts[0]) < 1:
                got = ".".join(parts) if parts else "(no index)"
                res.add(key, "wrong list encoding: expected %sN (N = 1, 2, ...) for %s, got "
                             "'%s%s'" % (prefix, what, prefix, got))
                continue
            groups.setdefault(int(parts[0]), []).append((parts[1:], v, key))
        idx = sorted(groups)
        if idx and idx != list(range(1, len(idx) + 1)):
            res.add(prefix[:-1], "list indices are %s, not 1..%d" % (idx[:10], len(idx)))
        return [groups[i] for i in idx]

    def _q_list(self, res, shape, items, prefix, ec2):
        name = prefix[:-1]
        if ec2:
            for parts, v, key in items:
                if parts and parts[0] in ("member", shape.member.serialization.get("name")):
                    res.add(key, "wrong list encoding: EC2 lists are '%s.N', not '%s.%s.N'"
                            % (name, name, parts[0]))
            wrong = ("member", shape.member.serialization.get("name"))
            items = [it for it in items if not (it[0] and it[0][0] in wrong)]
            groups = self._q_indexed(res, items, prefix, shape.name)
            return [self._q_value(res, shape.member, g, "%s%d." % (prefix, i + 1), ec2)
                    for i, g in enumerate(groups)]
        if not shape.serialization.get("flattened"):
            if len(items) == 1 and not items[0][0] and items[0][1] == "":
                return []  # the query protocol's empty list
            mname = shape.member.serialization.get("name", "member")
            good = []
            for parts, v, key in items:
                if not parts or parts[0] != mname:
                    got = parts[0] if parts else "(nothing)"
                    res.add(key, "wrong list encoding: expected '%s.%s.N', got '%s.%s'"
                            % (name, mname, name, got))
                    continue
                good.append((parts[1:], v, key))
            items = good
            prefix = prefix + mname + "."
        groups = self._q_indexed(res, items, prefix, shape.name)
        return [self._q_value(res, shape.member, g, "%s%d." % (prefix, i + 1), ec2)
                for i, g in enumerate(groups)]

    def _q_map(self, res, shape, items, prefix, ec2):
        name = prefix[:-1]
        if not shape.serialization.get("flattened"):
            good = []
            for parts, v, key in items:
                if not parts or parts[0] != "entry":
                    res.add(key, "wrong map encoding: expected '%s.entry.N.key'" % name)
                    continue
                good.append((parts[1:], v, key))
            items = good
            prefix = prefix + "entry."
        kname = shape.key.serialization.get("name", "key")
        vname = shape.value.serialization.get("name", "value")
        out = {}
        for i, g in enumerate(self._q_indexed(res, items, prefix, shape.name)):
            ep = "%s%d." % (prefix, i + 1)
            k_items = [(p[1:], v, key) for p, v, key in g if p and p[0] == kname]
            v_items = [(p[1:], v, key) for p, v, key in g if p and p[0] == vname]
            for p, _v, key in g:
                if not p or p[0] not in (kname, vname):
                    res.add(key, "map entry members are '%s' and '%s'" % (kname, vname))
            if not k_items:
                res.add(ep + kname, "map entry without a key")
                continue
            k = self._q_value(res, shape.key, k_items, ep + kname + ".", ec2)
            out[k] = self._q_value(res, shape.value, v_items, ep + vname + ".", ec2)
        return out

    @staticmethod
    def _q_scalar(res, shape, text, name):
        t = shape.type_name
        if t == "string":
            return text
        if t in ("integer", "long"):
            if not _INT_RE.match(text):
                res.add(name, "not an integer: %r" % text[:40])
                return INVALID
            return int(text)
        if t in ("float", "double"):
            try:
                return float(text)
            except ValueError:
                res.add(name, "not a number: %r" % text[:40])
                return INVALID
        if t == "boolean":
            if text not in ("true", "false"):
                res.add(name, "boolean must be 'true' or 'false', got %r" % text[:40])
                return INVALID
            return text == "true"
        if t == "timestamp":
            if not _ISO_RE.match(text):
                res.add(name, "timestamp is not ISO 8601: %r" % text[:40])
            return text
        if t == "blob":
            try:
                return base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                res.add(name, "blob is not base64")
                return INVALID
        return text

    # -- json
    def _check_json(self, res, model, target, ctype, body):
        prefix, _, op_name = target.partition(".")
        res.operation = op_name or target
        want = "application/x-amz-json-%s" % model.metadata.get("jsonVersion", "1.0")
        if ctype.split(";")[0].strip() != want:
            res.add("Content-Type", "JSON protocol wants Content-Type %s, got %r" % (want, ctype))
        if op_name not in model.operation_names:
            res.add("X-Amz-Target", "unknown operation '%s'" % op_name)
            return
        shape = model.operation_model(op_name).input_shape
        try:
            doc = json.loads(body.decode("utf-8")) if body else None
        except (ValueError, UnicodeDecodeError):
            res.add("-", "body is not JSON")
            return
        if doc is None:
            res.add("-", "JSON protocol request without a body (the SDKs send {})")
            doc = {}
        if shape is None:
            if doc:
                res.add("-", "operation takes no input, body has %s" % sorted(doc)[:5])
            return
        tree = self._j_value(res, shape, doc, "")
        self._validate(res, shape, tree, "")

    def _j_value(self, res, shape, value, path):
        t = shape.type_name
        label = path or "(body)"
        if value is None:
            res.add(label, "null value (the SDKs leave an unset member out)")
            return INVALID
        if t == "structure":
            if not isinstance(value, dict):
                res.add(label, "expected an object for %s, got %s" % (shape.name,
                                                                      type(value).__name__))
                return INVALID
            wire = {}
            for mname, mshape in shape.members.items():
                wire[mshape.serialization.get("name", mname)] = mname
            out = {}
            for k, v in value.items():
                mname = wire.get(k)
                if mname is None:
                    res.add(_member_path(path, k), "unknown member of %s" % shape.name)
                    continue
                out[mname] = self._j_value(res, shape.members[mname], v, _member_path(path, k))
            return out
        if t == "list":
            if not isinstance(value, list):
                res.add(label, "expected a list for %s, got %s" % (shape.name,
                                                                  type(value).__name__))
                return INVALID
            return [self._j_value(res, shape.member, v, "%s[%d]" % (label, i))
                    for i, v in enumerate(value)]
        if t == "map":
            if not isinstance(value, dict):
                res.add(label, "expected a map for %s" % shape.name)
                return INVALID
            return {k: self._j_value(res, shape.value, v, "%s.%s" % (label, k))
                    for k, v in value.items()}
        return self._j_scalar(res, shape, value, label)

    @staticmethod
    def _j_scalar(res, shape, value, label):
        t = shape.type_name
        ok = True
        if t == "string":
            ok = isinstance(value, str)
        elif t in ("integer", "long"):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif t in ("float", "double"):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif t == "boolean":
            ok = isinstance(value, bool)
        elif t == "timestamp":
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) or \
                (isinstance(value, str) and bool(_ISO_RE.match(value)))
        elif t == "blob":
            ok = isinstance(value, str)
            if ok:
                try:
                    value = base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    ok = False
        if not ok:
            res.add(label, "expected %s, got %s %r" % (t, type(value).__name__,
                                                        str(value)[:40]))
            return INVALID
        return value

    # -- rest-json
    def _check_rest(self, res, model, op_name, method, path, query, hdr, body):
        op = model.operation_model(op_name)
        shape = op.input_shape
        route = None
        for r in self._routes(res.service, model):
            if r[4] == op_name:
                route = r
        tree = {}
        mm = route[1].match(path)
        labels = {k: urllib.parse.unquote(v) for k, v in mm.groupdict().items()}
        members = shape.members if shape is not None else {}
        by_loc = {"uri": {}, "querystring": {}, "header": {}}
        body_members = {}
        for mname, mshape in members.items():
            loc = mshape.serialization.get("location")
            wire = mshape.serialization.get("name", mname)
            if loc in by_loc:
                by_loc[loc][wire if loc != "header" else wire.lower()] = mname
            elif loc is None:
                body_members[wire] = mname
        for wire, value in labels.items():
            mname = by_loc["uri"].get(wire)
            if mname is not None:
                tree[mname] = self._rest_scalar(res, members[mname], value, mname)
        fixed = route[3]
        for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
            if k in fixed:
                continue
            mname = by_loc["querystring"].get(k)
            if mname is None:
                res.add("?" + k, "unknown query parameter of %s" % op_name)
                continue
            mshape = members[mname]
            if mshape.type_name == "list":
                tree.setdefault(mname, []).append(
                    self._rest_scalar(res, mshape.member, v, mname))
            elif mname in tree:
                res.add("?" + k, "query parameter repeated")
            else:
                tree[mname] = self._rest_scalar(res, mshape, v, mname)
        for wire, mname in by_loc["header"].items():
            if wire in hdr:
                tree[mname] = self._rest_scalar(res, members[mname], hdr[wire], mname)
        payload = shape.serialization.get("payload") if shape is not None else None
        self._rest_body(res, shape, payload, body_members, body, tree, method,
                        hdr.get("content-type"))
        if shape is not None:
            self._validate(res, shape, tree, "")

    def _rest_body(self, res, shape, payload, body_members, body, tree, method, ctype):
        if not body:
            return
        if payload:
            pshape = shape.members[payload]
            if pshape.type_name in ("blob", "string"):
                tree[payload] = body
                return
        elif not body_members:
            res.add("-", "%s request carries a body, the operation has no body members"
                    % method)
            return
        ctype = (ctype or "").split(";")[0].strip()
        if ctype != "application/json":
            res.add("Content-Type", "REST-JSON body wants Content-Type application/json, got %r"
                    % ctype)
        try:
            doc = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            res.add("-", "body is not JSON")
            return
        if payload:
            tree[payload] = self._j_value(res, shape.members[payload], doc, payload)
            return
        if not isinstance(doc, dict):
            res.add("-", "body is not a JSON object")
            return
        for k, v in doc.items():
            mname = body_members.get(k)
            if mname is None:
                res.add(k, "unknown body member of %s" % shape.name)
                continue
            tree[mname] = self._j_value(res, shape.members[mname], v, k)

    def _rest_scalar(self, res, shape, text, name):
        if shape.type_name == "timestamp":
            return text
        if shape.type_name == "boolean" and text in ("true", "false"):
            return text == "true"
        return self._q_scalar(res, shape, text, name)

    # -- constraints (on a tree keyed by member names)
    def _validate(self, res, shape, value, path):
        if value is None or value is INVALID:
            return
        t = shape.type_name
        if t == "structure":
            if not isinstance(value, dict):
                return
            for req in shape.required_members:
                if req not in value:
                    res.add(_member_path(path, req), "required member of %s missing"
                            % shape.name)
            for mname, v in value.items():
                mshape = shape.members.get(mname)
                if mshape is not None:
                    self._validate(res, mshape, v, _member_path(path, mname))
            if shape.metadata.get("union") and len(value) > 1:
                res.add(path or "(input)", "union %s has more than one member set"
                        % shape.name)
            return
        if t == "list":
            if isinstance(value, list):
                self._length(res, shape, len(value), path, "list of %d" % len(value))
                for i, v in enumerate(value):
                    self._validate(res, shape.member, v, "%s[%d]" % (path, i + 1))
            return
        if t == "map":
            if isinstance(value, dict):
                self._length(res, shape, len(value), path, "map of %d" % len(value))
                for k, v in value.items():
                    self._validate(res, shape.key, k, "%s{key}" % path)
                    self._validate(res, shape.value, v, "%s{%s}" % (path, k))
            return
        if t == "string" and isinstance(value, (str, bytes)):
            self._string(res, shape, value if isinstance(value, str)
                         else value.decode("utf-8", "replace"), path)
            return
        if t in ("integer", "long", "float", "double") and isinstance(value, (int, float)):
            lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
            if lo is not None and value < lo:
                res.add(path, "%s below its minimum %s" % (value, lo))
            if hi is not None and value > hi:
                res.add(path, "%s above its maximum %s" % (value, hi))
            return
        if t == "blob" and isinstance(value, (bytes, str)):
            self._length(res, shape, len(value), path, "%d bytes" % len(value))

    @staticmethod
    def _length(res, shape, n, path, what):
        lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
        if lo is not None and n < lo:
            res.add(path, "%s: fewer than the minimum %s" % (what, lo))
        if hi is not None and n > hi:
            res.add(path, "%s: more than the maximum %s" % (what, hi))

    def _string(self, res, shape, value, path):
        enum = shape.enum
        if enum and value not in enum:
            near = [e for e in enum if e.lower() == value.lower()]
            res.add(path, "%r is not one of %s's values%s" % (
                value[:60], shape.name,
                " (the model spells it %r)" % near[0] if near else
                " (%s%s)" % (", ".join(enum[:8]), ", ..." if len(enum) > 8 else "")))
        n = len(value)
        self._length(res, shape, n, path, "%d characters" % n)
        pattern = shape.metadata.get("pattern")
        if pattern:
            try:
                rx, full = compile_pattern(pattern)
            except (re.error, ValueError, KeyError) as e:
                res.add(path, "model pattern %r cannot be checked: %s" % (pattern, e))
                return
            ok = rx.fullmatch(value) if full else rx.search(value)
            if not ok:
                res.add(path, "%r does not match the pattern %r of %s"
                        % (value[:60], pattern, shape.name))
