"""Cron-driven agents: the self-healing monitor and the backup agent."""
