#!/usr/bin/env python3
"""The moto server the integration tests start, with one fix to its launch
template versions.

Run it like `python3 -m moto.server`.

The fix. moto's CreateLaunchTemplate keeps the template's UserData as its
Base64EncodedString type, but CreateLaunchTemplateVersion keeps the plain
string it received; an Auto Scaling group launching from such a version then
fails moto's own assertion (moto/ec2/models/launch_templates.py, `user_data`)
and the request that made it launch (TerminateInstanceInAutoScalingGroup,
UpdateAutoScalingGroup) answers HTTP 500. AWS launches from every version
alike. Here a version's UserData string is wrapped the way
CreateLaunchTemplate wraps it, when it is read.
"""
import sys

from moto.core.types import Base64EncodedString
from moto.ec2.models import launch_templates


def apply():
    cls = launch_templates.LaunchTemplateVersion
    original = cls.user_data.fget

    def user_data(self):
        value = self.data.get("UserData")
        if isinstance(value, str):
            self.data["UserData"] = Base64EncodedString(value)
        return original(self)

    cls.user_data = property(user_data)


if __name__ == "__main__":
    apply()
    from moto.server import main

    main(sys.argv[1:])
