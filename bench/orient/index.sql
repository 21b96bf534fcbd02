-- bench/orient.sh, PostGIS side: indexes built after the load, then statistics.
-- GiST on the geography: the spatial index the comparison is about.
CREATE INDEX etab_geog ON etab USING gist (geog);
-- B-tree on the category: what the planner uses when a category is rare.
CREATE INDEX etab_category ON etab (category);
-- Category and position in one GiST (btree_gist): what a DBA adds for "this category near
-- here"; the planner picks among the three.
CREATE INDEX etab_category_geog ON etab USING gist (category, geog);
VACUUM ANALYZE etab;
VACUUM ANALYZE orient_point;
