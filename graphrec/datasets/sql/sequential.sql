-- graphrec sequential protocol (leave-one-out), the steps after the checks.
--
-- Input: `kept` (see checks.sql): grp is the user, pos the place in the user's sequence.
-- Output: `sequence_out` (uid, pos, iid): every user's items in time order, with the new
-- user and item ids; `item_ids` (item, id), `user_ids` (usr, id); `sequential_stats`.
-- Portable SQL (DuckDB and Spark SQL); the options are substituted first.

-- stage: item support
CREATE OR REPLACE TEMP VIEW supported AS
SELECT usr, item, pos, count(*) OVER (PARTITION BY item) AS support
FROM kept;

CREATE OR REPLACE TEMP VIEW seq AS
SELECT usr, item, pos FROM supported WHERE support >= ${min_item_support};

-- stage: ids
CREATE OR REPLACE TEMP VIEW item_ids AS
SELECT item, row_number() OVER (ORDER BY item) AS id FROM (SELECT DISTINCT item FROM seq) AS q;

CREATE OR REPLACE TEMP VIEW user_ids AS
SELECT usr, row_number() OVER (ORDER BY usr) AS id FROM (SELECT DISTINCT usr FROM seq) AS q;

CREATE OR REPLACE TEMP VIEW sequence_out AS
SELECT u.id AS uid, q.pos, i.id AS iid
FROM seq AS q JOIN user_ids AS u ON q.usr = u.usr JOIN item_ids AS i ON q.item = i.item;

-- stage: counts
CREATE OR REPLACE TEMP VIEW sequential_stats AS
SELECT (SELECT sum(CASE WHEN support < ${min_item_support} THEN 1 ELSE 0 END) FROM supported)
           AS dropped_rows_rare_items,
       (SELECT count(DISTINCT CASE WHEN support < ${min_item_support} THEN item END)
        FROM supported) AS dropped_items_rare,
       (SELECT count(*) FROM seq) AS interactions,
       (SELECT count(*) FROM item_ids) AS items,
       (SELECT count(*) FROM user_ids) AS users,
       (SELECT count(*) FROM (SELECT usr FROM seq GROUP BY usr HAVING count(*) >= 3) AS q)
           AS evaluated_users;
