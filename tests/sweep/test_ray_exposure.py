"""What a sweep exposes: a local Ray listens on loopback only, a wider dashboard is warned about, and the
Ray token is neither printed nor written into the results."""
import json
import os
import subprocess
import sys

import pytest

from quads_search.sweep.driver import dashboard_warning

LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
# Samples the listening sockets of the process that started Ray and of all its children, again and again:
# Ray's agents and its dashboard start listening after ray.init returns. It goes on until every port Ray
# says it uses (GCS, raylet, agents, dashboard) has been seen listening, then for a few samples more. A
# process that ends between listing and reading is skipped; any other error is retried, and fails the
# probe if it persists.
PROBE = """
import json, logging, sys, time, psutil, ray
from quads_search.sweep.driver import start_ray
messages = []
keep = logging.Handler()
keep.emit = lambda record: messages.append(record.getMessage())
logging.getLogger("quads_search").addHandler(keep)
logging.getLogger("quads_search").setLevel(logging.INFO)
start_ray(None)
node = ray._private.worker._global_node
gcs = ray.get_runtime_context().gcs_address
dashboard = messages[0].split("http://", 1)[1].split()[0]
expected = {int(gcs.rsplit(":", 1)[1]), int(dashboard.rsplit(":", 1)[1]), node.node_manager_port,
            node.metrics_agent_port, node.runtime_env_agent_port, node.dashboard_agent_listen_port}
expected = {port for port in expected if port > 0}  # -1: Ray did not assign that port (the agent has none)
me = psutil.Process()

def sample():
    listening = set()
    for proc in [me] + me.children(recursive=True):
        try:
            conns = proc.net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue
        listening |= {(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN}
    return listening

seen, samples, errors, after = set(), 0, [], 0
deadline = time.time() + float(sys.argv[1])
while time.time() < deadline and after < 6:
    try:
        seen |= sample()
    except psutil.Error as exc:
        errors.append(repr(exc))
        if len(errors) > 5:
            raise
        time.sleep(0.5)
        continue
    samples += 1
    if expected <= {port for _, port in seen}:
        after += 1
    time.sleep(0.5)
print(json.dumps({"listening": sorted(seen), "expected": sorted(expected), "samples": samples, "errors": errors,
                  "nodes": sorted({n["NodeManagerAddress"] for n in ray.nodes()}), "messages": messages,
                  "gcs": gcs}))
ray.shutdown()
"""


@pytest.mark.slow
def test_a_local_ray_listens_only_on_loopback():
    env = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    out = subprocess.run([sys.executable, "-c", PROBE, "60"], capture_output=True, text=True, timeout=240, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    ports = {port for _, port in report["listening"]}
    assert set(report["expected"]) <= ports, f"not every port Ray uses was seen listening within a minute: {report}"
    assert report["samples"] >= 6, report
    assert {ip for ip, _ in report["listening"]} <= LOOPBACK, report
    assert report["nodes"] == ["127.0.0.1"] and report["gcs"].startswith("127.0.0.1:")
    assert "Ray dashboard: http://127.0.0.1:" in report["messages"][0]
    assert "ray get-auth-token" in report["messages"][0]


def test_a_dashboard_bound_beyond_loopback_is_warned_about():
    assert dashboard_warning("127.0.0.1") is None
    assert "Jobs API" in dashboard_warning("0.0.0.0")


@pytest.mark.slow
def test_the_auth_token_is_neither_printed_nor_written_into_results(smoke_sweep, smoke_home):
    token_file = smoke_home / ".ray" / "auth_token"  # the sweep ran with this fresh HOME: its own token
    assert token_file.is_file(), "a local Ray with token authentication writes its token here"
    token = token_file.read_text().strip()
    assert len(token) >= 16
    printed = (smoke_sweep / "run-output.txt").read_text()
    assert "ray get-auth-token" in printed and token not in printed
    files = [path for path in smoke_sweep.rglob("*") if path.is_file()]
    assert len(files) > 20, "the sweep's results were searched"
    for path in files:
        assert token.encode() not in path.read_bytes(), path
