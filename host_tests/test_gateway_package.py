"""The gateway installs as a package with a `xiaozhi-gateway` console command:
a wheel is built from this repo's pyproject.toml (offline, no build isolation),
installed into a temp dir, and its command runs from outside the repo with a
config file, then stops on SIGTERM. The deploy files reference that command."""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pip(*args):
    p = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def test_wheel_installs_a_working_xiaozhi_gateway_command(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, f), src / f)
    shutil.copytree(os.path.join(ROOT, "tools"), src / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    _pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp_path / "dist"), str(src))
    (wheel,) = glob.glob(str(tmp_path / "dist" / "xiaozhi_gateway-*.whl"))
    site = tmp_path / "site"
    _pip("install", "--no-deps", "--no-index", "--target", str(site), wheel)
    cmd = str(site / "bin" / "xiaozhi-gateway")
    env = dict(os.environ, PYTHONPATH=str(site))
    run = tmp_path / "run"  # not the repo: only the installed copy is importable
    run.mkdir()

    where = subprocess.run([sys.executable, "-c", "import tools.gateway.store as m; print(m.__file__)"],
                           cwd=run, env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.startswith(str(site)), where.stdout + where.stderr
    usage = subprocess.run([cmd, "--help"], cwd=run, env=env, capture_output=True, text=True, timeout=60)
    assert usage.returncode == 0 and "--workers" in usage.stdout and "--redis" in usage.stdout, usage.stderr

    (run / "gateway.json").write_text(json.dumps({"listen": "127.0.0.1:0", "workers": 1,
                                                  "upstreams": ["ws://127.0.0.1:9/xiaozhi/v1/"]}))
    p = subprocess.Popen([cmd, "--config", "gateway.json"], cwd=run, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("gateway ready on ws://127.0.0.1:"), line
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=20)
    assert p.returncode == 0 and "Traceback" not in err, err


def test_service_files_run_the_installed_command(tmp_path):
    unit = open(os.path.join(ROOT, "deploy", "systemd", "xiaozhi-gateway.service")).read()
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze not found: run `make setup` (scripts/setup installs the Debian package systemd)"
    # systemd's own check of every directive; the command path is one that exists on this host.
    (tmp_path / "xiaozhi-gateway.service").write_text(
        unit.replace("/opt/xiaozhi-gateway/bin/xiaozhi-gateway", sys.executable))
    v = subprocess.run([analyze, "verify", str(tmp_path / "xiaozhi-gateway.service")], capture_output=True,
                       text=True, timeout=60)
    assert v.returncode == 0 and not v.stderr.strip(), v.stderr
    assert ("ExecStart=/opt/xiaozhi-gateway/bin/xiaozhi-gateway --config ${CREDENTIALS_DIRECTORY}/gateway.json"
            in unit) and "LoadCredential=gateway.json:/etc/xiaozhi-gateway/gateway.json" in unit
    for hardening in ("NoNewPrivileges=yes", "ProtectSystem=strict", "DynamicUser=yes", "PrivateTmp=yes"):
        assert hardening in unit, hardening
    docker = os.path.join(ROOT, "deploy", "docker")
    dockerfile = open(os.path.join(docker, "Dockerfile")).read()
    assert "pip install" in dockerfile and 'CMD ["xiaozhi-gateway", "--config", "/etc/xiaozhi-gateway/gateway.json"]' \
        in dockerfile
    compose = open(os.path.join(docker, "compose.yml")).read()
    # Every local file the compose file mounts or builds from exists.
    for ref in ("./gateway.example.json", "../.."):
        assert ref in compose and os.path.exists(os.path.join(docker, ref)), ref
    example = json.load(open(os.path.join(docker, "gateway.example.json")))
    from tools.gateway.config import Config, apply_dict

    cfg = apply_dict(Config(), example)  # the example is a valid config
    assert cfg.upstreams == ["ws://xiaozhi-esp32-server:8000/xiaozhi/v1/"]
    assert cfg.upstream_ota == "http://xiaozhi-esp32-server:8003/xiaozhi/ota/"
