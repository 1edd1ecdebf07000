"""`logs receive` fed by a real shipper daemon: syslog-ng's `elasticsearch-http()` and `http()`
destinations, configured as the README shows, read a file and post to a real receiver. Skipped
where syslog-ng (with its http module and SCL) is not installed: `apt-get install syslog-ng-core
syslog-ng-mod-http syslog-ng-scl`."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import RedisProc
from tests.receiver import TOKEN, Receiver, attrs, rows

SCL = Path("/usr/share/syslog-ng/include/scl/elasticsearch/elastic-http.conf")

pytestmark = pytest.mark.skipif(
    shutil.which("syslog-ng") is None or not SCL.exists(),
    reason="syslog-ng with syslog-ng-mod-http and syslog-ng-scl is not installed",
)


def test_syslog_ng_elasticsearch_http_and_http_destinations(
    receiver: Receiver, redis_proc: RedisProc, tmp_path: Path
) -> None:
    source = tmp_path / "app.log"
    source.write_text("".join(f"syslog-ng says {i}\n" for i in range(20)))
    conf = tmp_path / "syslog-ng.conf"
    conf.write_text(
        f"""@version: 3.38
@include "scl.conf"
source s_file {{ file("{source}" follow-freq(0.1) flags(no-parse)); }};
destination d_bulk {{
  elasticsearch-http(url("{receiver.url("elastic", "/_bulk")}") index("logs") type("")
                     user("syslog-ng") password("{TOKEN}") batch-lines(500) batch-timeout(100));
}};
destination d_ndjson {{
  http(url("{receiver.url("loki", "/ingest")}") method("POST")
       headers("Authorization: Bearer {TOKEN}")
       body("$(format-json --scope rfc5424 --exclude DATE ts=${{ISODATE}})")
       batch-lines(500) batch-timeout(100) delimiter("\\n"));
}};
log {{ source(s_file); destination(d_bulk); destination(d_ndjson); }};
"""
    )
    daemon = subprocess.Popen(
        [
            "syslog-ng",
            "-F",
            "-f",
            str(conf),
            f"--persist-file={tmp_path / 'persist'}",
            f"--pidfile={tmp_path / 'pid'}",
            f"--control={tmp_path / 'ctl'}",
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while len(rows(redis_proc.client(), receiver.stream)) < 40:
            assert daemon.poll() is None, daemon.communicate()[1]
            assert time.monotonic() < deadline, "syslog-ng did not deliver 40 records"
            time.sleep(0.1)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
    got = rows(redis_proc.client(), receiver.stream)
    bulk = sorted(r.message for r in got if attrs(r).get("_index") == "logs")
    ndjson = sorted(r.message for r in got if "_index" not in attrs(r))
    expected = sorted(f"syslog-ng says {i}" for i in range(20))
    assert bulk == expected and ndjson == expected  # each exactly once, per destination
    assert all(r.level == "INFO" and r.host != "unknown" for r in got)  # PRIORITY notice, HOST
    assert all("_ts_source" not in attrs(r) for r in got)  # @timestamp / ts from ISODATE
