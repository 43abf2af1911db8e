-- graphrec session protocol (SR-GNN reference), the steps after the clicks are read.
--
-- Input: `kept`, one row per click:
--   s      BIGINT  the session, numbered in order of first appearance in the log
--   item   the item id (BIGINT or text)
--   pos    BIGINT  the click's place in its session (1, 2, ...)
--   sdate  DOUBLE  the session's date, seconds (the same on each of its rows)
--   usr    the session's user, NULL when the log has none
-- Output: `train_out` and `test_out` (rank, pos, id): the sessions, in date order, with
-- the new item ids; `item_ids` (item, id); `session_users` (part, rank, usr);
-- `user_ids` (usr, id); `protocol_stats`, one row of counts.
-- Portable SQL (DuckDB and Spark SQL); the options are substituted first.

-- stage: session length
CREATE OR REPLACE TEMP VIEW p1 AS
SELECT s, item, pos, sdate, usr, count(*) OVER (PARTITION BY s) AS n
FROM kept;

-- stage: item support
CREATE OR REPLACE TEMP VIEW p2 AS
SELECT s, item, pos, sdate, usr, count(*) OVER (PARTITION BY item) AS support
FROM p1
WHERE n >= ${min_session_length};

-- stage: filters
CREATE OR REPLACE TEMP VIEW p3 AS
SELECT s, item, pos, sdate, usr
FROM (SELECT s, item, pos, sdate, usr, count(*) OVER (PARTITION BY s) AS n
      FROM p2
      WHERE support >= ${min_item_support}) AS q
WHERE n >= ${min_session_length};

-- stage: sessions
CREATE OR REPLACE TEMP VIEW sessions AS
SELECT s, max(sdate) AS sdate, min(usr) AS usr
FROM p3
GROUP BY s;

-- stage: split
-- test_days: train is dated strictly before max date - test_days, test strictly after (a
-- session dated exactly on the split is in neither, as in the reference). test_fraction:
-- the latest share of the sessions, rounded half to even, at least one.
CREATE OR REPLACE TEMP VIEW split AS
SELECT CASE WHEN ${by_days}
            THEN max(sdate) - CAST('${test_days}' AS DOUBLE) * 86400
       END AS cut,
       count(*) - greatest(1, CASE
           WHEN floor(CAST('${test_fraction}' AS DOUBLE) * count(*) + 0.5)
                    = CAST('${test_fraction}' AS DOUBLE) * count(*) + 0.5
                AND floor(CAST('${test_fraction}' AS DOUBLE) * count(*) + 0.5) % 2 = 1
           THEN floor(CAST('${test_fraction}' AS DOUBLE) * count(*) + 0.5) - 1
           ELSE floor(CAST('${test_fraction}' AS DOUBLE) * count(*) + 0.5) END) AS num_train
FROM sessions;

CREATE OR REPLACE TEMP VIEW split_at AS
SELECT cut, num_train, num_train + 1 AS first_test FROM split;

CREATE OR REPLACE TEMP VIEW ordered AS
SELECT s, sdate, usr, row_number() OVER (ORDER BY sdate, s) AS o
FROM sessions;

CREATE OR REPLACE TEMP VIEW parted AS
SELECT o.s, o.sdate, o.usr,
       CASE WHEN ${by_days} THEN (CASE WHEN o.sdate < x.cut THEN 'train'
                                       WHEN o.sdate > x.cut THEN 'test' END)
            ELSE (CASE WHEN o.o <= x.num_train THEN 'train' ELSE 'test' END) END AS part
FROM ordered AS o CROSS JOIN split_at AS x;

-- stage: ranks
-- each split in date order (ties: order of first appearance)
CREATE OR REPLACE TEMP VIEW ranked AS
SELECT s, sdate, usr, part, row_number() OVER (PARTITION BY part ORDER BY sdate, s) AS rank
FROM parted
WHERE part IS NOT NULL;

CREATE OR REPLACE TEMP VIEW train_clicks AS
SELECT r.rank, c.pos, c.item
FROM p3 AS c JOIN ranked AS r ON c.s = r.s
WHERE r.part = 'train';

-- stage: item ids
-- ${item_order}: 'sorted' numbers the training items in the order of their ids (click
-- logs), 'first_seen' in order of first appearance in the training sessions (benchmarks)
CREATE OR REPLACE TEMP VIEW item_ids AS
SELECT item,
       row_number() OVER (ORDER BY CASE WHEN '${item_order}' = 'sorted' THEN 0 ELSE rank END,
                                   CASE WHEN '${item_order}' = 'sorted' THEN 0 ELSE pos END,
                                   item) AS id
FROM (SELECT item, rank, pos,
             row_number() OVER (PARTITION BY item ORDER BY rank, pos) AS k
      FROM train_clicks) AS q
WHERE k = 1;

CREATE OR REPLACE TEMP VIEW train_out AS
SELECT c.rank, c.pos, i.id
FROM train_clicks AS c JOIN item_ids AS i ON c.item = i.item;

-- stage: test sessions
-- test clicks on items unseen in training are dropped, then sessions left too short
CREATE OR REPLACE TEMP VIEW test_known AS
SELECT r.rank, c.pos, i.id
FROM p3 AS c JOIN ranked AS r ON c.s = r.s JOIN item_ids AS i ON c.item = i.item
WHERE r.part = 'test';

CREATE OR REPLACE TEMP VIEW test_out AS
SELECT rank, pos, id
FROM (SELECT rank, pos, id, count(*) OVER (PARTITION BY rank) AS n FROM test_known) AS q
WHERE n >= ${min_session_length};

-- stage: users
CREATE OR REPLACE TEMP VIEW session_users AS
SELECT r.part, r.rank, r.usr
FROM ranked AS r
LEFT JOIN (SELECT DISTINCT rank AS kept FROM test_out) AS k
       ON r.part = 'test' AND r.rank = k.kept
WHERE r.part = 'train' OR k.kept IS NOT NULL;

CREATE OR REPLACE TEMP VIEW user_ids AS
SELECT usr, row_number() OVER (ORDER BY usr) AS id
FROM (SELECT DISTINCT usr FROM session_users WHERE usr IS NOT NULL) AS q;

-- stage: counts
CREATE OR REPLACE TEMP VIEW protocol_stats AS
SELECT a.raw_clicks, a.raw_sessions,
       a.raw_sessions - b.sessions2 AS dropped_sessions_length_1,
       b.dropped_clicks_rare_items, b.dropped_items_rare,
       b.sessions2 - c.sessions3 AS dropped_sessions_after_item_filter,
       x.cut AS split_at, x.num_train,
       (SELECT max(sdate) FROM ordered WHERE o = x.first_test) AS first_test_date,
       (SELECT count(*) FROM sessions WHERE sdate = x.cut) AS dropped_sessions_on_split_date,
       (SELECT count(*) FROM p3 JOIN ranked AS r ON p3.s = r.s WHERE r.part = 'test')
           - (SELECT count(*) FROM test_known) AS dropped_test_clicks_unseen_items,
       (SELECT count(DISTINCT rank) FROM test_known)
           - (SELECT count(DISTINCT rank) FROM test_out)
           AS dropped_test_sessions_after_unseen_filter,
       (SELECT count(*) FROM ranked WHERE part = 'train') AS train_sessions,
       (SELECT count(DISTINCT rank) FROM test_out) AS test_sessions,
       (SELECT count(*) FROM item_ids) AS items,
       (SELECT count(*) FROM user_ids) AS users
FROM (SELECT count(*) AS raw_clicks, count(DISTINCT s) AS raw_sessions FROM p1) AS a
CROSS JOIN (SELECT count(DISTINCT s) AS sessions2,
                   sum(CASE WHEN support < ${min_item_support} THEN 1 ELSE 0 END)
                       AS dropped_clicks_rare_items,
                   count(DISTINCT CASE WHEN support < ${min_item_support} THEN item END)
                       AS dropped_items_rare
            FROM p2) AS b
CROSS JOIN (SELECT count(DISTINCT s) AS sessions3 FROM p3) AS c
CROSS JOIN split_at AS x;
