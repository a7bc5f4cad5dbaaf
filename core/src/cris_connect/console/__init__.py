"""The web console: what the bridge is doing, on a page, and a CRIS Reporting simulator to drive it.

Off by default (`[console] enabled = true`); docs/console.md describes it. `activity` keeps the
last commands and the counters (always, it is cheap); `server` serves the page, its JSON status,
the send panel and `/metrics` on the console's own port; `status` builds the snapshot the page
shows; `static/` holds the page itself - plain HTML, CSS and JavaScript, nothing fetched from
elsewhere, so it works on an air-gapped ward PC.
"""
