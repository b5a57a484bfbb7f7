"""Aging, KPIs, PDF reports and the dashboard."""
