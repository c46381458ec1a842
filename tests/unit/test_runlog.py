"""Run logs say what changed and why (secrets redacted); versions.log gets a line when a run
changed something or records something new, not for every no-op run."""

from __future__ import annotations

import logging
from pathlib import Path

from installer.apply import Result
from installer.resources.base import Change
from installer.runlog import Redactor, append_versions, log_result, log_to, start_run_log
from installer.target import Target


def test_each_change_and_its_reason_reach_the_run_log_redacted(tmp_path: Path) -> None:
    target = Target(tmp_path)
    redactor = Redactor()
    secret = "s3cr3t-password-value"
    redactor.add(secret)
    path = start_run_log(target, "test", redactor)
    logger = logging.getLogger("barracuda")
    log_result(logger, Result("web", "file:/etc/x.conf", "changed", [
        Change("file:/etc/x.conf", "update", f"content differs (password {secret})",
               diff=f"-old\n+{secret}\n"),
        Change("file:/etc/x.conf", "install", "missing: nginx", executed=False),
    ], "content differs"))
    log_result(logger, Result("web", "dir:/srv", "ok", [], "present, mode 0755"))
    log_result(logger, Result("db", "db:x", "failed", [], "mysql exited 1"))
    log_to(logging.NullHandler(), logging.WARNING)  # closes the run log
    text = path.read_text()
    assert "[web] file:/etc/x.conf: changed: update: content differs (password ********)" in text
    assert "[web] file:/etc/x.conf: planned only: install: missing: nginx" in text
    assert "DEBUG barracuda: [web] dir:/srv: ok (present, mode 0755)" in text
    assert "ERROR barracuda: [db] db:x: failed: mysql exited 1" in text
    assert secret not in text and "+s3cr3t" not in text  # diffs are never logged


def test_versions_log_has_a_line_per_change_not_per_no_op_run(tmp_path: Path) -> None:
    target = Target(tmp_path)
    log = tmp_path / "var/log/barracuda/versions.log"
    fields = {"barracuda": "1.0", "channel": "stable", "nginx": "1.22"}
    assert append_versions(target, fields, changed=False)  # the first line is always written
    assert not append_versions(target, fields, changed=False)
    assert append_versions(target, fields, changed=True)
    assert append_versions(target, {**fields, "channel": "head"}, changed=False)
    assert not append_versions(target, {**fields, "channel": "head"}, changed=False)
    assert append_versions(target, {**fields, "channel": "head", "nginx": "1.24"},
                           changed=False)
    lines = log.read_text().splitlines()
    assert len(lines) == 4
    assert lines[-1].endswith("barracuda=1.0 channel=head nginx=1.24")
