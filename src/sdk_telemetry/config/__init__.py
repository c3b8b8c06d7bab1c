"""Configuration: every setting resolved in one place (arguments, then the environment, then
defaults), the session settings, and the one owner of process-wide state (the active settings)."""
