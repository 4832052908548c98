"""Test support that scripts use too: throw-away Redis servers and clusters."""
