"""Pure functions behind the Dash app's callbacks: no I/O, no Dash state, unit-tested."""
