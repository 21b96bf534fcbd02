-- bench/orient.sh: one orientation query per transaction (pgbench -M prepared).
-- Variables: npoints, code, radius_m, lim (-D); idx picks one of the query points, stored in
-- orient_point (pgbench has no lists): the same points, in the same numbers, as the wrk script.
\set idx random(1, :npoints)
SELECT e.id, e.name, ST_Distance(e.geog, p.geog, false) AS dist_m,
       ST_Y(e.geog::geometry) AS lat, ST_X(e.geog::geometry) AS lon
  FROM orient_point p
  JOIN etab e ON e.category = :code AND ST_DWithin(e.geog, p.geog, :radius_m, false)
 WHERE p.idx = :idx
 ORDER BY dist_m
 LIMIT :lim;
