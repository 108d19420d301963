"""A real multi-node Ray cluster on this machine (head + worker node, separate Ray processes, all on
127.0.0.1): a smoke sweep joins it with --address and its trials land on both nodes, and a local sweep
started beside it starts a Ray of its own instead of joining it.

The first test runs docs/cluster.md's code blocks themselves (`ray start` for both nodes, the sweep,
`ray stop`) inside a network namespace with nothing but loopback, and starts a local Ray beside that
cluster before stopping it. Where no such namespace can be made, the other two tests do the same on
nodes started with Ray's Cluster helper (once per module), which stays on loopback without one."""
import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import SPACE

REPO = Path(__file__).parents[2]
# A fresh network namespace (only loopback, down until raised), PID namespace (everything started
# inside dies with it) and user namespace (no privileges needed where the kernel allows it).
NAMESPACE = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc", "--map-root-user"]

pytestmark = pytest.mark.slow
# A local sweep's start_ray beside a running cluster: `ray start` (and the Cluster helper) record their head as
# this machine's latest Ray, which a bare ray.init() would join; the other cluster's shutdown would then kill
# the sweep's trials. It prints the GCS address of the Ray it got.
LOCAL_MARK = "local sweep's Ray: "
LOCAL_PROBE = f"""
import ray
from quads_search.sweep.driver import start_ray
start_ray(None)
print({LOCAL_MARK!r} + ray.get_runtime_context().gcs_address, flush=True)
ray.shutdown()
"""


def docs_commands() -> list[str]:
    """The shell commands of docs/cluster.md's bash blocks, in order, continuation lines joined."""
    text = (REPO / "docs" / "cluster.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


@functools.cache
def loopback_namespace_problem() -> str | None:
    """Why this machine cannot run a loopback-only namespace, or None."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare (util-linux) and ip (iproute2)"
    probe = subprocess.run([*NAMESPACE, "ip", "link", "set", "lo", "up"], capture_output=True, text=True)
    return (probe.stderr.strip() or f"exit status {probe.returncode}") if probe.returncode else None


def test_the_documented_commands_run_a_two_node_sweep(smoke_cache, prepared, tmp_path):
    problem = loopback_namespace_problem()
    if problem:
        pytest.skip(f"no loopback-only network namespace here: {problem}")
    commands = docs_commands()
    verbs = [c.split()[:2] for c in commands if c.split()[:2] in (["ray", "start"], ["quads-search", "run"], ["ray", "stop"])]
    assert verbs == [["ray", "start"], ["ray", "start"], ["quads-search", "run"], ["ray", "stop"]]  # head, worker
    shared = tmp_path / "shared"
    script = ["set -e", "ip link set lo up"]
    for command in commands:
        command = re.sub(r"/shared\b", shlex.quote(str(shared)), command.replace("HEAD_IP", "127.0.0.1"))
        if command.startswith("ray start"):  # one CPU a node, so the two 1-CPU smoke trials need both nodes
            command = command.replace("ray start", "ray start --num-cpus=1", 1)
        elif command.startswith("quads-search run"):  # appended: a later --set wins
            command += (" --smoke --num-samples 2 --max-concurrent 2 --set search.cpus_per_trial=1"
                        f" --set search.gpus_per_trial=0 --set cache_dir={shlex.quote(str(smoke_cache))}")
        elif command.startswith("ray stop"):  # before it: a local sweep's Ray, started beside the running cluster
            probe = tmp_path / "local_probe.py"
            probe.write_text(LOCAL_PROBE)
            script.append(f"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 {shlex.quote(sys.executable)} {shlex.quote(str(probe))}")
        script.append(command)
    # Ray's Linux default for the cluster variable; a fresh HOME, so the token the docs generate
    # (~/.ray/auth_token) is the test's own and no token from the environment takes precedence.
    drop = ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["HOME"] = str(tmp_path / "home")
    with tempfile.TemporaryDirectory(prefix="ray", dir="/tmp") as ray_tmp:  # short: Unix socket paths
        env["RAY_TMPDIR"] = ray_tmp
        out = subprocess.run([*NAMESPACE, "bash", "-c", "\n".join(script)], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    trials = pd.read_parquet(shared / "results" / "mixed_precision" / "trials.parquet")
    assert len(trials) == 2 and (trials["status"] == "finished").all()
    assert trials["node_id"].nunique() == 2
    (own,) = [line.removeprefix(LOCAL_MARK) for line in out.stdout.splitlines() if line.startswith(LOCAL_MARK)]
    assert own.startswith("127.0.0.1:") and own != "127.0.0.1:6379"  # not the documented head's


NAMESPACE_RAN = "the documented commands' test ran this in a loopback-only network namespace"


@pytest.fixture(scope="module")
def cluster():
    """Head + one worker node, each its own GCS/raylet processes, all on 127.0.0.1.

    `ray start --address` refuses to join while RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, which
    tests need to stay on loopback, so the nodes are started through Ray's own Cluster helper.
    """
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1",
                                                            "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
        yield cluster.address
    finally:
        cluster.shutdown()


@pytest.mark.skipif(loopback_namespace_problem() is None, reason=NAMESPACE_RAN)
def test_a_sweep_on_a_two_node_cluster_uses_both_nodes(smoke_cache, prepared, cluster, tmp_path):
    address = cluster
    env = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    out = subprocess.run(["quads-search", "run", str(SPACE), "--smoke", "--address", address,
                          "--results-dir", str(tmp_path / "shared-results"), "--num-samples", "2",
                          "--max-concurrent", "2", "--set", f"cache_dir={smoke_cache}"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    trials = pd.read_parquet(tmp_path / "shared-results" / "mixed_precision" / "trials.parquet")
    assert len(trials) == 2 and (trials["status"] == "finished").all()
    assert trials["node_id"].nunique() == 2


@pytest.mark.skipif(loopback_namespace_problem() is None, reason=NAMESPACE_RAN)
def test_a_local_sweep_starts_its_own_ray_beside_a_running_cluster(cluster):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    out = subprocess.run([sys.executable, "-c", LOCAL_PROBE], capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    (own,) = [line.removeprefix(LOCAL_MARK) for line in out.stdout.splitlines() if line.startswith(LOCAL_MARK)]
    assert own.startswith("127.0.0.1:") and own != cluster
