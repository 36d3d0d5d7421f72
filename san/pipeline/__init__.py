"""One module per Snakemake rule; each exposes a pure function the rule's script calls."""
