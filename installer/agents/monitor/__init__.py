"""The self-healing monitor: `barracuda monitor run` (cron, every minute) loops for just
under a minute, one check cycle every _MONITOR_INTERVAL seconds.

- specs.py    what to watch: the stack's Service resources + profiles/monitor.yml probes
- probes.py   processes (psutil), sockets, HTTP; fastcgi.py and pools.py ping FPM pools
- budget.py   the restart budget (backoff with jitter, N restarts per window, FAILED)
- system.py   load per CPU, memory, disk, the crawler shield flag, shedding
- incidents.py  incidents.log (JSON lines) and rate-limited mail
- state.py    /var/lib/barracuda/monitor.json, written atomically under a lock
- cycle.py    one check cycle: probes, then actions
- run.py      the run: locks, standing aside for the installer, the loop, the log
"""
