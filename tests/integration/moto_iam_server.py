#!/usr/bin/env python3
"""moto's server for the IAM-enforced tests, with one fix to its SigV4 check.

Run it like `python3 -m moto.server`, with INITIAL_NO_AUTH_ACTION_COUNT set:
after that many requests moto checks every request's signature and the
caller's IAM policies (moto/core/authorization.py, moto/iam/access_control.py).

The fix. moto checks a signature by rebuilding the request with botocore's
AWSRequest from what its web framework parsed, and its body from
`raw body or parsed parameters`. A request without a body (every REST GET
and DELETE: EFS DescribeFileSystems, DescribeMountTargets, DeleteMountTarget,
DeleteFileSystem, ...) therefore gets a body made of its query parameters, or
of its headers when it has no query, and its payload hash can never match:
moto refuses boto3's own EFS GETs that way (test_iam_enforced.py shows it on
an unpatched server). Real AWS hashes the bytes it received. Here a request
that is not a form keeps its raw body, empty or not. A form body (the Query
protocols) is rebuilt from the parsed form as before, so it must be encoded
byte for byte as the SDKs encode it (a space as '+'), which is what the
check is meant to hold us to.
"""
import sys

from moto.iam import access_control


def _patch():
    original = access_control.IAMRequestBase._create_aws_request

    def create_aws_request(self):
        request = original(self)
        ctype = ""
        for k, v in self._headers.items():
            if k.lower() == "content-type":
                ctype = v.lower()
        if "x-www-form-urlencoded" not in ctype:
            request.data = self._body or b""
        return request

    access_control.IAMRequestBase._create_aws_request = create_aws_request


if __name__ == "__main__":
    import moto_server  # the launch template version fix of every moto the tests start

    moto_server.apply()
    if "--unpatched" in sys.argv:
        sys.argv.remove("--unpatched")
    else:
        _patch()
    from moto.server import main

    main(sys.argv[1:])
