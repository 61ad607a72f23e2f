"""package.json for mip, generated from the device file list so it never misses a module.

    mpremote mip install --target / github:<owner>/xiaozhi-mpy

Entries map device paths to repo-relative URLs (mip resolves them against the
package.json location), so the same file works from GitHub and from a local
checkout: mpremote mip install --target / ./package.json
"""
import json
import os

from tools.dev import build
from tools.dev.build import ROOT

VERSION = "0.1.0"
PATH = os.path.join(ROOT, "package.json")


def render(root=ROOT):
    urls = [[rel, rel] for rel in build.device_files(root)]
    return json.dumps({"urls": urls, "deps": [], "version": VERSION}, indent=2) + "\n"


def main(check=False):
    want = render()
    try:
        with open(PATH) as f:
            have = f.read()
    except OSError:
        have = None
    if check:
        if have == want:
            print("package.json is up to date (%d files)" % len(json.loads(want)["urls"]))
            return 0
        listed = {u[0] for u in json.loads(have)["urls"]} if have else set()
        files = set(build.device_files())
        print("package.json is out of date: missing %s; extra %s. Run: python -m tools.dev package"
              % (sorted(files - listed) or "none", sorted(listed - files) or "none"))
        return 1
    if have != want:
        with open(PATH, "w") as f:
            f.write(want)
    print("wrote package.json (%d files)" % len(json.loads(want)["urls"]))
    return 0
