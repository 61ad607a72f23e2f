"""python -m tools.dev flash|deploy|config|repl|logs|check|doctor|package|prompts ..."""
import argparse
import os
import subprocess
import sys

from tools.dev.errors import DevError

EPILOG = """first time on a breadboard ESP32-S3:
  python -m tools.dev flash ESP32_GENERIC_S3-SPIRAM_OCT-v1.xx.bin --erase
  python -m tools.dev deploy --ssid MyWiFi --ws-url ws://192.168.1.10:8765/xiaozhi/v1/   (the gateway)
  python -m tools.dev logs
"""


def _port_args(p, resume=False, files=False):
    """--port for every command; --resume for those that enter MicroPython's REPL; --root and
    --timeout for those that also work on its files (deploy, config)."""
    p.add_argument("--port", "-p", help="serial port (default: the only one found; asks when there are several)")
    if resume:
        p.add_argument("--resume", action="store_true",
                       help="do not soft-reset on connect (mpremote 'resume'; needed for the unix port)")
    if files:
        p.add_argument("--root", default="/", help="device directory that holds boot.py (default /)")
        p.add_argument("--timeout", type=float, default=10, help="seconds to wait for the REPL (default 10)")


def cmd_flash(a):
    from tools.dev.flash import flash

    chip, offset = flash(a.image, a.port, baud=a.baud, erase=a.erase, verify=not a.no_verify,
                         attempts=a.connect_attempts, before=a.before, after=a.after)
    print("flashed %s at 0x%x on the %s; next: python -m tools.dev deploy" % (a.image, offset, chip))
    return 0


def cmd_deploy(a):
    from tools.dev import deploy, devconfig, ports

    values = devconfig.changes_from_args(a)
    if a.dry_run and not a.port and not ports.candidates():
        return plan_without_board(a, values)
    port = ports.choose(a.port)
    deploy.deploy(port, root=a.root, arch=a.arch, compile=not a.source, frozen=a.frozen, config_values=values,
                  dry_run=a.dry_run, reset=not a.no_reset, soft_reset_first=not a.resume, timeout=a.timeout,
                  src=os.path.abspath(a.src), prompt_format=None if a.no_prompts else a.prompt_format)
    return 0


def plan_without_board(a, values):
    """deploy --dry-run with no board plugged in: build, and show the plan
    against an empty board (everything is uploaded) and the config it would
    write over the defaults. Nothing is connected to or changed."""
    from tools.dev import build, deploy, devconfig

    src = os.path.abspath(a.src)
    if not os.path.isdir(os.path.join(src, "firmware")):
        raise DevError("%s has no firmware/ directory: not a xiaozhi-mpy checkout" % src)
    only = [f for f in build.ENTRY if os.path.isfile(os.path.join(src, f))] if a.frozen else None
    files = build.build(arch=a.arch, compile=not a.source, root=src, files=only)
    print("no board found: planning against an empty board (a connected board uploads only what changed)")
    print("built %d files%s" % (len(files), " for %s" % a.arch if not a.source else " (source)"))
    deploy.print_plan(deploy.Plan(files, {}, a.frozen), True)
    for line in devconfig.describe_changes(None, devconfig.merge(None, values)) if values else ():
        print("config: would set %s" % line)
    return 0


def cmd_config(a):
    import json

    from tools.dev import deploy, devconfig, ports
    from tools.dev.device import Device

    values = devconfig.changes_from_args(a)
    port = ports.choose(a.port)
    dev = Device(port, root=a.root, soft_reset=not a.resume, timeout=a.timeout)
    try:
        if not values:
            current, warning = devconfig.parse_device_config(dev.read(devconfig.PATH))
            if warning:
                print("warning: " + warning)
            if current is None and not warning:
                print("no %s on the device; it runs on defaults" % devconfig.PATH)
            print(json.dumps(devconfig.redacted(devconfig.merge(current, {})), indent=2, sort_keys=True))
            return 0
        changed = deploy.write_config(dev, values, a.dry_run)
        if changed and a.reset and not a.dry_run:
            print("soft reset: the board restarts with the new config")
            dev.soft_reset()
        elif changed and not a.dry_run:
            print("the new config takes effect at the next reset (add --reset)")
        return 0
    finally:
        dev.close()


def _mpremote():
    return [sys.executable, "-m", "mpremote"]


def cmd_repl(a):
    from tools.dev import ports

    port = ports.choose(a.port)
    cmd = _mpremote() + ["connect", port] + (["resume"] if a.resume else []) + ["repl"]
    print("REPL on %s: Ctrl-] or Ctrl-x to leave, Ctrl-D soft-resets the board" % port, flush=True)
    return subprocess.call(cmd)


def cmd_logs(a):
    from tools.dev import ports
    from tools.dev.logs import follow

    port = ports.choose(a.port)
    return follow(port, baud=a.baud, reset=a.reset, events_only=a.events, until=a.until, timeout=a.timeout)


def cmd_check(a):
    from tools.dev import static

    return 0 if static.run_all(arch=a.arch, only=a.only) else 1


def cmd_package(a):
    from tools.dev import package

    return package.main(check=a.check)


def cmd_prompts(a):
    from tools.dev import prompts

    prompts.build(out=os.path.abspath(a.out), fmt=a.format, recorded=a.recorded)
    return 0


def cmd_doctor(a):
    from tools.dev import doctor

    cfg = doctor.load_config(a.config) if a.config else {}
    if a.ota_url is not None:
        cfg["ota_url"] = a.ota_url
    if a.ws_url is not None:
        cfg["ws_url"] = a.ws_url
    if a.ssid:
        cfg["wifi"] = [{"ssid": a.ssid}]
    return doctor.run(cfg, device_id=a.device_id, client_id=a.client_id, token=a.token)


def build_parser():
    p = argparse.ArgumentParser(prog="python -m tools.dev", description="Flash, deploy and debug xiaozhi-mpy boards.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.required = True

    f = sub.add_parser("flash", help="write a MicroPython firmware .bin to the board (esptool)",
                       description="Write a MicroPython firmware image to the ESP32-S3 over USB with esptool: "
                                   "enter the bootloader, optionally erase, write at the chip's offset, "
                                   "verify, reset.")
    f.add_argument("image", help="MicroPython firmware .bin from micropython.org (merged image)")
    _port_args(f)
    f.add_argument("--baud", "-b", type=int, default=460800, help="flashing baud rate (default 460800)")
    f.add_argument("--erase", action="store_true", help="erase the whole flash first (first install)")
    f.add_argument("--no-verify", action="store_true", help="skip reading the flash back to verify")
    f.add_argument("--connect-attempts", type=int, default=7, help="bootloader connect attempts (default 7)")
    f.add_argument("--before", default="default-reset", choices=["default-reset", "usb-reset", "no-reset"],
                   help="how to enter the bootloader (default: DTR/RTS reset)")
    f.add_argument("--after", default="hard-reset", choices=["hard-reset", "no-reset"],
                   help="what to do when done (default: hard reset)")
    f.set_defaults(fn=cmd_flash)

    from firmware.prompt_file import FORMATS as PROMPT_FORMATS
    from tools.dev import devconfig
    from tools.dev.build import ARCHES, ROOT
    from tools.dev.prompts import OUT as PROMPTS_OUT

    d = sub.add_parser("deploy", help="compile firmware/ and lib/ to .mpy and upload what changed (mpremote)",
                       description="Compile firmware/ and lib/ to .mpy, compare with the files on the board by "
                                   "sha256, upload only what changed, remove stale copies, optionally write "
                                   "config keys, and soft-reset. --dry-run shows the plan; without a board it "
                                   "plans against an empty one.")
    _port_args(d, resume=True, files=True)
    d.add_argument("--arch", default="xtensawin", choices=ARCHES, metavar="ARCH",
                   help="mpy-cross -march for files with native/viper code (default xtensawin = ESP32-S3/ESP32)")
    d.add_argument("--source", action="store_true", help="upload .py sources instead of .mpy")
    d.add_argument("--frozen", action="store_true",
                   help="the board runs a build with firmware frozen in (manifest.py): upload only boot.py/main.py "
                        "and remove filesystem copies that would shadow the frozen modules")
    d.add_argument("--dry-run", "-n", action="store_true", help="show the plan, change nothing")
    d.add_argument("--no-reset", action="store_true", help="do not soft-reset at the end")
    d.add_argument("--src", default=ROOT, metavar="DIR", help="checkout to deploy from (default: this one)")
    d.add_argument("--no-prompts", action="store_true", help="do not build and upload the local prompt sounds")
    d.add_argument("--prompt-format", default="adpcm", choices=PROMPT_FORMATS,
                   help="codec of the prompt files (default adpcm: a quarter of pcm on the flash)")
    devconfig.add_arguments(d)
    d.set_defaults(fn=cmd_deploy)

    c = sub.add_parser("config", help="show the device config, or set keys in it",
                       description="Without flags, print the board's config.json with secrets hidden. With "
                                   "flags, validate the new keys, merge them in and write the file atomically.")
    _port_args(c, resume=True, files=True)
    c.add_argument("--dry-run", "-n", action="store_true", help="show the change, write nothing")
    c.add_argument("--reset", action="store_true", help="soft-reset after writing so the config takes effect")
    devconfig.add_arguments(c)
    c.set_defaults(fn=cmd_config)

    r = sub.add_parser("repl", help="open the MicroPython REPL (mpremote)",
                       description="Open the board's MicroPython REPL through mpremote. Ctrl-] or Ctrl-x leaves.")
    _port_args(r, resume=True)
    r.set_defaults(fn=cmd_repl)

    lg = sub.add_parser("logs", help="follow the device log on the serial port",
                        description="Print the board's log lines from the serial port as they come; optionally "
                                    "only the '@EV' event lines, or until a line contains some text.")
    _port_args(lg)
    lg.add_argument("--baud", "-b", type=int, default=115200, help="baud rate (default 115200)")
    lg.add_argument("--reset", action="store_true", help="soft-reset first (Ctrl-C, Ctrl-D) to see the boot log")
    lg.add_argument("--events", action="store_true", help="show only '@EV' event lines")
    lg.add_argument("--until", metavar="TEXT", help="exit 0 as soon as a line contains TEXT")
    lg.add_argument("--timeout", type=float, help="stop after this many seconds (exit 1 if --until was not seen)")
    lg.set_defaults(fn=cmd_logs)

    k = sub.add_parser("check", help="static checks: mpy-cross every device file, mypy the ESP32 HAL, ruff",
                       description="Static checks with no board: compile every device file with mpy-cross for "
                                   "the chip, type-check the ESP32 HAL against the MicroPython stubs, run ruff.")
    k.add_argument("--arch", default="xtensawin", choices=ARCHES, metavar="ARCH",
                   help="mpy-cross -march (default xtensawin)")
    k.add_argument("--only", choices=["compile", "mypy", "ruff"], help="run one check")
    k.set_defaults(fn=cmd_check)

    dr = sub.add_parser("doctor", help="check each hop a device takes (config, OTA, gateway, upstream) from this PC",
                        description="Probe the hops a device takes, in order: its config (Wi-Fi, URLs), the OTA URL, "
                                    "the WebSocket URL (the gateway must answer in pcm) and the xiaozhi server behind "
                                    "it. Prints one line a hop and names the first broken one (exit 1).")
    dr.add_argument("--config", metavar="FILE", help="a device config.json to check (e.g. the one you deploy)")
    dr.add_argument("--ota-url", metavar="URL", help="OTA URL to check (overrides the config's)")
    dr.add_argument("--ws-url", metavar="URL", help="WebSocket URL to check (overrides the config's)")
    dr.add_argument("--ssid", help="a Wi-Fi network name, when checking without a config file")
    dr.add_argument("--token", help="bearer token, when the gateway or server wants one")
    dr.add_argument("--device-id", default="02:00:00:d0:c7:01", help="Device-Id to probe with (default: a made-up MAC)")
    dr.add_argument("--client-id", help="Client-Id to probe with (default: the config's, or a new UUID)")
    dr.set_defaults(fn=cmd_doctor)

    pm = sub.add_parser("prompts", help="make the local prompt sounds from text (espeak-ng + sox) for deploy",
                        description="Speak every prompt (connecting, cannot reach Wi-Fi/OTA/server, Wi-Fi lost, "
                                    "set up Wi-Fi, activation digits) in en and zh-CN with espeak-ng, plus the "
                                    "listening earcon, and write them in the device codec. deploy does this too.")
    pm.add_argument("--format", default="adpcm", choices=PROMPT_FORMATS, help="device codec (default adpcm)")
    pm.add_argument("--out", default=PROMPTS_OUT, metavar="DIR", help="output folder (default build/prompts)")
    pm.add_argument("--recorded", metavar="DIR",
                    help="folder of recorded voices (en/NAME.wav, zh-CN/NAME.wav, 16 kHz mono) that replace "
                         "the synthesized ones")
    pm.set_defaults(fn=cmd_prompts)

    pk = sub.add_parser("package", help="regenerate package.json (mip) from the device file list",
                        description="Write package.json, the mip manifest that installs the firmware with "
                                    "mip.install(), from the same file list deploy uses.")
    pk.add_argument("--check", action="store_true", help="exit 1 if package.json is out of date")
    pk.set_defaults(fn=cmd_package)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except DevError as e:
        print("dev: FAILED: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

