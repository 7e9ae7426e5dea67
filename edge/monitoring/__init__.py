"""Monitoring: every prediction logged (Vertex AI's request-response logging to BigQuery, on both targets), a
reference distribution of the monitored features stored with every model version, and `invoke monitor`, which
compares a time window of logged requests with the reference of the version that answered them.

    request_logging.py  the endpoint's request-response logging config (set by deploy, read by monitor)
    features.py         per-instance features: the model's `features` hook (models/<name>/hooks.py), plus valid_input
    distances.py        histograms and Vertex's distances: L-infinity (categorical), Jensen-Shannon (numeric)
    reference.py        the reference of a version, stored beside its artifact (`<artifactUri>/../monitoring/`)
    window.py           the logged requests of a time window, read with google-cloud-bigquery
    monitor.py          the comparison, its JSON result and where it is kept
    report.py           the HTML page (edge/reports.py)

Nothing here knows images or classes: what is monitored comes from the model's folder.
"""
