"""Making the targets match the lock: inventory, plan, placement, apply."""
