"""The screen-pop: who is calling, and everything they told us before, on the agent's screen."""
