"""The app's pages (loaded by Dash pages from this folder; never imported directly)."""
