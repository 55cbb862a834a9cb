-- Which projects are red, and why?
-- From the views alone: rpt_portfolio_status holds each current project's latest status, its RAG by the
-- rules in rag_rule and rag_reason: every rule that fired, with its value, worst first.
SELECT project_key,
       project_name,
       owner,
       status_date,
       rag_reason,
       cpi,
       spi,
       spi_t,
       days_late,
       open_high_exceptions,
       stale_days,
       schedule_variance_pct,
       cost_variance_pct,
       finish_variance_days
FROM rpt_portfolio_status
WHERE rag = 'red'
ORDER BY project_key;
