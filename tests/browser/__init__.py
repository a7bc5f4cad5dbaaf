"""The web console in a real headless Chromium: the page, its CRIS Reporting simulator, origins."""
