"""Everything the tool says to MariaDB, in one place: quoting and identifiers, accounts and
grants (installer/database/sql.py), and one database to a compressed file and back
(installer/database/dump.py). The stack, octopus and the backup agent all use it, and every
statement and pipeline goes through the runner."""
