-- bench/orient.sh, PostGIS side: tables (loaded by \copy from the files orient.py writes).
CREATE EXTENSION postgis;
CREATE EXTENSION btree_gist;  -- text in a GiST index next to the geography

-- One row per establishment (FINESS entité géographique) and category code: the national set
-- has exactly one CAT_ETAB code per establishment, the schema does not rely on it.
CREATE TABLE etab (
    id       text NOT NULL,
    category text NOT NULL,
    name     text NOT NULL,
    geog     geography(Point, 4326) NOT NULL,
    PRIMARY KEY (id, category)
);

-- The query points, the same list as the wrk script's.
CREATE TABLE orient_point (
    idx  integer PRIMARY KEY,
    lat  double precision NOT NULL,
    lon  double precision NOT NULL,
    geog geography(Point, 4326) GENERATED ALWAYS AS
         (ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography) STORED
);
