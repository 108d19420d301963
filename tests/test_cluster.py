"""A real multi-node Ray cluster on this machine (head + worker, separate `ray start` processes,
all on 127.0.0.1): a smoke sweep joins it with --address and its trials land on both nodes.
The commands are the ones docs/cluster.md gives, bar addresses."""
import os
import socket
import subprocess

import pandas as pd
import pytest

from tests.conftest import SPACE

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_cli(*args, env):
    out = subprocess.run(["ray", *args], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out


@pytest.fixture
def cluster(tmp_path):
    env = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")  # tests may only use loopback
    address = f"127.0.0.1:{free_port()}"
    try:
        ray_cli("start", "--head", "--node-ip-address=127.0.0.1", f"--port={address.split(':')[1]}",
                "--num-cpus=1", "--dashboard-host=127.0.0.1", "--disable-usage-stats", env=env)
        ray_cli("start", f"--address={address}", "--node-ip-address=127.0.0.1", "--num-cpus=1",
                "--disable-usage-stats", env=env)
        yield address, env
    finally:
        subprocess.run(["ray", "stop", "--force"], capture_output=True, timeout=120, env=env)


def test_a_sweep_on_a_two_node_cluster_uses_both_nodes(cluster, smoke_cache, smoke_sweep, tmp_path):
    address, env = cluster
    out = subprocess.run(["quads-search", "run", str(SPACE), "--smoke", "--address", address,
                          "--results-dir", str(tmp_path / "shared-results"), "--num-samples", "2",
                          "--max-concurrent", "2", "--set", f"cache_dir={smoke_cache}"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    trials = pd.read_parquet(tmp_path / "shared-results" / "mixed_precision" / "trials.parquet")
    assert len(trials) == 2 and (trials["status"] == "finished").all()
    assert trials["node_id"].nunique() == 2
