"""The production docker-compose.yml: what it publishes, where secrets come from, what starts
first, and that the Asterisk it configures really listens where the file says.

`docker-compose config` (Debian's docker-compose, no Docker engine needed) validates and
resolves the file; the Asterisk check renders the container's configuration with
docker/asterisk/render.py and runs the provisioned Asterisk 22 in a network namespace of its
own that has the container's backend address, so nothing listens on this machine's network.
"""

from __future__ import annotations

import http.server
import importlib.util
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from callcenter.channels.telephony.pbx import ASTERISK, find_root
from callcenter.channels.telephony.pbxconfig import render
from callcenter.config import SECRET_FIELDS

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / "docker" / "callcenter.env.example"
SERVICES = {"postgres", "asterisk", "migrate", "callcenter", "web", "telegram", "email", "proxy"}
APP_SERVICES = {"migrate", "callcenter", "web", "telegram", "email"}
SECRETS = {f"CALLCENTER_{name.upper()}" for name in SECRET_FIELDS} | {
    "POSTGRES_PASSWORD",
    *(f"PBX_AGENT_{agent}_PASSWORD" for agent in ("1001", "1002", "1003", "1004")),
}
# What may be published: HTTPS (and 80 for redirects), SIP and the RTP range.
ALLOWED_TCP = {80, 443}
INTERNAL_PORTS = {5038, 8088, 4573, 5432, 8080}


def compose_binary() -> str:
    found = shutil.which("docker-compose")
    assert found, "docker-compose is missing: apt-get install -y docker-compose (scripts/setup)"
    return found


def yaml_to_data(text: str) -> dict:
    """YAML to Python with the PyYAML that docker-compose itself runs on (its interpreter)."""
    shebang = Path(compose_binary()).read_text(errors="replace").splitlines()[0]
    python = shebang[2:].strip().split()[0] if shebang.startswith("#!") else sys.executable
    script = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"
    done = subprocess.run(
        [python, "-c", script], input=text, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def filled_env() -> dict[str, str]:
    """The example env file with every blank value filled, as a user would."""
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    fills = {
        "PBX_PUBLIC_ADDRESS": "203.0.113.7",
        "PBX_TRUNK_MATCH": "198.51.100.0/24",
    }
    return {
        key: value or fills.get(key, f"test-secret-{key.lower()}-1234")
        for key, value in values.items()
    }


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml_to_data(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def resolved(tmp_path_factory) -> dict:
    """`docker-compose config` of the file, with the env files a user would have made."""
    project = tmp_path_factory.mktemp("compose")
    shutil.copy(COMPOSE, project / "docker-compose.yml")
    (project / "docker").mkdir()
    env = "".join(f"{key}={value}\n" for key, value in filled_env().items())
    (project / "docker" / "callcenter.env").write_text(env, encoding="utf-8")
    shutil.copy(REPO / "docker" / "proxy.env.example", project / "docker" / "proxy.env")
    done = subprocess.run(
        [compose_binary(), "config"],
        cwd=project,
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    assert done.returncode == 0, done.stderr
    return yaml_to_data(done.stdout)


def published(service: dict) -> set[tuple[int, str]]:
    return {(int(p["published"]), p.get("protocol", "tcp")) for p in service.get("ports", [])}


def test_every_service_is_there(resolved):
    assert set(resolved["services"]) == SERVICES


def test_only_https_sip_and_rtp_are_published(resolved):
    services = resolved["services"]
    by_service = {name: published(service) for name, service in services.items()}
    assert by_service["proxy"] == {(80, "tcp"), (443, "tcp")}
    env = services["asterisk"]["environment"]
    rtp = range(int(env["PBX_RTP_START"]), int(env["PBX_RTP_END"]) + 1)
    assert by_service["asterisk"] == {(5060, "udp")} | {(port, "udp") for port in rtp}
    for name, ports in by_service.items():
        assert not {port for port, _ in ports} & INTERNAL_PORTS, name
        if name not in ("proxy", "asterisk"):
            assert ports == set(), f"{name} publishes {ports}"
    # Containers' own ports are never published by "expose" or the host network either.
    assert all("network_mode" not in s and "expose" not in s for s in services.values())


def test_secrets_come_only_from_the_env_file(raw, resolved):
    for name, service in raw["services"].items():
        written = service.get("environment") or {}
        leaked = {k: v for k, v in written.items() if k in SECRETS and v}
        assert not leaked, f"{name} has secrets in docker-compose.yml: {sorted(leaked)}"
    env_files = {name: s.get("env_file") for name, s in raw["services"].items()}
    for name in APP_SERVICES | {"asterisk", "postgres"}:
        assert env_files[name] == "docker/callcenter.env", name
    # The internet-facing proxy never sees them.
    assert env_files["proxy"] == "docker/proxy.env"
    assert not SECRETS & set(resolved["services"]["proxy"].get("environment", {}))
    # Each secret arrives (from the env file) where it is used.
    assert "CALLCENTER_SESSION_KEY" in resolved["services"]["callcenter"]["environment"]
    assert "PBX_AGENT_1001_PASSWORD" in resolved["services"]["asterisk"]["environment"]


def test_the_env_example_lists_every_secret_blank():
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    values = dict(line.partition("=")[::2] for line in lines if re.match(r"^[A-Z_0-9]+=", line))
    assert set(values) >= SECRETS, sorted(SECRETS - set(values))
    assert all(values[name] == "" for name in SECRETS)
    assert lines[0].startswith("#")


def test_the_app_services_share_the_internal_network(raw, resolved):
    networks = resolved["networks"]
    assert networks["backend"]["internal"] is True
    services = resolved["services"]
    for name in APP_SERVICES | {"postgres", "asterisk", "proxy"}:
        assert "backend" in services[name]["networks"], name
    # The database is reachable from the backend network only.
    assert set(services["postgres"]["networks"]) == {"backend"}
    assert set(services["migrate"]["networks"]) == {"backend"}


def test_migrate_runs_before_the_app_and_workers(resolved):
    services = resolved["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in APP_SERVICES - {"migrate"}:
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends["postgres"] == {"condition": "service_healthy"}, name
    assert services["proxy"]["depends_on"] == {"callcenter": {"condition": "service_healthy"}}


def test_health_checks(resolved):
    services = resolved["services"]
    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert "healthz.py" in " ".join(services["callcenter"]["healthcheck"]["test"])
    asterisk = services["asterisk"]["healthcheck"]["test"]
    assert asterisk[1] == "asterisk" and asterisk[-2:] == ["-rx", "core show uptime"]


@pytest.mark.parametrize(("status", "code"), [(200, 0), (503, 1)])
def test_web_health_check_script_follows_healthz(status, code):
    """docker/app/healthz.py (the callcenter container's check) against a /healthz answering
    ``status`` on a loopback port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with http.server.HTTPServer(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            done = subprocess.run(
                [sys.executable, str(REPO / "docker" / "app" / "healthz.py")],
                env={
                    "CALLCENTER_WEB_HOST": "127.0.0.1",
                    "CALLCENTER_WEB_PORT": str(server.server_port),
                },
                capture_output=True,
                timeout=30,
            )
        finally:
            server.shutdown()
    assert done.returncode == code, done.stderr


def backend_addresses(resolved) -> tuple[ipaddress.IPv4Network, str, str]:
    subnet = ipaddress.ip_network(resolved["networks"]["backend"]["ipam"]["config"][0]["subnet"])
    services = resolved["services"]
    pbx = services["asterisk"]["networks"]["backend"]["ipv4_address"]
    app = services["callcenter"]["networks"]["backend"]["ipv4_address"]
    assert ipaddress.ip_address(pbx) in subnet and ipaddress.ip_address(app) in subnet
    return subnet, pbx, app


def test_the_wiring_between_app_asterisk_and_proxy_agrees(resolved):
    subnet, pbx, app = backend_addresses(resolved)
    services = resolved["services"]
    pbx_env, app_env = services["asterisk"]["environment"], services["callcenter"]["environment"]
    assert pbx_env["PBX_BIND_ADDRESS"] == pbx
    assert ipaddress.ip_network(pbx_env["PBX_AMI_PERMIT"]) == subnet
    assert pbx_env["PBX_AGI_HOST"] == app_env["CALLCENTER_AGI_HOST"] == app
    assert pbx_env["CALLCENTER_AGI_PORT"] == app_env["CALLCENTER_AGI_PORT"]
    assert app_env["CALLCENTER_AMI_HOST"] == pbx
    assert app_env["CALLCENTER_ARI_URL"] == f"http://{pbx}:8088"
    assert app_env["CALLCENTER_WEB_HOST"] == app
    assert services["proxy"]["environment"]["UPSTREAM"] == f"{app}:{app_env['CALLCENTER_WEB_PORT']}"
    # serve must not read Telegram or the mailboxes a second time beside the workers.
    assert app_env["CALLCENTER_TELEGRAM_TOKEN"] == "" and app_env["CALLCENTER_IMAP_USER"] == ""


def load_render_module():
    spec = importlib.util.spec_from_file_location(
        "docker_render", REPO / "docker" / "asterisk" / "render.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def container_env(resolved) -> dict[str, str]:
    return {k: str(v) for k, v in resolved["services"]["asterisk"]["environment"].items()}


def test_render_script_refuses_a_missing_secret(tmp_path, resolved):
    env = container_env(resolved) | {"CALLCENTER_AMI_PASSWORD": "", "PATH": os.environ["PATH"]}
    done = subprocess.run(
        [sys.executable, str(REPO / "docker" / "asterisk" / "render.py"), str(tmp_path)],
        env=env | {"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "CALLCENTER_AMI_PASSWORD is not set" in done.stderr
    assert not (tmp_path / "etc").exists()


ASTERISK_IN_NETNS = """
set -u
ip link set lo up
ip addr add {pbx}/{prefix} dev lo
{chroot}{asterisk} -f -n -U asterisk -G asterisk -C {conf} >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid' EXIT
rx() {{ timeout 10 {chroot}{asterisk} -C {conf} -rx "$1" 2>/dev/null; }}
for i in $(seq 1 60); do rx 'core waitfullybooted' >/dev/null && break; sleep 0.5; done
rx 'core show uptime' >/dev/null; echo "health=$?"
rx 'pjsip show transport transport-udp' | grep -E '^ (bind|external_media_address) '
echo '--- tcp listen'; awk 'NR>1 && $4=="0A" {{print $2}}' /proc/net/tcp
echo '--- udp'; awk 'NR>1 {{print $2}}' /proc/net/udp
rx 'core stop now' >/dev/null
"""


def proc_address(entry: str) -> tuple[str, int]:
    address, port = entry.split(":")
    return str(ipaddress.IPv4Address(bytes.fromhex(address)[::-1])), int(port, 16)


@pytest.mark.asterisk
def test_asterisk_in_the_container_listens_where_the_compose_file_says(tmp_path, resolved):
    """The container's configuration, rendered from the compose environment and a filled env
    file, in a network namespace with the backend address: AMI and ARI on that address only,
    SIP on every address of the container, and the health check answers."""
    subnet, pbx, _ = backend_addresses(resolved)
    env = container_env(resolved) | filled_env()
    settings = load_render_module().settings_from_env(env)
    root = find_root()
    inner = f"/opt/cc/deploy-{os.getpid()}-{os.urandom(3).hex()}"
    run_dir = root / inner.lstrip("/")
    try:
        for sub in ("etc", "lib/keys", "spool", "run", "log", "cache"):
            (run_dir / sub).mkdir(parents=True, exist_ok=True)
        render(settings, run_dir / "etc", inner)
        chroot = "" if root == Path("/") else f"chroot {root} "
        subprocess.run([*chroot.split(), "chown", "-R", "asterisk:asterisk", inner], check=True)
        script = ASTERISK_IN_NETNS.format(
            pbx=pbx,
            prefix=subnet.prefixlen,
            chroot=chroot,
            asterisk=ASTERISK,
            conf=f"{inner}/etc/asterisk.conf",
        )
        done = subprocess.run(
            ["timeout", "120", "unshare", "--net", "bash", "-c", script],
            capture_output=True,
            text=True,
        )
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    out = done.stdout
    assert "health=0" in out, out + done.stderr
    assert re.search(r"^ bind\s+: 0\.0\.0\.0:5060$", out, re.M), out
    assert re.search(r"^ external_media_address\s+: 203\.0\.113\.7$", out, re.M), out
    tcp_part, udp_part = out.split("--- tcp listen\n")[1].split("--- udp\n")
    tcp = {proc_address(line) for line in tcp_part.split()}
    udp = {proc_address(line) for line in udp_part.split()}
    assert tcp == {(pbx, 5038), (pbx, 8088)}, tcp
    assert ("0.0.0.0", 5060) in udp


def caddy_proxies(env: dict[str, str]) -> dict[str, dict]:
    """docker/Caddyfile adapted to Caddy's JSON by the real Caddy (which validates it): each
    reverse proxy keyed by its route's matcher ("[]" for the catch-all)."""
    caddy = shutil.which("caddy")
    assert caddy, "caddy is missing: apt-get install -y caddy (scripts/setup --test)"
    done = subprocess.run(
        [caddy, "adapt", "--config", str(REPO / "docker" / "Caddyfile"), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
    )
    assert done.returncode == 0, done.stderr
    [server] = json.loads(done.stdout)["apps"]["http"]["servers"].values()
    return {
        json.dumps(route.get("match", [])): route["handle"][0]["routes"][0]["handle"][0]
        for route in server["routes"][0]["handle"][0]["routes"]
        if route["handle"][0]["handler"] == "subroute"
    }


def test_a_second_web_process_shares_the_database_and_leaves_telephony_alone(resolved):
    services = resolved["services"]
    main, web = services["callcenter"]["environment"], services["web"]["environment"]
    assert services["web"]["command"] == ["serve"] and services["web"]["profiles"] == ["scale"]
    for same in ("POSTGRES_HOST", "POSTGRES_DB", "CALLCENTER_SESSION_KEY", "CALLCENTER_PUBLIC_URL"):
        assert web[same] == main[same], same
    # Only the main process talks to Asterisk and reads the channels.
    for off in ("CALLCENTER_AMI_PASSWORD", "CALLCENTER_ARI_PASSWORD"):
        assert web[off] == "" and main[off] != "", off
    assert web["CALLCENTER_TELEGRAM_TOKEN"] == web["CALLCENTER_IMAP_USER"] == ""
    address = services["web"]["networks"]["backend"]["ipv4_address"]
    assert address != services["callcenter"]["networks"]["backend"]["ipv4_address"]
    assert web["CALLCENTER_WEB_HOST"] == address
    assert "healthz.py" in " ".join(services["web"]["healthcheck"]["test"])
    # The apps believe X-Forwarded-For from the proxy's address, and from nobody else.
    proxy = services["proxy"]["networks"]["backend"]["ipv4_address"]
    assert main["CALLCENTER_TRUSTED_PROXIES"] == web["CALLCENTER_TRUSTED_PROXIES"] == proxy
    example = (REPO / "docker" / "proxy.env.example").read_text(encoding="utf-8")
    assert re.search(r"^REPLICAS=$", example, re.M) and f"{address}:8080" in example


def test_the_proxy_shares_pages_and_streams_but_sends_telephony_to_the_main_process(resolved):
    services = resolved["services"]
    upstream = services["proxy"]["environment"]["UPSTREAM"]
    replica = services["web"]["networks"]["backend"]["ipv4_address"] + ":8080"
    env = {"SITE_ADDRESS": "support.example.com", "ACME_EMAIL": "a@example.com"}
    proxies = caddy_proxies({**env, "UPSTREAM": upstream, "REPLICAS": replica})
    shared = proxies["[]"]
    assert [u["dial"] for u in shared["upstreams"]] == [upstream, replica]
    assert shared["flush_interval"] == -1  # event streams are not buffered
    assert shared["health_checks"]["active"]["uri"] == "/healthz"
    telephony = [p for key, p in proxies.items() if key != "[]"]
    assert telephony and all([u["dial"] for u in p["upstreams"]] == [upstream] for p in telephony)
    matched = " ".join(proxies)
    for path in ("/agent", "/supervisor/*", "/metrics", "/customers/[0-9]+/call"):
        assert path in matched, path
    # Without replicas everything goes to the main process.
    alone = caddy_proxies({**env, "UPSTREAM": upstream, "REPLICAS": ""})
    assert {u["dial"] for p in alone.values() for u in p["upstreams"]} == {upstream}


def _mounts(service: dict) -> dict[str, tuple[str, bool]]:
    """Container path -> (volume, read only) of a service's volumes, short or long syntax."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            mounts[target] = (source, mode == ["ro"])
        else:
            mounts[volume["target"]] = (volume["source"], bool(volume.get("read_only")))
    return mounts


def test_serve_reads_the_queue_log_asterisk_writes(resolved):
    services = resolved["services"]
    queue_log = Path(services["callcenter"]["environment"]["CALLCENTER_QUEUE_LOG_PATH"])
    pbx_mounts, app_mounts = _mounts(services["asterisk"]), _mounts(services["callcenter"])
    # Asterisk's astlogdir is RUN_DIR/log (asterisk-config/asterisk.conf, docker entrypoint).
    entrypoint = (REPO / "docker" / "asterisk" / "entrypoint.sh").read_text(encoding="utf-8")
    run_dir = re.search(r'RUN_DIR="\$\{PBX_RUN_DIR:-([^}]+)\}"', entrypoint)
    assert run_dir, "entrypoint.sh no longer sets RUN_DIR"
    log_dir = f"{run_dir.group(1)}/log"
    assert queue_log.name == "queue_log"
    assert pbx_mounts[log_dir][0] == app_mounts[str(queue_log.parent)][0]
    assert app_mounts[str(queue_log.parent)][1], "the app must mount Asterisk's logs read-only"
    assert app_mounts["/var/lib/callcenter"][0] == "appdata"
    assert "queue_log = yes" in (REPO / "asterisk-config" / "logger.conf").read_text("utf-8")


def test_queues_made_on_the_screen_reach_asterisk_through_a_shared_volume(tmp_path, resolved):
    """serve writes queues_managed.conf into a volume Asterisk mounts at the same path, and
    Asterisk's etc/ links to it; rendering the configuration keeps the link and the queues."""
    services = resolved["services"]
    path = Path(services["callcenter"]["environment"]["CALLCENTER_QUEUES_CONFIG_PATH"])
    assert path.name == "queues_managed.conf"
    pbx_mounts, app_mounts = _mounts(services["asterisk"]), _mounts(services["callcenter"])
    volume, read_only = app_mounts[str(path.parent)]
    assert not read_only, "the app writes the file"
    assert pbx_mounts[str(path.parent)][0] == volume and volume in resolved["volumes"]
    # Only the process that holds AMI writes it (the proxy sends /admin/queues there).
    for name in APP_SERVICES - {"callcenter"}:
        environment = services.get(name, {}).get("environment", {})
        assert "CALLCENTER_QUEUES_CONFIG_PATH" not in environment, name

    entrypoint = (REPO / "docker" / "asterisk" / "entrypoint.sh").read_text(encoding="utf-8")
    run_dir = re.search(r'RUN_DIR="\$\{PBX_RUN_DIR:-([^}]+)\}"', entrypoint)
    assert run_dir and str(path.parent) == f"{run_dir.group(1)}/queues"
    link = 'ln -sfn "$RUN_DIR/queues/queues_managed.conf" "$RUN_DIR/etc/queues_managed.conf"'
    assert link in entrypoint and entrypoint.index(link) < entrypoint.index("render.py")

    shared = tmp_path / "queues" / "queues_managed.conf"
    shared.parent.mkdir()
    shared.write_text("[billing](queue-common)\nstrategy = linear\n", encoding="utf-8")
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "queues_managed.conf").symlink_to(shared)
    settings = load_render_module().settings_from_env(container_env(resolved) | filled_env())
    render(settings, etc, str(tmp_path))
    assert (etc / "queues_managed.conf").is_symlink()
    assert shared.read_text(encoding="utf-8").startswith("[billing](queue-common)")
    assert "#include queues_managed.conf" in (etc / "queues.conf").read_text(encoding="utf-8")
