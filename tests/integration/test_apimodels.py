"""The AWS API model check itself (apimodels.py, apiaudit.py).

- Known-bad requests, one defect each, are each reported: unknown member,
  missing required member, bad enum, wrong list encoding (EC2 and Query),
  lengths, patterns, ranges, types, JSON and REST-JSON bodies, routes, the
  Version, the signing name.
- Known-good requests: boto3's own, recorded through the fault proxy, for the
  operations geusemaker uses (and their richer shapes), produce no violation.
- A geusemaker request is checked through the session's proxy, and a bad one
  fails the pytest session (run in a child pytest).
"""
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest

from apiaudit import API_AUDIT, ApiAudit
from apimodels import ApiModels, compile_pattern
from faultproxy import FaultProxy

HERE = os.path.dirname(os.path.abspath(__file__))
EC2_VERSION = "2016-11-15"


@pytest.fixture(scope="module")
def models():
    return ApiModels()


def auth(service, region="us-east-1", signed="content-type;host;x-amz-date"):
    return ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/%s/%s/aws4_request, "
            "SignedHeaders=%s, Signature=%s" % (region, service, signed, "0" * 64))


def form(service, action, version, pairs):
    body = urllib.parse.urlencode([("Action", action), ("Version", version)] + list(pairs))
    headers = {"Authorization": auth(service), "Host": "127.0.0.1",
               "X-Amz-Date": "20240501T000000Z",
               "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
               "User-Agent": "geusemaker/test"}
    return "POST", "/", headers, body.encode()


def ec2(action, *pairs):
    return form("ec2", action, EC2_VERSION, pairs)


def elbv2(action, *pairs):
    return form("elasticloadbalancing", action, "2015-12-01", pairs)


def iam(action, *pairs):
    return form("iam", action, "2010-05-08", pairs)


def ssm(action, body, content_type="application/x-amz-json-1.1"):
    headers = {"Authorization": auth("ssm"), "X-Amz-Target": "AmazonSSM." + action,
               "Content-Type": content_type, "User-Agent": "geusemaker/test",
               "Host": "127.0.0.1", "X-Amz-Date": "20240501T000000Z"}
    return "POST", "/", headers, body.encode()


def efs(method, path, body=b"", ctype="application/json"):
    signed = "content-type;host;x-amz-date" if body else "host;x-amz-date"
    headers = {"Authorization": auth("elasticfilesystem", signed=signed),
               "User-Agent": "geusemaker/test",
               "Host": "127.0.0.1", "X-Amz-Date": "20240501T000000Z"}
    if body:
        headers["Content-Type"] = ctype
    return method, path, headers, body if isinstance(body, bytes) else body.encode()


TAGS = [("TagSpecification.1.ResourceType", "vpc"), ("TagSpecification.1.Tag.1.Key", "a"),
        ("TagSpecification.1.Tag.1.Value", "b")]

# (id, request, member substring, problem substring)
BAD = [
    ("unknown member", ec2("DescribeVpcs", ("Bogus", "1")), "Bogus", "unknown member"),
    ("unknown member, case", ec2("DescribeVpcs", ("vpcId.1", "vpc-1")), "vpcId",
     "the model spells it 'VpcId'"),
    ("unknown nested member", ec2("CreateVpc", ("CidrBlock", "10.0.0.0/16"),
                                  ("TagSpecification.1.Tags.1.Key", "a")),
     "TagSpecification.1.Tags", "unknown member of TagSpecification"),
    ("missing required", ec2("CreateSubnet", ("CidrBlock", "10.0.1.0/24")), "VpcId",
     "required member"),
    ("missing required, nested", ec2("RunInstances", ("MinCount", "1"), ("MaxCount", "1"),
                                     ("Monitoring.Bogus", "x")),
     "Monitoring.Enabled", "required member"),
    ("bad enum", ec2("CreateVpc", ("TagSpecification.1.ResourceType", "vpcs"),
                     ("TagSpecification.1.Tag.1.Key", "a")),
     "ResourceType", "is not one of"),
    ("bad enum, instance type", ec2("RunInstances", ("MinCount", "1"), ("MaxCount", "1"),
                                    ("InstanceType", "t3.huge")), "InstanceType",
     "is not one of"),
    ("ec2 list as X.member.N", ec2("DescribeVpcs", ("VpcId.member.1", "vpc-1")), "VpcId.member.1",
     "EC2 lists are 'VpcId.N'"),
    ("ec2 list without index", ec2("DescribeVpcs", ("VpcId", "vpc-1")), "VpcId",
     "wrong list encoding"),
    ("ec2 list from 0", ec2("DescribeVpcs", ("Filter.0.Name", "vpc-id"),
                            ("Filter.0.Value.1", "x")), "Filter.0", "wrong list encoding"),
    ("ec2 list with a gap", ec2("DescribeVpcs", ("VpcId.1", "vpc-1"), ("VpcId.3", "vpc-3")),
     "VpcId", "list indices are [1, 3]"),
    ("query list as X.N", elbv2("CreateLoadBalancer", ("Name", "x-alb"), ("Subnets.1", "subnet-1")),
     "Subnets.1", "expected 'Subnets.member.N'"),
    ("query list without member", iam("CreateRole", ("RoleName", "r"),
                                      ("AssumeRolePolicyDocument", "{}"), ("Tags.1.Key", "a")),
     "Tags.1.Key", "expected 'Tags.member.N'"),
    ("string too long", iam("CreateRole", ("RoleName", "r" * 65),
                            ("AssumeRolePolicyDocument", "{}")), "RoleName", "more than the maximum 64"),
    ("pattern", iam("CreateRole", ("RoleName", "a role"), ("AssumeRolePolicyDocument", "{}")),
     "RoleName", "does not match the pattern"),
    ("pattern, path", iam("CreateRole", ("RoleName", "r"), ("Path", "geusemaker"),
                          ("AssumeRolePolicyDocument", "{}")), "Path", "does not match"),
    ("range", ec2("DescribeVpcs", ("MaxResults", "2")), "MaxResults", "below its minimum 5"),
    ("not an integer", ec2("RunInstances", ("MinCount", "one"), ("MaxCount", "1")), "MinCount",
     "not an integer"),
    ("bad boolean", ec2("CreateVpc", ("AmazonProvidedIpv6CidrBlock", "True")),
     "AmazonProvidedIpv6CidrBlock", "'true' or 'false'"),
    ("scalar with sub-key", ec2("CreateSubnet", ("VpcId.1", "vpc-1")), "VpcId.1", "no sub-members"),
    ("repeated parameter", ec2("DescribeVpcs", ("VpcId.1", "a"), ("VpcId.1", "b")), "VpcId.1",
     "repeated"),
    ("unknown action", ec2("DescribeVpcz"), "Action", "unknown operation 'DescribeVpcz'"),
    ("wrong version", form("ec2", "DescribeVpcs", "2016-11-14", []), "-",
     "no service model signed as 'ec2'"),
    ("wrong signing name", form("elasticloadbalancing", "DescribeVpcs", EC2_VERSION, []), "-",
     "no service model signed as 'elasticloadbalancing'"),
    ("unsigned", ("POST", "/", {"Content-Type": "application/x-www-form-urlencoded"},
                  b"Action=DescribeVpcs&Version=2016-11-15"), "Authorization", "not signed"),
    ("json missing required", ssm("GetParameter", '{"WithDecryption": true}'), "Name",
     "required member"),
    ("json unknown member", ssm("GetParameter", '{"Name": "/x", "Nme": "/x"}'), "Nme",
     "unknown member"),
    ("json wrong type", ssm("GetParameter", '{"Name": "/x", "WithDecryption": "yes"}'),
     "WithDecryption", "expected boolean"),
    ("json bad enum", ssm("PutParameter", '{"Name": "/x", "Value": "v", "Type": "Secure"}'),
     "Type", "is not one of"),
    ("json nested list member", ssm("PutParameter",
                                    '{"Name": "/x", "Value": "v", "Tags": [{"Key": "k"}]}'),
     "Tags[1].Value", "required member"),
    ("json null", ssm("GetParameter", '{"Name": null}'), "Name", "null value"),
    ("json content type", ssm("GetParameter", '{"Name": "/x"}', "application/json"),
     "Content-Type", "application/x-amz-json-1.1"),
    ("json unknown operation", ssm("GetParameterz", '{"Name": "/x"}'), "X-Amz-Target",
     "unknown operation"),
    ("rest unknown body member", efs("POST", "/2015-02-01/file-systems",
                                     '{"CreationToken": "t", "Encryption": true}'),
     "Encryption", "unknown body member"),
    ("rest bad enum", efs("POST", "/2015-02-01/file-systems",
                          '{"CreationToken": "t", "PerformanceMode": "fast"}'),
     "PerformanceMode", "is not one of"),
    ("rest missing required", efs("POST", "/2015-02-01/file-systems", '{"Encrypted": true}'),
     "CreationToken", "required member"),
    ("rest unknown query parameter", efs("GET", "/2015-02-01/file-systems?FileSystemID=fs-1"),
     "?FileSystemID", "unknown query parameter"),
    ("rest bad label", efs("DELETE", "/2015-02-01/file-systems/fs-xyz"), "FileSystemId",
     "does not match the pattern"),
    ("rest unknown route", efs("GET", "/2015-02-01/file-system"), "-",
     "no service model signed as 'elasticfilesystem'"),
    ("rest tag key pattern", efs("POST", "/2015-02-01/resource-tags/fs-12345678",
                                 '{"Tags": [{"Key": "aws:x", "Value": "v"}]}'),
     "Tags[1].Key", "does not match the pattern"),
    ("user-agent signed", ("POST", "/", {
        "Authorization": auth("ec2").replace("SignedHeaders=content-type;host;x-amz-date",
                                             "SignedHeaders=content-type;host;user-agent;"
                                             "x-amz-date"),
        "Content-Type": "application/x-www-form-urlencoded", "User-Agent": "geusemaker/t",
        "X-Amz-Date": "20240501T000000Z"},
        b"Action=DescribeVpcs&Version=2016-11-15"), "Authorization", "holds user-agent"),
    ("signed header missing", ("POST", "/", {
        "Authorization": auth("ec2").replace("SignedHeaders=content-type;host;x-amz-date",
                                             "SignedHeaders=content-type;host"),
        "Content-Type": "application/x-www-form-urlencoded"},
        b"Action=DescribeVpcs&Version=2016-11-15"), "Authorization", "lacks x-amz-date"),
    ("rest content type", efs("POST", "/2015-02-01/file-systems", '{"CreationToken": "t"}',
                              ctype="text/plain"), "Content-Type", "application/json"),
    ("json list too short", ssm("GetParameters", '{"Names": []}'), "Names",
     "fewer than the minimum 1"),
    ("json string too short", ssm("GetParameter", '{"Name": ""}'), "Name",
     "fewer than the minimum 1"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_known_bad_request_is_reported(models, case):
    _id, (method, path, headers, body), member, problem = case
    res = models.check(method, path, headers, body)
    found = [v for v in res.violations if member in v.member and problem in v.problem]
    assert found, "expected a violation (%r, %r), got %r" % (member, problem, res.violations)


def test_known_bad_requests_name_service_and_action(models):
    res = models.check(*ec2("CreateSubnet", ("CidrBlock", "10.0.1.0/24")))
    assert [(v.service, v.action) for v in res.violations] == [("ec2", "CreateSubnet")]
    res = models.check(*elbv2("CreateLoadBalancer", ("Name", "x"), ("Subnets.1", "subnet-1")))
    assert {(v.service, v.action) for v in res.violations} == {("elbv2", "CreateLoadBalancer")}


def test_good_hand_made_requests(models):
    """The encodings the bad cases break, done right."""
    ok = [
        ec2("CreateVpc", ("CidrBlock", "10.0.0.0/16"), *TAGS),
        ec2("DescribeVpcs", ("Filter.1.Name", "tag:geusemaker:deployment"),
            ("Filter.1.Value.1", "demo"), ("Filter.1.Value.2", "x"), ("MaxResults", "5")),
        elbv2("CreateLoadBalancer", ("Name", "x-alb"), ("Subnets.member.1", "subnet-1"),
              ("Subnets.member.2", "subnet-2"), ("Tags.member.1.Key", "a"),
              ("Tags.member.1.Value", "b")),
        elbv2("DescribeTags", ("ResourceArns.member.1", "arn:x")),
        iam("CreateRole", ("RoleName", "geusemaker-demo-ab12-role"), ("Path", "/geusemaker/"),
            ("AssumeRolePolicyDocument", "{}"), ("Tags.member.1.Key", "k"),
            ("Tags.member.1.Value", "v")),
        ssm("GetParameters", '{"Names": ["/a", "/b"], "WithDecryption": true}'),
        efs("GET", "/2015-02-01/file-systems?CreationToken=tok&MaxItems=10"),
        efs("POST", "/2015-02-01/resource-tags/fs-12345678",
            '{"Tags": [{"Key": "geusemaker:deployment", "Value": "d\\u00e9mo"}]}'),
    ]
    for req in ok:
        res = models.check(*req)
        assert res.violations == [], (res.service, res.operation, res.violations)


def test_unicode_pattern_classes():
    rx, full = compile_pattern("^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$")
    assert not full
    assert rx.search("geusemaker:deployment-id") and rx.search("Caf\u00e9 1 \u0662")
    assert not rx.search("a|b") and not rx.search("tab\there")
    rx, full = compile_pattern("[\\w+=,.@-]+")
    assert full and rx.fullmatch("geusemaker-a.b") and not rx.fullmatch("a b")


def test_surrogate_pair_patterns():
    """Auto Scaling's models write characters beyond U+FFFF as UTF-16
    surrogate pairs (a Java regex); the check takes them as code points."""
    rx, full = compile_pattern("[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-"
                               "\\uDBFF\\uDFFF\\r\\n\\t]*")
    assert full and rx.fullmatch("geusemaker-demo-ab12cd34-asg") and rx.fullmatch("\U0001F600")
    assert not rx.fullmatch("bad\x01name")


# ---- boto3's own requests: known good ------------------------------------------

TAGLIST = [{"Key": "geusemaker:deployment", "Value": "demo"}, {"Key": "ManagedBy",
                                                                "Value": "geusemaker"}]
ARN_LB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/demo-alb/50dc6c495c0c9188"
ARN_TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/demo-tg/73e2d6bc24d8a067"


def _boto_calls():
    """(client name, method, kwargs): the operations geusemaker uses, with
    the shapes it sends and richer ones."""
    ts = lambda kind: [{"ResourceType": kind, "Tags": TAGLIST}]  # noqa: E731
    flt = [{"Name": "tag:geusemaker:deployment", "Values": ["demo"]},
           {"Name": "instance-state-name", "Values": ["pending", "running"]}]
    return [
        ("ec2", "describe_availability_zones", {"Filters": [{"Name": "state",
                                                              "Values": ["available"]}]}),
        ("ec2", "describe_instance_type_offerings",
         {"LocationType": "availability-zone",
          "Filters": [{"Name": "instance-type", "Values": ["t3.large", "g5.xlarge"]}]}),
        ("ec2", "describe_instance_types", {"InstanceTypes": ["t3.large", "g5.xlarge"]}),
        ("ec2", "describe_spot_price_history",
         {"InstanceTypes": ["t3.large"], "ProductDescriptions": ["Linux/UNIX"],
          "StartTime": "2026-01-01T00:00:00Z", "MaxResults": 100}),
        ("ec2", "describe_images", {"ImageIds": ["ami-12345678"]}),
        ("ec2", "create_vpc", {"CidrBlock": "10.0.0.0/16", "TagSpecifications": ts("vpc")}),
        ("ec2", "modify_vpc_attribute", {"VpcId": "vpc-1", "EnableDnsHostnames": {"Value": True}}),
        ("ec2", "create_subnet", {"VpcId": "vpc-1", "CidrBlock": "10.0.1.0/24",
                                  "AvailabilityZone": "us-east-1a",
                                  "TagSpecifications": ts("subnet")}),
        ("ec2", "modify_subnet_attribute", {"SubnetId": "subnet-1",
                                            "MapPublicIpOnLaunch": {"Value": True}}),
        ("ec2", "create_internet_gateway", {"TagSpecifications": ts("internet-gateway")}),
        ("ec2", "attach_internet_gateway", {"InternetGatewayId": "igw-1", "VpcId": "vpc-1"}),
        ("ec2", "create_route_table", {"VpcId": "vpc-1", "ClientToken": "tok",
                                       "TagSpecifications": ts("route-table")}),
        ("ec2", "create_route", {"RouteTableId": "rtb-1", "DestinationCidrBlock": "0.0.0.0/0",
                                 "GatewayId": "igw-1"}),
        ("ec2", "associate_route_table", {"RouteTableId": "rtb-1", "SubnetId": "subnet-1"}),
        ("ec2", "create_security_group", {"GroupName": "demo-sg", "Description": "d",
                                          "VpcId": "vpc-1",
                                          "TagSpecifications": ts("security-group")}),
        ("ec2", "authorize_security_group_ingress",
         {"GroupId": "sg-1", "IpPermissions": [
             {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
              "IpRanges": [{"CidrIp": "203.0.113.0/24", "Description": "geusemaker"}]},
             {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
              "UserIdGroupPairs": [{"GroupId": "sg-2"}]}]}),
        ("ec2", "run_instances",
         {"ImageId": "ami-12345678", "MinCount": 1, "MaxCount": 1, "InstanceType": "t3.large",
          "SubnetId": "subnet-1", "SecurityGroupIds": ["sg-1"], "ClientToken": "tok",
          "IamInstanceProfile": {"Name": "geusemaker-demo-profile"}, "UserData": "H4sI",
          "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {
              "VolumeSize": 75, "VolumeType": "gp3", "Encrypted": True,
              "DeleteOnTermination": True}}],
          "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1,
                              "HttpEndpoint": "enabled"},
          "InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": {
              "MaxPrice": "0.05", "SpotInstanceType": "one-time",
              "InstanceInterruptionBehavior": "terminate"}},
          "TagSpecifications": ts("instance") + ts("volume")}),
        ("ec2", "describe_instances", {"Filters": flt}),
        ("ec2", "describe_instances", {"InstanceIds": ["i-1", "i-2"]}),
        ("ec2", "terminate_instances", {"InstanceIds": ["i-1"]}),
        ("ec2", "revoke_security_group_ingress", {"GroupId": "sg-1", "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
             "UserIdGroupPairs": [{"GroupId": "sg-2"}]}]}),
        ("ec2", "delete_security_group", {"GroupId": "sg-1"}),
        ("ec2", "disassociate_route_table", {"AssociationId": "rtbassoc-1"}),
        ("ec2", "delete_vpc", {"VpcId": "vpc-1"}),
        ("elbv2", "create_load_balancer",
         {"Name": "demo-alb", "Subnets": ["subnet-1", "subnet-2"], "SecurityGroups": ["sg-1"],
          "Scheme": "internet-facing", "Type": "application", "IpAddressType": "ipv4",
          "Tags": TAGLIST}),
        ("elbv2", "create_target_group",
         {"Name": "demo-tg", "Protocol": "HTTPS", "Port": 443, "VpcId": "vpc-1",
          "TargetType": "instance", "HealthCheckProtocol": "HTTPS",
          "HealthCheckPath": "/healthz/readiness", "HealthCheckIntervalSeconds": 15,
          "HealthyThresholdCount": 2, "UnhealthyThresholdCount": 3,
          "Matcher": {"HttpCode": "200"}, "Tags": TAGLIST}),
        ("elbv2", "create_listener",
         {"LoadBalancerArn": ARN_LB, "Protocol": "HTTPS", "Port": 443,
          "Certificates": [{"CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/x"}],
          "DefaultActions": [{"Type": "forward", "TargetGroupArn": ARN_TG}], "Tags": TAGLIST}),
        ("elbv2", "create_listener",
         {"LoadBalancerArn": ARN_LB, "Protocol": "HTTP", "Port": 80,
          "DefaultActions": [{"Type": "redirect", "RedirectConfig": {
              "Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}]}),
        ("ec2", "create_launch_template",
         {"LaunchTemplateName": "geusemaker-demo-ab12cd34-lt", "ClientToken": "tok",
          "VersionDescription": "d",
          "LaunchTemplateData": {
              "ImageId": "ami-12345678", "InstanceType": "t3.large", "UserData": "H4sI",
              "IamInstanceProfile": {"Name": "geusemaker-demo-profile"},
              "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1,
                                  "HttpEndpoint": "enabled"},
              "BlockDeviceMappings": [{"DeviceName": "/dev/sdf", "Ebs": {
                  "VolumeSize": 20, "VolumeType": "gp3", "Encrypted": True,
                  "DeleteOnTermination": True}}],
              "NetworkInterfaces": [{"DeviceIndex": 0, "AssociatePublicIpAddress": True,
                                     "Groups": ["sg-1"], "DeleteOnTermination": True}],
              "TagSpecifications": ts("instance") + ts("volume")},
          "TagSpecifications": ts("launch-template")}),
        ("ec2", "describe_launch_templates", {"Filters": flt[:1]}),
        ("ec2", "delete_launch_template", {"LaunchTemplateId": "lt-0123456789abcdef0"}),
        ("ec2", "allocate_address", {"Domain": "vpc", "TagSpecifications": ts("elastic-ip")}),
        ("ec2", "describe_addresses", {"AllocationIds": ["eipalloc-1"]}),
        ("ec2", "disassociate_address", {"AssociationId": "eipassoc-1"}),
        ("ec2", "release_address", {"AllocationId": "eipalloc-1"}),
        ("autoscaling", "create_auto_scaling_group",
         {"AutoScalingGroupName": "geusemaker-demo-ab12cd34-asg", "MinSize": 1, "MaxSize": 1,
          "DesiredCapacity": 1, "VPCZoneIdentifier": "subnet-1,subnet-2",
          "CapacityRebalance": True,
          "MixedInstancesPolicy": {
              "LaunchTemplate": {"LaunchTemplateSpecification": {
                  "LaunchTemplateId": "lt-0123456789abcdef0", "Version": "$Latest"},
                  "Overrides": [{"InstanceType": "t3.large"}, {"InstanceType": "m5.large"}]},
              "InstancesDistribution": {
                  "OnDemandAllocationStrategy": "prioritized", "OnDemandBaseCapacity": 0,
                  "OnDemandPercentageAboveBaseCapacity": 0,
                  "SpotAllocationStrategy": "capacity-optimized-prioritized",
                  "SpotMaxPrice": "0.05"}},
          "Tags": [{"Key": "geusemaker:node", "Value": "asg", "PropagateAtLaunch": True,
                    "ResourceId": "geusemaker-demo-ab12cd34-asg",
                    "ResourceType": "auto-scaling-group"}]}),
        ("autoscaling", "describe_auto_scaling_groups",
         {"Filters": [{"Name": "tag:geusemaker:deployment-id", "Values": ["ab12cd34"]}]}),
        ("autoscaling", "describe_scaling_activities",
         {"AutoScalingGroupName": "g", "MaxRecords": 20}),
        ("autoscaling", "attach_load_balancer_target_groups",
         {"AutoScalingGroupName": "g", "TargetGroupARNs": [ARN_TG]}),
        ("autoscaling", "delete_auto_scaling_group",
         {"AutoScalingGroupName": "g", "ForceDelete": True}),
        ("elbv2", "describe_target_health", {"TargetGroupArn": ARN_TG}),
        ("elbv2", "describe_tags", {"ResourceArns": [ARN_LB, ARN_TG]}),
        ("elbv2", "describe_load_balancers", {"Names": ["demo-alb"]}),
        ("elbv2", "delete_load_balancer", {"LoadBalancerArn": ARN_LB}),
        ("iam", "create_role", {"RoleName": "geusemaker-demo-ab12cd34-role",
                                "Path": "/geusemaker/", "AssumeRolePolicyDocument": "{}",
                                "Tags": TAGLIST}),
        ("iam", "attach_role_policy", {"RoleName": "r", "PolicyArn":
                                       "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"}),
        ("iam", "put_role_policy", {"RoleName": "r", "PolicyName": "p", "PolicyDocument": "{}"}),
        ("iam", "create_instance_profile", {"InstanceProfileName": "p", "Path": "/geusemaker/",
                                            "Tags": TAGLIST}),
        ("iam", "add_role_to_instance_profile", {"InstanceProfileName": "p", "RoleName": "r"}),
        ("iam", "list_roles", {"PathPrefix": "/geusemaker/", "MaxItems": 100}),
        ("iam", "list_instance_profiles", {"PathPrefix": "/geusemaker/", "Marker": "m"}),
        ("ssm", "get_parameter", {"Name": "/aws/service/ami-amazon-linux-latest/"
                                          "al2023-ami-kernel-default-x86_64"}),
        ("ssm", "put_parameter", {"Name": "/geusemaker/demo/postgres-password", "Value": "x",
                                  "Type": "SecureString", "Tags": TAGLIST}),
        ("ssm", "put_parameter", {"Name": "/geusemaker/demo/config", "Value": "{}",
                                  "Type": "String", "Overwrite": True}),
        ("ssm", "get_parameters", {"Names": ["/a", "/b"], "WithDecryption": True}),
        ("ssm", "describe_parameters", {"ParameterFilters": [
            {"Key": "Name", "Option": "BeginsWith", "Values": ["/geusemaker/"]}]}),
        ("ssm", "delete_parameters", {"Names": ["/a", "/b"]}),
        ("ssm", "add_tags_to_resource", {"ResourceType": "Parameter", "ResourceId": "/a",
                                         "Tags": TAGLIST}),
        ("efs", "create_file_system", {"CreationToken": "tok", "Encrypted": True,
                                       "PerformanceMode": "generalPurpose",
                                       "ThroughputMode": "elastic", "Tags": TAGLIST}),
        ("efs", "describe_file_systems", {"CreationToken": "tok"}),
        ("efs", "describe_file_systems", {"FileSystemId": "fs-12345678"}),
        ("efs", "create_mount_target", {"FileSystemId": "fs-12345678",
                                        "SubnetId": "subnet-12345678",
                                        "SecurityGroups": ["sg-12345678"]}),
        ("efs", "describe_mount_targets", {"FileSystemId": "fs-12345678"}),
        ("efs", "delete_mount_target", {"MountTargetId": "fsmt-12345678"}),
        ("efs", "put_file_system_policy", {"FileSystemId": "fs-12345678", "Policy": "{}"}),
        ("efs", "tag_resource", {"ResourceId": "fs-12345678", "Tags": TAGLIST}),
        ("efs", "delete_file_system", {"FileSystemId": "fs-12345678"}),
        ("resourcegroupstaggingapi", "get_resources",
         {"TagFilters": [{"Key": "geusemaker:deployment-id", "Values": ["ab12cd34"]}],
          "ResourcesPerPage": 100}),
        ("sts", "get_caller_identity", {}),
        ("pricing", "get_products", {"ServiceCode": "AmazonEC2", "MaxResults": 100, "Filters": [
            {"Type": "TERM_MATCH", "Field": "instanceType", "Value": "t3.large"}]}),
    ]


def test_boto3_requests_through_the_proxy_pass(moto_server, models):
    """boto3 serialises from the same models: its requests must all pass (the
    proxy answers each with an error, so nothing depends on moto's state)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    audit = ApiAudit(models=models, ua_prefix=None)  # every client, not only geusemaker
    calls = _boto_calls()
    with FaultProxy(moto_server, observer=audit.observe) as p:
        p.add_rule({"error": "InjectedForTheModelCheck", "status": 400})
        clients = {}
        for svc, method, kwargs in calls:
            if svc not in clients:
                clients[svc] = boto3.client(
                    svc, endpoint_url=p.url, region_name="us-east-1",
                    aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                    config=Config(retries={"total_max_attempts": 1}))
            with pytest.raises(ClientError):
                getattr(clients[svc], method)(**kwargs)
        assert len(p.records) == len(calls)
    assert audit.checked == len(calls)
    ops = {op for (_svc, op) in audit.by_operation}
    assert {"RunInstances", "CreateLoadBalancer", "PutParameter", "CreateFileSystem",
            "GetResources", "CreateRole"} <= ops
    assert audit.grouped() == []


# ---- geusemaker's requests in the session's check ---------------------------------

def test_geusemaker_requests_are_checked(gm, proxy):
    before = API_AUDIT.checked
    r = gm.run("whoami")
    assert r.returncode == 0, r.stderr
    assert API_AUDIT.checked > before
    assert ("sts", "GetCallerIdentity") in API_AUDIT.by_operation
    ua = proxy.records[-1]["request_headers"].get("User-Agent", "")
    assert ua.startswith("geusemaker/")


@pytest.mark.skipif(not os.environ.get("GM_API_AUDIT_SELFTEST"),
                    reason="run by test_a_bad_request_fails_the_session in a child pytest")
def test_selftest_sends_a_request(proxy):
    """In the child pytest: one request with geusemaker's User-Agent, bad or
    good as GM_API_AUDIT_SELFTEST says."""
    bad = os.environ["GM_API_AUDIT_SELFTEST"] == "bad"
    pairs = [("Bogus", "1")] if bad else [("VpcId.1", "vpc-12345678")]
    method, path, headers, body = ec2("DescribeVpcs", *pairs)
    headers["User-Agent"] = "geusemaker/selftest"
    req = urllib.request.Request(proxy.url + path, data=body, method=method, headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        opener.open(req, timeout=30).read()
    except urllib.error.HTTPError:
        pass  # moto refuses the made-up signature or not: the check ran before it
    assert len(proxy.records) == 1


@pytest.mark.parametrize("workers", [0, 2], ids=["one-process", "xdist"])
@pytest.mark.parametrize("kind", ["bad", "good"])
def test_a_bad_request_fails_the_session(kind, workers, tmp_path):
    """The child runs alone, or on two pytest-xdist workers: then the worker that
    sent the request hands its findings to the controller, which must report
    and judge them (conftest's pytest_testnodedown)."""
    xdist = ["-n", str(workers)] if workers else []
    if xdist:
        pytest.importorskip("xdist")
    env = dict(os.environ, GM_API_AUDIT_SELFTEST=kind, GM_API_REPORT=str(tmp_path / "r.json"))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--basetemp", str(tmp_path / "base")] + xdist +
                       [os.path.join(HERE, "test_apimodels.py") + "::test_selftest_sends_a_request"],
                       env=env, capture_output=True, text=True, timeout=300, cwd=HERE)
    out = r.stdout + r.stderr
    assert "1 passed" in out, out
    if kind == "bad":
        assert r.returncode == 1, out
        assert "AWS API model check: FAILED" in out
        assert "ec2 DescribeVpcs: Bogus: unknown member of DescribeVpcsRequest" in out
        assert "test_selftest_sends_a_request" in out
    else:
        assert r.returncode == 0, out
        assert "0 violations" in out
    doc = json.load(open(tmp_path / "r.json"))
    assert doc["checked"] == 1
    assert len(doc["violations"]) == (1 if kind == "bad" else 0)
