"""Session-wide check of every request geusemaker sends, against the AWS API
models (apimodels.py).

The conftest gives every FaultProxy `observer=API_AUDIT.observe`; each request
whose User-Agent is geusemaker's is checked, every violation is kept with the
test that caused it, and at the end of the session a violation fails the run
(conftest's pytest_sessionfinish) with a report of each one: service,
operation, member, problem, how often, first test. Requests of other clients
(boto3 in the tests' own setup and inspection) are counted, not checked.

GM_API_REPORT=PATH writes the counts and violations as JSON as well.

Under pytest-xdist each worker process has its own ApiAudit: at the end it
hands its findings to the controller as plain data (export), the controller
adds them up (merge) and reports, writes and judges for the whole run.
"""

import json
import threading
from collections import Counter

from apimodels import ApiModels, CheckResult, Violation

UA_PREFIX = "geusemaker/"


class ApiAudit:
    def __init__(self, models=None, ua_prefix=UA_PREFIX):
        self._models = models
        self.ua_prefix = ua_prefix
        self.lock = threading.Lock()
        self.checked = 0
        self.others = 0
        self.by_operation = Counter()
        self.violations = []  # (Violation, test id)
        self.current_test = None
        self.merged_version = None  # botocore's, as the workers merged here had it
        self.lost = []  # workers that ended without handing their findings over

    @property
    def models(self):
        with self.lock:
            if self._models is None:
                self._models = ApiModels()
            return self._models

    def observe(self, method, raw_path, headers, body):
        """FaultProxy observer: checks one request, keeps what is wrong."""
        ua = ""
        for k, v in (headers.items() if hasattr(headers, "items") else headers):
            if k.lower() == "user-agent":
                ua = v
                break
        if self.ua_prefix and not ua.startswith(self.ua_prefix):
            with self.lock:
                self.others += 1
            return None
        try:
            res = self.models.check(method, raw_path, headers, body)
        except Exception as e:  # noqa: BLE001 - a checker bug is a finding too
            res = CheckResult()
            res.add("-", "the model check itself failed: %s: %s" % (type(e).__name__, e))
        with self.lock:
            self.checked += 1
            self.by_operation[(res.service or "?", res.operation or "?")] += 1
            test = self.current_test
            for v in res.violations:
                self.violations.append((v, test))
        return res

    def grouped(self):
        """[(Violation, count, first test)] in order of first appearance."""
        with self.lock:
            items = list(self.violations)
        seen = {}
        for v, test in items:
            if v in seen:
                seen[v][1] += 1
            else:
                seen[v] = [v, 1, test]
        return [tuple(x) for x in seen.values()]

    def summary_lines(self):
        with self.lock:
            ops = dict(self.by_operation)
            checked, others = self.checked, self.others
        services = Counter()
        for (svc, _op), n in ops.items():
            services[svc] += n
        version = (self._models.botocore_version if self._models
                   else self.merged_version or "-")
        lines = ["%d geusemaker requests checked against botocore %s's models: %d operations "
                 "of %d services (%s); %d requests of other clients not checked"
                 % (checked, version, len(ops), len(services),
                    ", ".join("%s %d" % kv for kv in sorted(services.items())), others)]
        if self.lost:
            lines.append("INCOMPLETE: xdist workers %s ended without handing over their "
                         "findings" % ", ".join(self.lost))
        groups = self.grouped()
        if not groups:
            lines.append("0 violations")
            return lines
        total = sum(n for _v, n, _t in groups)
        lines.append("%d VIOLATIONS (%d distinct): these requests would be refused or "
                     "misread by AWS" % (total, len(groups)))
        for v, n, test in groups:
            lines.append("  %s %s: %s: %s  [x%d, first in %s]"
                         % (v.service, v.action, v.member, v.problem, n, test or "-"))
        return lines

    def export(self):
        """This process's findings as plain data (what an xdist worker sends)."""
        with self.lock:
            return {"checked": self.checked, "others": self.others,
                    "by_operation": [[svc, op, n] for (svc, op), n in self.by_operation.items()],
                    "violations": [[list(v), test] for v, test in self.violations],
                    "botocore_version": (self._models.botocore_version if self._models
                                         else None)}

    def merge(self, data):
        """Adds another process's export() to this one's findings."""
        with self.lock:
            self.checked += data["checked"]
            self.others += data["others"]
            for svc, op, n in data["by_operation"]:
                self.by_operation[(svc, op)] += n
            self.violations.extend((Violation(*v), test) for v, test in data["violations"])
            self.merged_version = self.merged_version or data["botocore_version"]

    def write_json(self, path):
        with self.lock:
            ops = sorted(("%s %s" % k, n) for k, n in self.by_operation.items())
            doc = {"checked": self.checked, "other_clients": self.others,
                   "operations": dict(ops)}
        doc["violations"] = [dict(v._asdict(), count=n, first_test=t)
                             for v, n, t in self.grouped()]
        with open(path, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)


API_AUDIT = ApiAudit()
