"""One module per subcommand of the command line: its arguments and what it runs."""
