-- bench/orient.sh: PostGIS answers for points 1..:check (compared with ror's), then the plan of
-- the benchmark query once the prepared statement runs its generic plan.
-- psql variables: code, radius_m, lim, check.
\pset format unaligned
\pset fieldsep '\t'
\pset tuples_only on
\o :out
SELECT p.idx, n.id, n.dist_m
  FROM orient_point p
 CROSS JOIN LATERAL (
       SELECT e.id, ST_Distance(e.geog, p.geog, false) AS dist_m
         FROM etab e
        WHERE e.category = :'code' AND ST_DWithin(e.geog, p.geog, :radius_m, false)
        ORDER BY dist_m
        LIMIT :lim) n
 WHERE p.idx <= :check
 ORDER BY p.idx, n.dist_m;
SELECT p.idx, '#total', count(e.id)
  FROM orient_point p
  LEFT JOIN etab e ON e.category = :'code' AND ST_DWithin(e.geog, p.geog, :radius_m, false)
 WHERE p.idx <= :check
 GROUP BY p.idx;
\o :plan
PREPARE q(integer, text, float8, integer) AS
SELECT e.id, e.name, ST_Distance(e.geog, p.geog, false) AS dist_m,
       ST_Y(e.geog::geometry) AS lat, ST_X(e.geog::geometry) AS lon
  FROM orient_point p
  JOIN etab e ON e.category = $2 AND ST_DWithin(e.geog, p.geog, $3, false)
 WHERE p.idx = $1
 ORDER BY dist_m
 LIMIT $4;
\o /dev/null
EXECUTE q(1, :'code', :radius_m, :lim);
EXECUTE q(2, :'code', :radius_m, :lim);
EXECUTE q(3, :'code', :radius_m, :lim);
EXECUTE q(4, :'code', :radius_m, :lim);
EXECUTE q(5, :'code', :radius_m, :lim);
EXECUTE q(6, :'code', :radius_m, :lim);
\o :plan
EXPLAIN (COSTS OFF) EXECUTE q(7, :'code', :radius_m, :lim);
