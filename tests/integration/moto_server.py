#!/usr/bin/env python3
"""The moto server the integration tests start, with two fixes: its launch
template versions, and the snapshot tags of CreateImage.

Run it like `python3 -m moto.server`.

The fix. moto's CreateLaunchTemplate keeps the template's UserData as its
Base64EncodedString type, but CreateLaunchTemplateVersion keeps the plain
string it received; an Auto Scaling group launching from such a version then
fails moto's own assertion (moto/ec2/models/launch_templates.py, `user_data`)
and the request that made it launch (TerminateInstanceInAutoScalingGroup,
UpdateAutoScalingGroup) answers HTTP 500. AWS launches from every version
alike. Here a version's UserData string is wrapped the way
CreateLaunchTemplate wraps it, when it is read.

The second. AWS's CreateImage takes TagSpecifications for the image and for
the snapshots it makes (so a policy that allows tags only at creation covers
both); moto raises NotImplementedError for the snapshot one (HTTP 500). Here
the snapshot specification is taken out before moto sees it and its tags are
put on the image's snapshot afterwards, as AWS would have.
"""
import sys

from moto.core.types import Base64EncodedString
from moto.ec2.models import amis, launch_templates


def _create_image_with_snapshot_tags():
    cls = amis.AmiBackend
    original = cls.create_image

    def create_image(self, instance_id, name, description, tag_specifications):
        snapshot_tags = [t for spec in tag_specifications
                         if spec.get("ResourceType") == "snapshot" for t in spec.get("Tags", [])]
        others = [spec for spec in tag_specifications if spec.get("ResourceType") != "snapshot"]
        ami = original(self, instance_id, name, description, others)
        snapshot = getattr(ami, "ebs_snapshot", None)
        for tag in snapshot_tags:
            if snapshot is not None:
                snapshot.add_tag(tag["Key"], tag["Value"])
        return ami

    cls.create_image = create_image


def apply():
    cls = launch_templates.LaunchTemplateVersion
    original = cls.user_data.fget

    def user_data(self):
        value = self.data.get("UserData")
        if isinstance(value, str):
            self.data["UserData"] = Base64EncodedString(value)
        return original(self)

    cls.user_data = property(user_data)
    _create_image_with_snapshot_tags()


if __name__ == "__main__":
    apply()
    from moto.server import main

    main(sys.argv[1:])
