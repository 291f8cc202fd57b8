"""Pages, scripts and styles of the console (plain files, no build step)."""
