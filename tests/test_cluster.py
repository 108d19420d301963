"""A real multi-node Ray cluster on this machine (head + worker node, separate Ray processes, all on
127.0.0.1): a smoke sweep joins it with --address and its trials land on both nodes. The quads-search
command is the one docs/cluster.md gives, bar addresses."""
import os
import subprocess

import pandas as pd
import pytest

from tests.conftest import SPACE

pytestmark = pytest.mark.slow


@pytest.fixture
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


def test_a_sweep_on_a_two_node_cluster_uses_both_nodes(smoke_cache, smoke_sweep, cluster, tmp_path):
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
