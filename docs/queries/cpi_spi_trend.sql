-- CPI and SPI trend per project: one point per status date (each refresh day), with the change since the
-- project's previous status date.
SELECT project_key,
       project_name,
       status_date,
       cpi,
       cpi_change,
       spi,
       spi_change,
       rag
FROM rpt_project_evm_trend
ORDER BY project_key, status_date;
