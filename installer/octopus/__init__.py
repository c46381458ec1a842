"""Octopus: isolated hosting instances (o1, o2, ...), their platforms and their sites.

An instance is data (its /root/.oN.octopus.cnf and the records of its platforms and sites
under /data/disk/oN/config) from which components are built and converged by the same
engine as `barracuda install`."""
