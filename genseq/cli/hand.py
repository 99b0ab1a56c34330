"""Commands; see genseq/cli/groups.py."""
