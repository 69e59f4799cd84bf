"""The hand-off's answer is read whole: ltxfs promote on a replica asks the
primary for the lease token and its last position of every database
(POST /handoff), one row per database.  The client used to keep only the
first 64 KiB of that answer and drop the rest silently, so with a few
hundred databases the JSON was cut, the promote failed with "hand-off
answer without a token", and the cluster was left without a primary until
the lease expired."""

import pytest

import cluster as C
from test_failover import lease_server, promote, setup_cluster, wait_primary

# Each database is a row of about 280 bytes in the answer: 300 of them make
# it about 84 KiB, past the old 64 KiB cut.
N_DATABASES = 300


@pytest.mark.deadline(180)
def test_promote_reads_a_handoff_answer_longer_than_64k(node_factory, tmp_path):
    with lease_server("consul", str(tmp_path)) as coord:
        key, nodes, p, others = setup_cluster(node_factory, coord)
        names = ["%s%04d.db" % ("n" * 230, i) for i in range(N_DATABASES)]
        for name in names:
            open(p.path(name), "wb").close()
        # empty: no transaction, nothing for the target to wait for; each
        # is still a row of the primary's answer
        assert len(C.status(p)["databases"]) == N_DATABASES + 1
        target = others[0]
        cp = promote(target)
        assert cp.returncode == 0, cp.stderr + target.log_tail()
        assert "without a token" not in target.log_text()
        assert wait_primary(nodes) is target
