"""The funnel report: charts of the funnel and campaign lift marts as PNGs and one HTML page.

`onramp report` and the Dagster asset `funnel_report` both call `report.build.render_report`.
Imports only the core (onramp.*); the charts are drawn with matplotlib's Agg renderer, so no
browser or display is needed.
"""
