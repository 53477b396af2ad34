"""The reviewer report: numbers gathered from a run, rendered with Jinja templates into one HTML page."""
