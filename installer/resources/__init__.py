"""Resources: one piece of desired state each (a file, a directory, an account, a package,
a database...), compared with the facts and changed only where they differ."""
