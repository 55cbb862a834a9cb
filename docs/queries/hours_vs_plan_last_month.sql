-- Hours booked versus planned per person, last month.
-- "Last month" is the calendar month before the status date of the last refresh (rpt_as_of). Booked hours
-- are the hours of record (one tool per person, project and day); planned hours come from the plans of
-- record. A person with hours planned but none booked (or the reverse) is listed too.
SELECT u.person_id,
       u.person_name,
       u.department,
       u.month,
       u.booked_hours,
       u.planned_hours,
       u.booked_hours - u.planned_hours AS difference_hours,
       u.capacity_hours,
       u.utilisation_pct
FROM rpt_utilisation u
JOIN rpt_as_of a ON u.month = a.previous_month
ORDER BY u.person_name, u.person_id;
