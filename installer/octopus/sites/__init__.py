"""The site workflows, one module each: add, set, remove, restore (and, as they land,
install, verify, clone, migrate, disable, delete). Each returns a Builder: the components
of one converge run, with every check of the operator's input made before the plan. The
backup agent and the CLI call these; they never call the agent."""
