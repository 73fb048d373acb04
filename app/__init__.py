"""RealUnify leaderboard service."""
