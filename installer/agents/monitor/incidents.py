"""Incidents: one JSON line each in /var/log/barracuda/incidents.log (time, check, evidence,
action, result), and a mail to _MY_EMAIL through the local sendmail when one exists,
following _INCIDENT_EMAIL_REPORT (NO: never; YES: problems and actions; VERBOSE: recoveries
too), at most one per check every mail_min_interval_s (a FAILED alert always goes)."""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from installer.incidents import record_incident
from installer.runner import Runner

log = logging.getLogger("barracuda.monitor")


def stamp(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))


@dataclass
class Incidents:
    path: Path
    runner: Runner
    email: str = ""
    report: str = "YES"  # _INCIDENT_EMAIL_REPORT
    sendmail: str = "/usr/sbin/sendmail"
    min_interval_s: float = 900

    def record(self, state: dict[str, Any], now: float, check: str, evidence: str,
               action: str, result: str, *, alert: bool = False,
               recovery: bool = False) -> dict[str, Any]:
        entry = record_incident(check, evidence, action, result, log=self.path,
                                when=datetime.fromtimestamp(now, UTC))
        log.warning("incident: %s: %s -> %s (%s)", check, evidence, action, result)
        state["last_incident"] = entry
        if self._should_mail(state, now, check, alert=alert, recovery=recovery):
            entry["mailed"] = self._mail(entry, alert)
            if entry["mailed"]:
                state.setdefault("mail", {})[check] = now
        return entry

    def _should_mail(self, state: dict[str, Any], now: float, check: str, *, alert: bool,
                     recovery: bool) -> bool:
        if self.report == "NO" or not self.email:
            return False
        if recovery and self.report != "VERBOSE":
            return False
        if not os.access(self.sendmail, os.X_OK):
            return False
        last = float(state.get("mail", {}).get(check, 0))
        return alert or now - last >= self.min_interval_s

    def _mail(self, entry: dict[str, Any], alert: bool) -> bool:
        host = socket.gethostname()
        what = "FAILED" if alert else "incident"
        body = "\n".join(f"{k}: {v}" for k, v in entry.items()) + "\n"
        message = (f"To: {self.email}\nSubject: [barracuda {host}] {what}: {entry['check']}\n"
                   f"Auto-Submitted: auto-generated\n\n{body}")
        result = self.runner.run([self.sendmail, "-t", "-oi"], input=message, check=False,
                                 timeout=30)
        if not result.ok:
            log.error("sendmail failed (%s): %s", result.rc, result.output[-300:])
        return result.ok
