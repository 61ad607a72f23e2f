"""Deploy the firmware to a board running MicroPython: upload only what changed.

The plan compares the sha256 of each compiled file with the file on the
device. It also removes files that would shadow or outlive the new ones:
stale modules under /firmware, and a .py next to its new .mpy (MicroPython
imports the .py first).
"""
import os

from tools.dev import build, devconfig
from tools.dev.device import Device
from tools.dev.errors import DevError

OWNED_DIRS = ("firmware", "lib", "prompts")


def _module_key(rel):
    base, ext = os.path.splitext(rel)
    return base if ext in (".py", ".mpy") else None


class Plan:
    def __init__(self, files, remote, frozen=False, lib_keys=()):
        self.files = files
        self.upload = []
        self.unchanged = []
        self.remove = []
        self.mkdirs = []
        ours = {_module_key(p) for p in files}
        for rel, data in sorted(files.items()):
            entry = remote.get(rel)
            if entry and entry[1] == build.sha256(data):
                self.unchanged.append(rel)
            else:
                self.upload.append(rel)
        for rel, (is_dir, _) in sorted(remote.items()):
            if is_dir or rel in files:
                continue
            key = _module_key(rel)
            if rel.startswith("firmware/") and key is not None:
                # /firmware is ours alone; with a frozen build any copy there would shadow it.
                self.remove.append(rel)
            elif rel.startswith("lib/") and key is not None and (key in ours or frozen and key in lib_keys):
                self.remove.append(rel)
        need = set()
        for rel in self.upload:
            d = os.path.dirname(rel)
            while d:
                need.add(d)
                d = os.path.dirname(d)
        self.mkdirs = [d for d in sorted(need) if d not in remote]

    def changed(self):
        return bool(self.upload or self.remove)


def _lib_keys(src):
    return {_module_key(f) for f in build.device_files(src) if f.startswith("lib/")}


def make_plan(dev, files, frozen=False, src=build.ROOT):
    remote = dev.scan(OWNED_DIRS, list(build.ENTRY), list(files))
    return Plan(files, remote, frozen, _lib_keys(src) if frozen else ())


def print_plan(plan, dry_run):
    verb = "would " if dry_run else ""
    for d in plan.mkdirs:
        print("  mkdir   %s" % d)
    for rel in plan.upload:
        print("  upload  %s (%d bytes)" % (rel, len(plan.files[rel])))
    for rel in plan.remove:
        print("  remove  %s" % rel)
    print("deploy: %s%d to upload, %d unchanged, %d to remove" % (
        verb, len(plan.upload), len(plan.unchanged), len(plan.remove)))


def apply(dev, plan):
    for d in plan.mkdirs:
        dev.mkdir(d)
    n = len(plan.upload)
    for i, rel in enumerate(plan.upload, 1):
        print("  [%d/%d] %s (%d bytes)" % (i, n, rel, len(plan.files[rel])), flush=True)
        dev.write(rel, plan.files[rel])
    for rel in plan.remove:
        print("  removed %s" % rel, flush=True)
        dev.remove(rel)


def write_config(dev, values, dry_run):
    """Merge `values` into the device config; print the redacted changes. True if anything changed."""
    raw = dev.read(devconfig.PATH)
    current, warning = devconfig.parse_device_config(raw)
    if warning:
        print("warning: " + warning)
    new = devconfig.merge(current, values)
    lines = devconfig.describe_changes(current, new)
    if raw is not None and current is not None and not lines:
        print("config: unchanged")
        return False
    for ln in lines:
        print("config: %s%s" % ("would set " if dry_run else "", ln))
    if not dry_run:
        dev.write_atomic(devconfig.PATH, devconfig.encode(new))
    return True


def deploy(port, root="/", arch="xtensawin", compile=True, frozen=False, config_values=None, dry_run=False,
           reset=True, soft_reset_first=True, timeout=10, src=build.ROOT, prompt_format=None):
    """Build, connect, upload what changed, optionally write config, soft-reset. Returns the Plan.
    prompt_format: also build the local prompt sounds in that codec and upload them (None: leave them)."""
    if not os.path.isdir(os.path.join(src, "firmware")):
        raise DevError("%s has no firmware/ directory: not a xiaozhi-mpy checkout" % src)
    # A frozen build carries firmware/ and lib/ in flash: only the entry points are uploaded, so only they are built.
    only = [f for f in build.ENTRY if os.path.isfile(os.path.join(src, f))] if frozen else None
    files = build.build(arch=arch, compile=compile, root=src, files=only)
    print("built %d files%s" % (len(files), " for %s" % arch if compile else " (source)"))
    if prompt_format:
        from tools.dev import prompts

        made = prompts.build(fmt=prompt_format)
        files.update(made)
        print("prompts: %d files (%d KB, %s)" % (len(made), sum(len(v) for v in made.values()) // 1024, prompt_format))
    dev = Device(port, root=root, soft_reset=soft_reset_first, timeout=timeout)
    try:
        plan = make_plan(dev, files, frozen, src)
        if dry_run:
            print_plan(plan, True)
            if config_values:
                write_config(dev, config_values, True)
            return plan
        apply(dev, plan)
        cfg_changed = write_config(dev, config_values, False) if config_values else False
        print("deploy: %d uploaded, %d unchanged, %d removed%s" % (
            len(plan.upload), len(plan.unchanged), len(plan.remove), ", config updated" if cfg_changed else ""))
        if reset:
            print("soft reset: the board restarts into main.py")
            dev.soft_reset()
        return plan
    finally:
        dev.close()
