"""Mix-and-match: detectors combining modules of several papers (each module from its own project)."""
