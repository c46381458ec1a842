"""The command lines, `barracuda` and `octopus`: thin Typer apps that turn arguments into a
workflow call and its outcome into output and an exit code."""
