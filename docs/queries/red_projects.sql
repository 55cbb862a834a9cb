-- Which projects are red, and why?
-- From the views alone: rpt_portfolio_status holds each current project's latest status with the RAG of
-- every measure (thresholds in rag_rule) and rag_reason, the measures that made it red, worst first.
SELECT project_key,
       project_name,
       owner,
       status_date,
       rag_reason,
       cpi,
       cpi_rag,
       spi,
       spi_rag,
       open_high_exceptions,
       exceptions_rag,
       schedule_variance_pct,
       cost_variance_pct,
       finish_variance_days
FROM rpt_portfolio_status
WHERE rag = 'red'
ORDER BY project_key;
