-- graphrec click-log protocol, part 1: duplicate and time-order checks.
--
-- Input: a table or view `clicks` with one row per click of the log:
--   rid   BIGINT   the row's position in the file (0 = first row after the header)
--   grp   the session (session mode) or the user (sequential mode), as text
--   item  the item id (BIGINT when every id of the log is an integer, else text)
--   t     DOUBLE   the time, seconds since the epoch (0 everywhere: file order)
--   usr   the user (BIGINT or text), NULL when the log has none
-- Output: `kept`, the clicks the protocol goes on with, and `check_stats`.
-- Portable SQL (DuckDB and Spark SQL); the options are substituted first.

-- stage: duplicates
CREATE OR REPLACE TEMP VIEW marked AS
SELECT rid, grp, item, t, usr,
       ${check_duplicates} AND row_number() OVER (PARTITION BY grp, item, t ORDER BY rid) > 1
           AS dup
FROM clicks;

-- stage: time order
CREATE OR REPLACE TEMP VIEW kept AS
SELECT rid, grp, item, t, usr,
       -- a session (user) is known by its first row: they are numbered in order of appearance
       min(rid) OVER (PARTITION BY grp) AS s,
       ${check_order} AND t < lag(t) OVER (PARTITION BY grp ORDER BY rid) AS late,
       -- clicks in time order within their session (stable: ties keep file order)
       row_number() OVER (PARTITION BY grp ORDER BY t, rid) AS pos,
       first_value(usr) OVER (PARTITION BY grp ORDER BY t, rid) AS first_usr,
       max(t) OVER (PARTITION BY grp) AS sdate
FROM marked
WHERE NOT (dup AND ${drop_duplicates});

-- stage: check rows
CREATE OR REPLACE TEMP VIEW check_stats AS
SELECT d.rows_in, d.duplicate_rows, d.first_duplicate,
       k.rows_out_of_time_order, k.first_late, k.first_several_users
FROM (SELECT count(*) AS rows_in,
             sum(CASE WHEN dup THEN 1 ELSE 0 END) AS duplicate_rows,
             min(CASE WHEN dup THEN rid END) AS first_duplicate
      FROM marked) AS d
CROSS JOIN
     (SELECT sum(CASE WHEN late THEN 1 ELSE 0 END) AS rows_out_of_time_order,
             min(CASE WHEN late THEN rid END) AS first_late,
             min(CASE WHEN usr <> first_usr THEN rid END) AS first_several_users
      FROM kept) AS k;
